//! The node's components and file trees, by digest: on local disk, fetched from the servers
//! on first use and verified (sha256) before anything runs them.

use shoal_store::BlobStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a node gets the blobs it does not have yet (the servers, in a cluster).
#[async_trait::async_trait]
pub trait BlobSource: Send + Sync + 'static {
    /// The bytes of blob `digest`.
    async fn fetch(&self, digest: &str) -> Result<Vec<u8>, String>;
}

/// Blobs on this node's disk, and where to fetch the missing ones.
#[derive(Clone)]
pub struct Blobs {
    local: BlobStore,
    remote: Option<Arc<dyn BlobSource>>,
    /// One fetch at a time: two apps of one component wait for one download.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl Blobs {
    /// Blobs that are all local (`shoal up`: the API stores uploads there).
    pub fn local(local: BlobStore) -> Self {
        Self {
            local,
            remote: None,
            fetching: Arc::default(),
        }
    }

    /// Local blobs, completed from `remote`.
    pub fn fetching_from(local: BlobStore, remote: Arc<dyn BlobSource>) -> Self {
        Self {
            local,
            remote: Some(remote),
            fetching: Arc::default(),
        }
    }

    /// The local file of blob `digest`, fetched first if it is not here.
    ///
    /// # Errors
    /// The digest is malformed, the blob is nowhere to be had, or the bytes fetched do not
    /// have that digest.
    pub async fn path(&self, digest: &str) -> Result<PathBuf, String> {
        let path = self
            .local
            .path(digest)
            .ok_or_else(|| format!("'{digest}' is not a sha256:<hex> digest"))?;
        if path.is_file() {
            return Ok(path);
        }
        let Some(remote) = &self.remote else {
            return Err(format!("blob {digest} is not on this node"));
        };
        let _one = self.fetching.lock().await;
        if path.is_file() {
            return Ok(path);
        }
        let bytes = remote.fetch(digest).await?;
        let local = self.local.clone();
        let stored = tokio::task::spawn_blocking(move || local.put(&bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot store blob {digest}: {e}"))?;
        if stored != digest {
            // Stored under its real digest, so nothing runs it as `digest`.
            return Err(format!(
                "the server sent blob {digest} with digest {stored}; refusing it"
            ));
        }
        Ok(path)
    }
}
