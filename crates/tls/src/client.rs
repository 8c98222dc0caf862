//! [`ClientTls`]: what a client of Shoal's trusts, and what it presents.

use crate::{TlsError, pem, provider};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// What a client verifies servers against — the system's roots, or only the CAs of a file —
/// and the certificate it presents when the server asks for one (etcd's client-certificate
/// auth).
#[derive(Clone, Debug)]
pub struct ClientTls {
    roots: Arc<RootCertStore>,
    identity: Option<Arc<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>>,
}

impl Default for ClientTls {
    fn default() -> Self {
        Self::system()
    }
}

/// The system's roots (as OpenSSL finds them: `SSL_CERT_FILE`, `SSL_CERT_DIR`, the
/// distribution's bundle), read once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!("TLS: reading the system's roots: {e}");
            }
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "TLS: found no system CA certificates; HTTPS servers verify only with --ca"
                );
            }
            Arc::new(store)
        })
        .clone()
}

impl ClientTls {
    /// Trusting the system's roots.
    pub fn system() -> Self {
        Self {
            roots: system_roots(),
            identity: None,
        }
    }

    /// Trusting only the CA certificates in the PEM file `path` (as curl's `--cacert`).
    ///
    /// # Errors
    /// The file does not read or holds no usable CA certificate.
    pub fn ca_file(path: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            roots: Arc::new(pem::roots(path)?),
            identity: None,
        })
    }

    /// Trusting only the CA certificates in `pem` (PEM text).
    ///
    /// # Errors
    /// It holds no usable CA certificate.
    pub fn from_ca_pem(pem: &str) -> Result<Self, TlsError> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| TlsError::Make(format!("the CA is not valid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| TlsError::Make(format!("the CA is not usable: {e}")))?;
        }
        if roots.is_empty() {
            return Err(TlsError::Make("the CA holds no certificate".into()));
        }
        Ok(Self {
            roots: Arc::new(roots),
            identity: None,
        })
    }

    /// These roots and the CA certificates in `pem` (PEM text).
    ///
    /// # Errors
    /// It holds no usable CA certificate.
    pub fn and_ca_pem(mut self, pem: &str) -> Result<Self, TlsError> {
        let mut roots = (*self.roots).clone();
        roots
            .roots
            .extend(Self::from_ca_pem(pem)?.roots.roots.iter().cloned());
        self.roots = Arc::new(roots);
        Ok(self)
    }

    /// These roots and the CA certificates in the PEM file `path`.
    ///
    /// # Errors
    /// The file does not read or holds no usable CA certificate.
    pub fn and_ca_file(mut self, path: &Path) -> Result<Self, TlsError> {
        let mut roots = (*self.roots).clone();
        roots.roots.extend(pem::roots(path)?.roots);
        self.roots = Arc::new(roots);
        Ok(self)
    }

    /// `ca_file(path)` if given, else the system's roots.
    ///
    /// # Errors
    /// As [`ClientTls::ca_file`].
    pub fn from_ca(path: Option<&Path>) -> Result<Self, TlsError> {
        path.map_or_else(|| Ok(Self::system()), Self::ca_file)
    }

    /// Presenting the certificate chain in `cert` with the key in `key` when asked.
    ///
    /// # Errors
    /// Either file does not read, or the key is not the certificate's.
    pub fn with_identity(mut self, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        pem::certified_key(cert, key)?;
        self.identity = Some(Arc::new((pem::certificates(cert)?, pem::private_key(key)?)));
        Ok(self)
    }

    /// Presenting `chain` with `key` when asked (a node's own identity, in memory).
    pub(crate) fn with_identity_der(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.identity = Some(Arc::new((chain, key)));
        self
    }

    /// The roots it verifies by.
    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// The rustls configuration: these roots, this identity, no ALPN.
    pub fn config(&self) -> rustls::ClientConfig {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.roots.clone());
        match &self.identity {
            Some(id) => builder
                .with_client_auth_cert(id.0.clone(), id.1.clone_key())
                .expect("the identity was checked when it was read"),
            None => builder.with_no_client_auth(),
        }
    }
}
