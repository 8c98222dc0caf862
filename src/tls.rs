//! TLS as the commands set it up: the certificate a server presents (given, or made by a CA
//! of its own), and what a client trusts.

use anyhow::Context;
use shoal_tls::{Ca, Certificates, ClientTls, LocalCertificates};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate a server presents (`shoal up`'s and `shoal server`'s API, a node's HTTPS
/// ingress).
#[derive(clap::Args, Clone, Default)]
pub struct TlsArgs {
    /// Certificate chain (PEM) to present, with --tls-key; read again when the files change.
    /// Without it, a certificate is made (see --tls-san).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// A further name (DNS name or IP address) for the certificate made when --tls-cert is not
    /// given; it is always made for localhost, 127.0.0.1, ::1, this machine's name and the
    /// address listened on. Repeatable.
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_san: Vec<String>,
}

/// The certificate pair a server presents, and the CA that issued it when it was made here.
pub struct Presented {
    /// Certificate and key files.
    pub pair: (PathBuf, PathBuf),
    /// The CA certificate clients trust, when the pair was made here.
    pub ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The given pair, or one issued for `listen` (and the usual names) by `ca` — or, with no
    /// `ca`, by the CA kept in `DATA_DIR/tls` — into `DATA_DIR/tls`.
    ///
    /// # Errors
    /// A certificate cannot be made or written.
    pub fn presented(
        &self,
        data_dir: &Path,
        listen: SocketAddr,
        ca: Option<Ca>,
    ) -> anyhow::Result<Presented> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Presented {
                pair: (cert.clone(), key.clone()),
                ca: None,
            });
        }
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        names.push(crate::machine::hostname());
        if !listen.ip().is_unspecified() {
            names.push(listen.ip().to_string());
        }
        names.extend(self.tls_san.iter().cloned());
        names.dedup();
        let dir = data_dir.join("tls");
        let local = LocalCertificates::ensure(&dir, ca, &names)
            .with_context(|| format!("cannot make a certificate in {}", dir.display()))?;
        Ok(Presented {
            pair: (local.cert, local.key),
            ca: Some(local.ca),
        })
    }
}

impl Presented {
    /// A listener's TLS configuration presenting this pair (and, with `dir`, per-host pairs),
    /// offering `alpn`.
    ///
    /// # Errors
    /// A file does not read.
    pub fn config(
        &self,
        dir: Option<PathBuf>,
        alpn: &[&[u8]],
    ) -> anyhow::Result<Arc<shoal_tls::rustls::ServerConfig>> {
        let certs = Certificates::load(Some(self.pair.clone()), dir)?;
        Ok(shoal_tls::server_config(certs, alpn)?)
    }
}

/// What a client trusts: `--ca` alone if given, else the system's roots and — when `shoal up`
/// or `shoal server` made its certificate in `data_dir` — the CA that issued it.
///
/// # Errors
/// `--ca` does not read.
pub fn trust(ca: Option<&Path>, data_dir: &Path) -> anyhow::Result<ClientTls> {
    if let Some(ca) = ca {
        return ClientTls::ca_file(ca).with_context(|| "--ca (SHOAL_CA)".to_string());
    }
    let local = data_dir.join("tls").join("ca.crt");
    if local.is_file() {
        return Ok(ClientTls::system().and_ca_file(&local)?);
    }
    Ok(ClientTls::system())
}
