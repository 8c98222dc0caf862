//! Directory trees (`spec.files`): unpacked once per digest on the node and mounted read-only
//! in every instance; a Job's `rw` mount is a scratch copy made for each attempt (its grant)
//! and removed when the attempt is over, so no attempt's writes reach another or the upload.
//!
//! A Job's working directory (`spec.workingDir`, in one of its mounts) is mounted once more as
//! `.`: toolchains built on wasi-libc (C, Rust, Python) resolve relative paths there, and none
//! reads `wasi:cli/environment.initial-cwd` (it is set too, for those that will).

use crate::capability::{Capability, GrantError};
use shoal_api::capabilities::files;
use shoal_api::{ComponentRef, MountMode, ObjectRef, WorkloadSpec};
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
    /// Mounts trees from `blobs`, unpacked under `dir`. Scratch copies left by a node that
    /// stopped mid-attempt are removed.
    pub fn new(blobs: Blobs, dir: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(dir.join(SCRATCH));
        Self { blobs, dir }
    }
}

/// Where writable copies are made, under the trees' directory.
const SCRATCH: &str = "scratch";

/// One deployment's mounts: (host directory, path the guest sees, permissions), its working
/// directory, and the scratch copies they use.
struct Mounts {
    mounts: Vec<(PathBuf, String, FsPerms)>,
    cwd: Option<String>,
    _scratch: Vec<Scratch>,
}

/// A writable copy of a tree, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.0);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || std::fs::remove_dir_all(dir))),
            Err(_) => drop(std::fs::remove_dir_all(dir)),
        }
    }
}

/// Copies the tree at `from` (files and directories only, as unpacked trees are) to `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

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
        let (mut mounts, mut scratch) = (Vec::new(), Vec::new());
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
            if f.mode != Some(MountMode::Rw) {
                mounts.push((dir, f.mount.clone(), FsPerms::ReadOnly));
                continue;
            }
            let copy = Scratch(self.dir.join(SCRATCH).join(format!(
                "{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )));
            let (from, to) = (dir, copy.0.clone());
            tokio::task::spawn_blocking(move || copy_tree(&from, &to))
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(format!("cannot make a writable copy: {e}")))?;
            mounts.push((copy.0.clone(), f.mount.clone(), FsPerms::ReadWrite));
            scratch.push(copy);
        }
        let cwd = files::working_dir(spec);
        if let Some(dir) = cwd {
            let Some((i, rest)) = files::locate(wanted, dir) else {
                return Err(GrantError {
                    field: "spec.workingDir".into(),
                    message: format!("'{dir}' is in none of spec.files' mounts"),
                });
            };
            let (host, _, perms) = &mounts[i];
            let host = host.join(rest);
            if !host.is_dir() {
                return Err(GrantError {
                    field: "spec.workingDir".into(),
                    message: format!(
                        "'{dir}' is not a directory of the tree mounted at {}",
                        wanted[i].mount
                    ),
                });
            }
            mounts.push((host, ".".into(), *perms));
        }
        Ok(Some(Arc::new(Mounts {
            mounts,
            cwd: cwd.map(str::to_string),
            _scratch: scratch,
        })))
    }
}

/// Numbers scratch copies apart.
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Grant for Mounts {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        for (host_dir, mount, perms) in &self.mounts {
            // cap-std confines every lookup under the directory, `..` and symlinks included.
            let mounted = instance.wasi().preopened_dir(host_dir, mount, *perms);
            if let Err(e) = mounted {
                instance.event(&format!("cannot mount {mount}: {e:#}"));
            }
        }
        if let Some(cwd) = &self.cwd {
            instance.wasi().initial_cwd(cwd);
        }
    }
}
