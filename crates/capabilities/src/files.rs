//! Read-only directory trees (`spec.files`): unpacked once per digest on the node, each
//! mounted read-only in every instance.

use crate::capability::{Capability, GrantError};
use shoal_api::capabilities::files;
use shoal_api::{ComponentRef, ObjectRef, WorkloadSpec};
use shoal_blobs::Blobs;
use shoal_runtime::{Grant, InstanceBuilder};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime_wasi::FsPerms;

/// The file-mount capability.
pub struct Files {
    blobs: Blobs,
    dir: PathBuf,
}

impl Files {
    /// Mounts trees from `blobs`, unpacked under `dir`.
    pub fn new(blobs: Blobs, dir: PathBuf) -> Self {
        Self { blobs, dir }
    }
}

/// One deployment's mounts: (host directory, path the guest sees).
struct Mounts(Vec<(PathBuf, String)>);

#[async_trait::async_trait]
impl Capability for Files {
    fn name(&self) -> &'static str {
        files::NAME
    }

    async fn grant(
        &self,
        _owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        let wanted = files::mounts(spec);
        if wanted.is_empty() {
            return Ok(None);
        }
        let mut mounts = Vec::new();
        for (i, f) in wanted.iter().enumerate() {
            let failed = |message: String| GrantError {
                field: format!("spec.files[{i}].source"),
                message,
            };
            let ComponentRef::Digest(digest) = &f.source else {
                return Err(failed(format!("'{}' is not an uploaded tree", f.source)));
            };
            let dir = self
                .blobs
                .unpacked(digest, &self.dir)
                .await
                .map_err(|e| failed(e.to_string()))?;
            mounts.push((dir, f.mount.clone()));
        }
        Ok(Some(Arc::new(Mounts(mounts))))
    }
}

impl Grant for Mounts {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        for (host_dir, mount) in &self.0 {
            // Read-only: cap-std confines every lookup under the directory, `..` and symlinks
            // included.
            let mounted = instance
                .wasi()
                .preopened_dir(host_dir, mount, FsPerms::ReadOnly);
            if let Err(e) = mounted {
                instance.event(&format!("cannot mount {mount}: {e:#}"));
            }
        }
    }
}
