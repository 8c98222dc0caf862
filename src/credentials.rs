//! Registry credentials on the CLI's machine: `DATA_DIR/registries.json` (mode 0600, written by
//! `shoal registry login`), else Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`,
//! its `auths` entries). They leave this machine only in requests to the Shoal API (for the
//! server's pull) and to the registry itself; no object or event holds them.

use anyhow::Context;
use base64::Engine;
use serde::{Deserialize, Serialize};
use shoal_oci::Credentials;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One registry's stored login.
#[derive(Serialize, Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// `DATA_DIR/registries.json`.
fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("registries.json")
}

fn read(data_dir: &Path) -> anyhow::Result<BTreeMap<String, Login>> {
    let path = file(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a registries file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write(data_dir: &Path, logins: &BTreeMap<String, Login>) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = file(data_dir);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(&serde_json::to_vec_pretty(logins)?)?;
    Ok(())
}

/// Stores `username`/`password` for `registry`.
pub fn login(
    data_dir: &Path,
    registry: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<()> {
    let mut logins = read(data_dir)?;
    logins.insert(
        registry.to_string(),
        Login {
            username: username.into(),
            password: password.into(),
        },
    );
    write(data_dir, &logins)
}

/// Forgets `registry`'s login; whether there was one.
pub fn logout(data_dir: &Path, registry: &str) -> anyhow::Result<bool> {
    let mut logins = read(data_dir)?;
    let had = logins.remove(registry).is_some();
    if had {
        write(data_dir, &logins)?;
    }
    Ok(had)
}

/// The credentials for `registry`: Shoal's login, else Docker's, else anonymous.
///
/// # Errors
/// A registries file that cannot be read.
pub fn for_registry(data_dir: &Path, registry: &str) -> anyhow::Result<Credentials> {
    if let Some(l) = read(data_dir)?.remove(registry) {
        return Ok(Credentials::Basic {
            username: l.username,
            password: l.password,
        });
    }
    Ok(docker(registry).unwrap_or_default())
}

/// Docker's stored `auth` (base64 `user:password`) for `registry`, if any.
fn docker(registry: &str) -> Option<Credentials> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))?;
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Auth>,
    }
    #[derive(Deserialize)]
    struct Auth {
        auth: Option<String>,
    }
    let config: Config =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).ok()?).ok()?;
    let auth = config.auths.iter().find_map(|(host, a)| {
        let host = host
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        (host == registry).then_some(a.auth.as_deref()).flatten()
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let (username, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some(Credentials::Basic { username, password })
}

/// The value of [`shoal_client::REGISTRY_AUTH`] for `credentials`: `Basic base64(user:pass)`.
pub fn header(credentials: &Credentials) -> Option<String> {
    match credentials {
        Credentials::Anonymous => None,
        Credentials::Basic { username, password } => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        )),
    }
}
