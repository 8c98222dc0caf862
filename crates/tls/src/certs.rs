//! [`Certificates`]: what a TLS listener presents, read again when its files change.

use crate::{TlsError, pem};
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often, at most, a handshake looks whether the files changed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificates a listener presents: a default pair (`--tls-cert`, `--tls-key`) and a
/// directory of per-host pairs (`--tls-cert-dir`: each `NAME.crt` with its `NAME.key`), the
/// latter chosen by the name the client asks for (SNI) among each certificate's DNS names —
/// an exact name first, then a wildcard (`*.example.com` covers one label). A client asking
/// for no name, or for one no host certificate covers, gets the default pair; with no
/// default pair, its handshake fails.
///
/// # Guarantees
/// Files are looked at again at most once a second, on a handshake: a changed file is read
/// again and new handshakes use it; connections already open keep theirs. A pair that no
/// longer reads (half-written, mismatched) is logged and the one read before is kept.
pub struct Certificates {
    default: Option<(PathBuf, PathBuf)>,
    dir: Option<PathBuf>,
    loaded: ArcSwap<Loaded>,
    checked: Mutex<Instant>,
}

#[derive(Default)]
struct Loaded {
    /// What every file looked like when read: path, modification time and length.
    stamp: Vec<(PathBuf, Option<(SystemTime, u64)>)>,
    default: Option<Arc<CertifiedKey>>,
    /// Per-host pairs by file stem, to keep the old one when a new one fails to read.
    pairs: HashMap<String, Arc<CertifiedKey>>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` as `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("default", &self.default)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads the default pair (`cert`, `key`) if given and every pair in `dir` if given.
    ///
    /// # Errors
    /// Neither is given, or a file does not read: at start, every problem is an error.
    pub fn load(
        default: Option<(PathBuf, PathBuf)>,
        dir: Option<PathBuf>,
    ) -> Result<Arc<Self>, TlsError> {
        if default.is_none() && dir.is_none() {
            return Err(TlsError::Make(
                "no certificate: give --tls-cert with --tls-key, or --tls-cert-dir".into(),
            ));
        }
        let certs = Self {
            default,
            dir,
            loaded: ArcSwap::from_pointee(Loaded::default()),
            checked: Mutex::new(Instant::now()),
        };
        let loaded = certs.read(None)?;
        certs.loaded.store(Arc::new(loaded));
        Ok(Arc::new(certs))
    }

    /// The files read, and what they looked like.
    fn stamp(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some((cert, key)) = &self.default {
            files.extend([cert.clone(), key.clone()]);
        }
        if let Some(dir) = &self.dir {
            files.push(dir.clone());
            files.extend(dir_pairs(dir).into_iter().flat_map(|(_, c, k)| [c, k]));
        }
        files
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                (path, meta)
            })
            .collect()
    }

    /// Reads every pair. With `old`, a pair that fails keeps its old value (logged); without,
    /// it is an error.
    fn read(&self, old: Option<&Loaded>) -> Result<Loaded, TlsError> {
        let mut loaded = Loaded {
            stamp: self.stamp(),
            ..Loaded::default()
        };
        let kept = |what: &str, e: TlsError, previous: Option<&Arc<CertifiedKey>>| {
            tracing::warn!("TLS: {what} no longer reads ({e}); keeping the one read before");
            previous.cloned()
        };
        if let Some((cert, key)) = &self.default {
            loaded.default = match (pem::certified_key(cert, key), old) {
                (Ok(pair), _) => Some(pair),
                (Err(e), Some(old)) => kept("the default certificate", e, old.default.as_ref()),
                (Err(e), None) => return Err(e),
            };
        }
        if let Some(dir) = &self.dir {
            if old.is_none() && !dir.is_dir() {
                return Err(TlsError::file(dir, "is not a directory"));
            }
            for (stem, cert, key) in dir_pairs(dir) {
                let pair = match (pem::certified_key(&cert, &key), old) {
                    (Ok(pair), _) => pair,
                    (Err(e), Some(old)) => {
                        match kept(&format!("{}", cert.display()), e, old.pairs.get(&stem)) {
                            Some(pair) => pair,
                            None => continue,
                        }
                    }
                    (Err(e), None) => return Err(e),
                };
                for name in dns_names(&pair) {
                    match name.strip_prefix("*.") {
                        Some(parent) => loaded.wildcard.entry(parent.to_string()),
                        None => loaded.exact.entry(name),
                    }
                    .or_insert_with(|| pair.clone());
                }
                loaded.pairs.insert(stem, pair);
            }
        }
        Ok(loaded)
    }

    /// Reads the files again if they changed since they were read (looked at no more than
    /// once a second).
    fn refresh(&self) {
        let Ok(mut checked) = self.checked.try_lock() else {
            return; // Another handshake is looking right now.
        };
        if checked.elapsed() < CHECK_EVERY {
            return;
        }
        *checked = Instant::now();
        let current = self.loaded.load();
        if self.stamp() == current.stamp {
            return;
        }
        match self.read(Some(&current)) {
            Ok(fresh) => {
                tracing::info!("TLS: certificates changed; new connections use them");
                self.loaded.store(Arc::new(fresh));
            }
            Err(e) => tracing::warn!("TLS: certificates changed but do not read: {e}"),
        }
    }

    /// The pair for a client asking for `name`.
    pub fn pick(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        let loaded = self.loaded.load();
        let by_name = name.map(str::to_ascii_lowercase).and_then(|name| {
            loaded.exact.get(&name).cloned().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                loaded.wildcard.get(parent).cloned()
            })
        });
        by_name.or_else(|| loaded.default.clone())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// The pairs in `dir`: each `NAME.crt` whose `NAME.key` exists, by name.
fn dir_pairs(dir: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut pairs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "crt"))
        .filter_map(|cert| {
            let stem = cert.file_stem()?.to_string_lossy().into_owned();
            let key = cert.with_extension("key");
            key.is_file().then_some((stem, cert, key))
        })
        .collect();
    pairs.sort();
    pairs
}

/// The DNS names a pair's leaf certificate is for (its subject alternative names), lowercase.
fn dns_names(pair: &CertifiedKey) -> Vec<String> {
    let Some(leaf) = pair.cert.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
