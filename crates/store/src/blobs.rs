//! The content-addressed blob store: uploaded components, named by their sha256.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Files named by the sha256 of their content, written atomically.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

/// Parses `sha256:<64 lowercase hex>` into its hex part.
pub fn parse_digest(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

impl BlobStore {
    /// A blob store under `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("sha256"))?;
        Ok(Self { dir })
    }

    /// Where the blob with `digest` lives, if the digest is well-formed.
    pub fn path(&self, digest: &str) -> Option<PathBuf> {
        parse_digest(digest).map(|hex| self.dir.join("sha256").join(hex))
    }

    /// Whether the blob is stored.
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_some_and(|p| p.is_file())
    }

    /// Stores `bytes` and returns their digest; storing the same bytes twice is a no-op.
    ///
    /// # Errors
    /// The disk write failed.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let path = self.path(&digest).expect("we just made a valid digest");
        if !path.exists() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(digest)
    }
}
