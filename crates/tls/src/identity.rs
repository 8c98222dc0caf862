//! A cluster node's identity over TLS: a key made on the node (its private half never leaves
//! it), a certificate for `NAME.nodes.shoal.internal` the cluster's CA issues for it, and the
//! cluster CA as the only root its peers are verified by. Servers and other nodes reach a
//! node by that name, whatever address it has, so a node can answer only for itself. A node
//! presents the same certificate when it connects to another node, which asks for one (and
//! accepts connections without, from the servers): [`peer_node`] names the node a connection
//! came from.

use crate::{ClientTls, TlsError, provider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The domain every node's TLS name is in.
pub const NODE_DOMAIN: &str = "nodes.shoal.internal";

/// The name node `node` is reached and verified by.
pub fn node_server_name(node: &str) -> String {
    format!("{node}.{NODE_DOMAIN}")
}

/// A node's new key pair.
pub struct NodeKey {
    key_pem: String,
    public_pem: String,
}

impl NodeKey {
    /// A new key pair (ECDSA P-256).
    ///
    /// # Errors
    /// The key cannot be made.
    pub fn generate() -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Make(e.to_string()))?;
        Ok(Self {
            key_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
        })
    }

    /// Its public half, PEM: what the CA certifies.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }
}

/// A node's certificate with its key, and the cluster CA: how it serves its peers over TLS
/// and verifies them.
#[derive(Clone)]
pub struct NodeIdentity {
    server: Arc<rustls::ServerConfig>,
    peers: ClientTls,
}

impl NodeIdentity {
    /// The identity of `key` certified by `cert_pem` (issued by the CA `ca_pem`).
    ///
    /// # Errors
    /// The certificate or CA does not read, or the certificate is not `key`'s.
    pub fn new(key: &NodeKey, cert_pem: &str, ca_pem: &str) -> Result<Self, TlsError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| TlsError::Make(format!("{what}: {e}"));
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| bad("the node certificate", &e))?;
        let private = PrivateKeyDer::from_pem_slice(key.key_pem.as_bytes())
            .map_err(|e| bad("the node key", &e))?;
        let signing = provider()
            .key_provider
            .load_private_key(private.clone_key())
            .map_err(|e| bad("the node key", &e))?;
        rustls::sign::CertifiedKey::new(chain.clone(), signing)
            .keys_match()
            .map_err(|_| TlsError::Make("the node certificate is not of this node's key".into()))?;
        let peers = ClientTls::from_ca_pem(ca_pem)?;
        // Another node presents its certificate; a server presents none (it has the node's
        // credential instead).
        let clients =
            rustls::server::WebPkiClientVerifier::builder_with_provider(peers.roots(), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| bad("the cluster CA", &e))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS versions", &e))?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain.clone(), private.clone_key())
            .map_err(|e| bad("the node certificate and key", &e))?;
        server.alpn_protocols = vec![crate::ALPN_HTTP1.to_vec()];
        Ok(Self {
            server: Arc::new(server),
            peers: peers.with_identity_der(chain, private),
        })
    }

    /// What the node's own listener presents to peers.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// What the node verifies its peers by (the cluster CA alone), presenting its own
    /// certificate.
    pub fn peers(&self) -> &ClientTls {
        &self.peers
    }
}

/// The node a TLS connection came from: the name in the certificate it presented, which the
/// handshake verified against the cluster CA (`NAME` of `NAME.nodes.shoal.internal`); `None`
/// for a peer that presented none (a server) or a certificate of no node.
pub fn peer_node(presented: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = presented?.first()?;
    let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
    let suffix = format!(".{NODE_DOMAIN}");
    let name = cert
        .valid_dns_names()
        .find_map(|n| n.strip_suffix(suffix.as_str()).filter(|n| !n.contains('.')))?
        .to_string();
    let subject = rustls::pki_types::ServerName::try_from(node_server_name(&name)).ok()?;
    cert.verify_is_valid_for_subject_name(&subject).ok()?;
    Some(name)
}
