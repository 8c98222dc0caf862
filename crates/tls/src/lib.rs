//! Shoal's TLS, one place for every connection that uses it: the ingress, the API, the CLI,
//! nodes and servers talking to each other, and servers talking to etcd.
//!
//! - [`pem`]: certificates, keys and CA bundles read from PEM files, with errors naming the
//!   file and what is wrong with it.
//! - [`Certificates`]: what a TLS listener presents — a default pair and a directory of
//!   per-host pairs chosen by SNI, read again when their files change.
//! - [`server_config`]: the listener's configuration (ALPN `h2`, `http/1.1`).
//! - [`ClientTls`]: what a client trusts (the system's roots or a CA file) and, for etcd, the
//!   certificate it presents.
//! - [`Ca`]: a certificate authority made here (rcgen), for the certificates `shoal up` and
//!   `shoal server` make themselves when given none, the nodes' certificates, and tests.
//! - [`NodeIdentity`]: a cluster node's key and certificate for `NAME.nodes.shoal.internal`,
//!   and the cluster CA its peers are verified by.
//!
//! Every configuration uses ring explicitly; nothing depends on a process-wide provider.

mod ca;
mod certs;
mod client;
mod identity;
pub mod pem;

pub use ca::{Ca, Issued, LocalCertificates};
pub use certs::Certificates;
pub use client::ClientTls;
pub use identity::{NODE_DOMAIN, NodeIdentity, NodeKey, node_server_name, peer_node};
pub use rustls;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

use std::path::PathBuf;
use std::sync::Arc;

/// What went wrong reading or making certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file was read but does not hold what it must.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, and what it should hold.
        message: String,
    },
    /// A certificate could not be made or a configuration built.
    #[error("{0}")]
    Make(String),
}

impl TlsError {
    fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn file(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// The cryptography every configuration here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// ALPN protocol IDs a listener offers, best first.
pub const ALPN_H2: &[u8] = b"h2";
/// HTTP/1.1's ALPN protocol ID.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A listener's configuration: the certificate `certs` picks for each handshake, TLS 1.2 and
/// 1.3, no client certificates, and ALPN offering `alpn` in order.
///
/// # Errors
/// The provider supports none of the default protocol versions (not with ring).
pub fn server_config(
    certs: Arc<dyn rustls::server::ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Make(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
