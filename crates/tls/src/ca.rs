//! [`Ca`]: a certificate authority made here, and [`LocalCertificates`], the files `shoal up`
//! and `shoal server` serve with when given no certificate.

use crate::TlsError;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SubjectPublicKeyInfo,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// How long a CA made here is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a certificate it issues is valid; `shoal up` and `shoal server` issue theirs
/// again at every start.
const LEAF_VALIDITY: Duration = Duration::days(365);

/// A certificate authority: its certificate and key, able to issue certificates.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate issued by a [`Ca`], with its new key.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
}

fn make(e: rcgen::Error) -> TlsError {
    TlsError::Make(e.to_string())
}

/// Validity starting an hour ago, so that clocks a little behind accept it.
fn validity(params: &mut CertificateParams, length: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + length;
}

impl Ca {
    /// A new CA named `common_name`, with a new key.
    ///
    /// # Errors
    /// The key or certificate cannot be made.
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(make)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key).map_err(make)?;
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// The CA whose certificate and key these are (PEM).
    ///
    /// # Errors
    /// Either is not valid PEM of its kind.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(make)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(make)?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    /// Its certificate, PEM: what clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Its private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A certificate for `names` (DNS names or IP addresses; the first is also its common
    /// name), good for a server and for a client, with a new key.
    ///
    /// # Errors
    /// A name is neither a DNS name nor an IP address, or signing fails.
    pub fn issue(&self, names: &[String]) -> Result<Issued, TlsError> {
        let key = KeyPair::generate().map_err(make)?;
        let cert = leaf(names)?.signed_by(&key, &self.issuer).map_err(make)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A certificate for `names` of the key whose public half is `public_key_pem` (a PEM
    /// `PUBLIC KEY`, made where the private half stays): a node's, by the cluster's CA.
    ///
    /// # Errors
    /// The public key does not read, a name is neither a DNS name nor an IP address, or
    /// signing fails.
    pub fn issue_for(&self, public_key_pem: &str, names: &[String]) -> Result<String, TlsError> {
        let public = SubjectPublicKeyInfo::from_pem(public_key_pem)
            .map_err(|e| TlsError::Make(format!("the public key does not read: {e}")))?;
        let cert = leaf(names)?
            .signed_by(&public, &self.issuer)
            .map_err(make)?;
        Ok(cert.pem())
    }
}

/// A leaf certificate's parameters for `names`: server and client use, valid a year.
fn leaf(names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().map_or("shoal", String::as_str),
    );
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| TlsError::Make(format!("'{n}' is not a DNS name or an IP"))),
        })
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_VALIDITY);
    Ok(params)
}

/// The certificate files a `shoal up` or `shoal server` given none serves with, in a
/// directory of its data dir: `ca.crt` (what clients trust), `server.crt` and `server.key`.
pub struct LocalCertificates {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's key.
    pub key: PathBuf,
}

impl LocalCertificates {
    /// Makes `dir` (mode 0700) hold `ca` — or, when `ca` is `None`, the CA it held already,
    /// else a new one kept in `ca.key` — and a server certificate for `names`, issued anew.
    ///
    /// # Errors
    /// The directory or a file cannot be written, or the CA there does not read.
    pub fn ensure(dir: &Path, ca: Option<Ca>, names: &[String]) -> Result<Self, TlsError> {
        std::fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| TlsError::io(dir, e))?;
        }
        let (ca_path, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let ca = match ca {
            Some(ca) => {
                write(&ca_path, ca.cert_pem(), 0o644)?;
                ca
            }
            None if ca_path.exists() && ca_key.exists() => {
                let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| TlsError::io(p, e));
                Ca::from_pem(&read(&ca_path)?, &read(&ca_key)?).map_err(|e| {
                    TlsError::file(
                        &ca_path,
                        format!("with ca.key is not a usable CA ({e}); remove both to make anew"),
                    )
                })?
            }
            None => {
                let ca = Ca::generate("Shoal local CA")?;
                write(&ca_key, ca.key_pem(), 0o600)?;
                write(&ca_path, ca.cert_pem(), 0o644)?;
                ca
            }
        };
        let issued = ca.issue(names)?;
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        write(&key, &issued.key_pem, 0o600)?;
        write(&cert, &issued.cert_pem, 0o644)?;
        Ok(Self {
            ca: ca_path,
            cert,
            key,
        })
    }
}

/// Writes `text` to `path` with `mode`, atomically (a reader sees the old file or the new).
fn write(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| TlsError::io(&tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| TlsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))
}
