//! Where the CLI finds its server, token, namespace and data directory.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options every command accepts.
#[derive(clap::Args, Clone)]
pub struct Global {
    /// The API server.
    #[arg(
        long,
        global = true,
        env = "SHOAL_SERVER",
        default_value = "https://127.0.0.1:7070"
    )]
    pub server: String,
    /// The CA certificate (PEM) the server's certificate must be issued by, instead of the
    /// system's roots; default: the system's roots and, when the data dir holds the CA
    /// `shoal up` made (DATA_DIR/tls/ca.crt), that one.
    #[arg(long, global = true, env = "SHOAL_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Bearer token for the API; default: the token `shoal up` wrote to DATA_DIR/token.
    #[arg(long, global = true, env = "SHOAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of `shoal up` (also where the CLI looks for the token).
    #[arg(long, global = true, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Namespace of the objects.
    #[arg(short, long, global = true, default_value = shoal_api::DEFAULT_NAMESPACE)]
    pub namespace: String,
}

impl Global {
    /// The data directory: `--data-dir`, `SHOAL_DATA_DIR`, or the user's data dir + `shoal`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("shoal")
        })
    }

    /// What the CLI (or a node) trusts servers by: see [`Global::ca`].
    ///
    /// # Errors
    /// `--ca` does not read.
    pub fn trust(&self) -> anyhow::Result<shoal_tls::ClientTls> {
        crate::tls::trust(self.ca.as_deref(), &self.data_dir())
    }

    /// An API client with the resolved server, token and trust.
    ///
    /// # Errors
    /// `--ca` does not read.
    pub fn client(&self) -> anyhow::Result<shoal_client::Client> {
        let token = self.token.clone().or_else(|| {
            std::fs::read_to_string(self.data_dir().join("token"))
                .ok()
                .map(|t| t.trim().to_string())
        });
        let data_dir = self.data_dir();
        let auth: shoal_client::RegistryAuth = std::sync::Arc::new(move |registry: &str| {
            crate::credentials::for_registry(&data_dir, registry)
                .ok()
                .and_then(|c| crate::credentials::header(&c))
        });
        Ok(
            shoal_client::Client::with_tls(&self.server, token, &self.trust()?)
                .with_registry_auth(auth),
        )
    }
}

/// Reads the secret (a token) at `path`, or writes `given` (or a new random one) there (mode
/// 0600) and returns it.
///
/// # Errors
/// The file cannot be written.
pub fn ensure_secret(path: &Path, given: Option<&str>) -> anyhow::Result<String> {
    if given.is_none()
        && let Ok(t) = std::fs::read_to_string(path)
    {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = given.map_or_else(|| hex::encode(rand::random::<[u8; 32]>()), str::to_string);
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    }
    .with_context(|| format!("cannot write the secret {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(token)
}
