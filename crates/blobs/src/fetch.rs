//! A node's blobs: on local disk, fetched from the servers on first use and verified (sha256)
//! before anything runs them; file trees unpacked once per digest.

use crate::BlobStore;
use shoal_api::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a blob cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Not here, and nowhere to fetch it from.
    #[error("blob {0} is not on this node")]
    Missing(Digest),
    /// The source could not deliver it.
    #[error("cannot fetch blob {digest}: {reason}")]
    Fetch {
        /// The blob.
        digest: Digest,
        /// What each source said.
        reason: String,
    },
    /// It could not be written to disk.
    #[error("cannot store blob {digest}: {source}")]
    Store {
        /// The blob.
        digest: Digest,
        /// The disk error.
        source: std::io::Error,
    },
    /// The bytes fetched are not the blob asked for.
    #[error("the server sent blob {digest} with digest {got}; refusing it")]
    Mismatch {
        /// What was asked for.
        digest: Digest,
        /// What the bytes hash to.
        got: Digest,
    },
    /// A tree blob could not be unpacked.
    #[error("{0}")]
    Unpack(#[from] crate::trees::TreeError),
}

/// Where a node gets the blobs it does not have yet (the servers, in a cluster).
#[async_trait::async_trait]
pub trait BlobSource: Send + Sync + 'static {
    /// The bytes of blob `digest`.
    ///
    /// # Errors
    /// [`BlobError::Fetch`], saying why.
    async fn fetch(&self, digest: &Digest) -> Result<Vec<u8>, BlobError>;
}

/// Blobs on this node's disk, and where to fetch the missing ones.
#[derive(Clone)]
pub struct Blobs {
    local: BlobStore,
    remote: Option<Arc<dyn BlobSource>>,
    /// One fetch (or unpack) at a time: two apps of one component wait for one download.
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Blobs {
    /// Blobs that are all local (`shoal up`: the API stores uploads there).
    pub fn local(local: BlobStore) -> Self {
        Self {
            local,
            remote: None,
            busy: Arc::default(),
        }
    }

    /// Local blobs, completed from `remote`.
    pub fn fetching_from(local: BlobStore, remote: Arc<dyn BlobSource>) -> Self {
        Self {
            local,
            remote: Some(remote),
            busy: Arc::default(),
        }
    }

    /// The local file of blob `digest`, fetched first if it is not here.
    ///
    /// # Errors
    /// The blob is nowhere to be had, or the bytes fetched do not have that digest.
    pub async fn path(&self, digest: &Digest) -> Result<PathBuf, BlobError> {
        let path = self.local.path(digest);
        if path.is_file() {
            return Ok(path);
        }
        let Some(remote) = &self.remote else {
            return Err(BlobError::Missing(digest.clone()));
        };
        let _one = self.busy.lock().await;
        if path.is_file() {
            return Ok(path);
        }
        let bytes = remote.fetch(digest).await?;
        let local = self.local.clone();
        let stored = tokio::task::spawn_blocking(move || local.put(&bytes))
            .await
            .map_err(|e| BlobError::Store {
                digest: digest.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| BlobError::Store {
                digest: digest.clone(),
                source,
            })?;
        if stored != *digest {
            // Stored under its real digest, so nothing runs it as `digest`.
            return Err(BlobError::Mismatch {
                digest: digest.clone(),
                got: stored,
            });
        }
        Ok(path)
    }

    /// The directory tree blob `digest` holds, unpacked under `dir` (once: `dir/<hex>`).
    ///
    /// # Errors
    /// The blob cannot be had, or is not a tree that unpacks safely.
    pub async fn unpacked(&self, digest: &Digest, dir: &Path) -> Result<PathBuf, BlobError> {
        let dest = dir.join(digest.hex());
        if dest.is_dir() {
            return Ok(dest);
        }
        let blob = self.path(digest).await?;
        let _one = self.busy.lock().await;
        if dest.is_dir() {
            return Ok(dest);
        }
        let target = dest.clone();
        tokio::task::spawn_blocking(move || crate::trees::unpack_file(&blob, &target))
            .await
            .map_err(|e| crate::trees::TreeError::new(e.to_string()))??;
        Ok(dest)
    }
}
