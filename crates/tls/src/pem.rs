//! Certificates, private keys and CA bundles read from PEM files.

use crate::{TlsError, provider};
use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The largest PEM file read: a chain or a CA bundle is a few hundred KiB at most.
const MAX_PEM: u64 = 4 << 20;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let len = std::fs::metadata(path)
        .map_err(|e| TlsError::io(path, e))?
        .len();
    if len > MAX_PEM {
        return Err(TlsError::file(
            path,
            format!("is {len} bytes; a PEM file here may be at most {MAX_PEM}"),
        ));
    }
    std::fs::read(path).map_err(|e| TlsError::io(path, e))
}

/// Every certificate in the PEM file `path`, in order (a chain: the leaf first).
///
/// # Errors
/// The file cannot be read, is malformed, or holds no certificate.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::file(path, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::file(
            path,
            "holds no certificate (a PEM `BEGIN CERTIFICATE` block)",
        ));
    }
    Ok(certs)
}

/// The private key in the PEM file `path` (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// The file cannot be read or holds no private key.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        TlsError::file(
            path,
            format!("holds no private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })
}

/// The chain in `cert` with the key in `key`, checked to belong together.
///
/// # Errors
/// Either file cannot be read or is not what it should be, the key's type is not supported,
/// or the key is not the certificate's.
pub fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert)?;
    let der = private_key(key)?;
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::file(key, format!("is not a usable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        TlsError::file(
            key,
            format!(
                "is not the key of the certificate in {}; give the pair that belongs together",
                cert.display()
            ),
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificates in the PEM bundle `path`, as roots to verify servers (or clients) against.
///
/// # Errors
/// The file cannot be read, holds no certificate, or one is not a usable trust anchor.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store
            .add(cert)
            .map_err(|e| TlsError::file(path, format!("holds an unusable CA certificate: {e}")))?;
    }
    Ok(store)
}
