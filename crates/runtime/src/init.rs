//! Pre-initialisation on a node (an App's `spec.init`): the snapshot `snapshot` makes, made
//! in the compiler child when the node has compile limits (it runs the guest's code) and kept
//! as a WebAssembly file in the compile cache directory, named after the component's digest,
//! the function and the engine (a new wasmtime, and so a new wizer, makes new snapshots). The
//! snapshot is then compiled and cached like any component, under its own digest.

use crate::code::Artifact;
use crate::snapshot::{Init, wizen};
use crate::{LoadError, Runtime};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// How a snapshot was obtained (see [`Runtime::pre_initialise`]).
#[derive(Debug, Clone)]
pub struct Initialised {
    /// The function that ran.
    pub function: String,
    /// Time taken to run it and snapshot, or to find its snapshot in the cache.
    pub elapsed: Duration,
    /// The snapshot was already cached: nothing ran.
    pub cached: bool,
}

impl Runtime {
    /// The snapshot of `artifact` after `init`: from the cache when this node made it before,
    /// else made now (in the compiler child when the node has compile limits) and cached. It
    /// is a component of its own, to load with [`Runtime::load_http`].
    ///
    /// # Caveats
    /// Blocks while the init runs; call it from a blocking thread.
    ///
    /// # Errors
    /// [`LoadError::Init`] when the init fails, traps, calls an import or runs past a bound.
    pub fn pre_initialise(
        &self,
        artifact: &Artifact,
        init: &Init,
    ) -> Result<(Artifact, Initialised), LoadError> {
        let start = Instant::now();
        let hex = artifact
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&artifact.digest);
        let function = hex::encode(&Sha256::digest(init.function.as_bytes())[..8]);
        let name = format!("{hex}-init-{function}-{}.wasm", self.sync.compat);
        let (mut snapshot, made) =
            crate::code::derived(&self.cache_dir, &name, |tmp| match &self.compile_limits {
                Some(limits) => crate::compiler::init_in_child(limits, init, &artifact.path, tmp),
                None => {
                    let bytes = std::fs::read(&artifact.path)?;
                    let config = crate::compiler::engine_config(true);
                    let snapshot = wizen(&bytes, init, config).map_err(LoadError::Init)?;
                    Ok(std::fs::write(tmp, snapshot)?)
                }
            })?;
        snapshot.snapshot = true;
        Ok((
            snapshot,
            Initialised {
                function: init.function.clone(),
                elapsed: start.elapsed(),
                cached: !made,
            },
        ))
    }
}
