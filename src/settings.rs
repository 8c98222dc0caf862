//! Where the CLI finds its server, token, namespace and data directory.

use std::path::PathBuf;

/// Options every command accepts.
#[derive(clap::Args, Clone)]
pub struct Global {
    /// The API server.
    #[arg(
        long,
        global = true,
        env = "SHOAL_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub server: String,
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

    /// An API client with the resolved server and token.
    pub fn client(&self) -> shoal_client::Client {
        let token = self.token.clone().or_else(|| {
            std::fs::read_to_string(self.data_dir().join("token"))
                .ok()
                .map(|t| t.trim().to_string())
        });
        shoal_client::Client::new(&self.server, token)
    }
}
