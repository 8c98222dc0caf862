//! The unit every capability is: the [`Capability`] trait and what its steps return.

use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{EngineKind, Grant, Host, InstanceBuilder};
use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::Linker;

/// One capability: see the crate docs for its lifecycle.
#[async_trait::async_trait]
pub trait Capability: Send + Sync + 'static {
    /// Its name: the name of its spec module in `shoal_api::capabilities`.
    fn name(&self) -> &'static str;

    /// Adds its host interfaces to the engine's linker (once per engine; interfaces with
    /// `async func`s only to the [`EngineKind::Concurrent`] one).
    ///
    /// # Errors
    /// An interface is already defined.
    fn link(&self, _linker: &mut Linker<Host>, _kind: EngineKind) -> wasmtime::Result<()> {
        Ok(())
    }

    /// What `spec` of `owner` is granted; `None` when it grants nothing to shape instances
    /// with. Once per deployment (a job: once per attempt).
    ///
    /// # Errors
    /// The grant cannot be built (a tree that cannot be fetched, say); the field says which.
    async fn grant(
        &self,
        owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError>;

    /// Removes what `owner` kept through this capability (its key-value data, its
    /// databases): the app is deleted, or another app of its name replaces it.
    ///
    /// # Errors
    /// What could not be removed.
    async fn forget(&self, _owner: &ObjectRef) -> Result<(), String> {
        Ok(())
    }
}

/// Why a deployment's grants cannot be built: the spec field and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct GrantError {
    /// e.g. `spec.files[0].source`.
    pub field: String,
    /// What went wrong.
    pub message: String,
}

/// A grant that hands every instance the same state (found with [`Host::granted`]).
struct Shared<T>(Arc<T>);

impl<T: Any + Send + Sync> Grant for Shared<T> {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        instance.grant(self.0.clone());
    }
}

/// A grant of `state` to every instance.
pub(crate) fn shared<T: Any + Send + Sync>(state: T) -> Arc<dyn Grant> {
    Arc::new(Shared(Arc::new(state)))
}

/// Why the node's capabilities cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The key-value file cannot be opened (or another process holds it).
    #[error("cannot open the key-value store {path}: {reason}")]
    KeyValue {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS client configuration for outbound HTTPS cannot be built.
    #[error("cannot set up TLS for outbound HTTP: {0}")]
    Tls(String),
}
