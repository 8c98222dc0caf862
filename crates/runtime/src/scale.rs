//! Scale to zero: an app's compiled component is released after `idleAfter` without requests,
//! and the next request loads it again from the compile cache.
//!
//! What stays while idle is what it takes to come back fast: the app's grants, limits and
//! routes, and the path of its component. The compiled code (and the copy-on-write memory image
//! made from it), the pre-instantiation and any reused instances go; the code stays on disk.

use crate::Runtime;
use crate::component::Prepared;
use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
// tokio's clock (the system's, unless a test pauses it), so that idleness can be tested.
use tokio::time::Instant;

/// Why an idle app's component cannot be loaded again.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// Loading it panicked.
    #[error("reloading the component panicked: {0}")]
    Panicked(String),
    /// It no longer loads (its compiled code and its file are gone, say).
    #[error("component {component} {error}")]
    Load {
        /// The component, shortened.
        component: String,
        /// Why.
        error: crate::LoadError,
    },
}

/// Whether an app holds its component, and the counts of its transitions.
pub(crate) struct Activity {
    active: ArcSwapOption<Prepared>,
    artifact: crate::Artifact,
    runtime: Arc<Runtime>,
    /// One activation at a time; requests arriving meanwhile wait for it.
    activating: tokio::sync::Mutex<()>,
    idle_after: Option<Duration>,
    born: Instant,
    /// Milliseconds after `born` of the latest request.
    last_request: AtomicU64,
    activations: AtomicU64,
    releases: AtomicU64,
    metrics: Arc<shoal_metrics::AppMetrics>,
}

/// A snapshot of an app's activity (see [`crate::HttpApp::activity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityState {
    /// The component is loaded.
    pub active: bool,
    /// Times a request loaded it again after it went idle.
    pub activations: u64,
    /// Times it went idle.
    pub releases: u64,
}

impl Activity {
    pub(crate) fn new(
        component: Arc<Prepared>,
        runtime: Arc<Runtime>,
        idle_after: Option<Duration>,
        metrics: Arc<shoal_metrics::AppMetrics>,
    ) -> Self {
        Self {
            artifact: component.artifact.clone(),
            active: ArcSwapOption::new(Some(component)),
            runtime,
            activating: tokio::sync::Mutex::new(()),
            idle_after,
            born: Instant::now(),
            last_request: AtomicU64::new(0),
            activations: AtomicU64::new(0),
            releases: AtomicU64::new(0),
            metrics,
        }
    }

    pub(crate) fn digest(&self) -> &str {
        &self.artifact.digest
    }

    /// The component for a request, loading it again if the app went idle.
    ///
    /// # Errors
    /// The component can no longer be loaded (its compiled code and its file are gone).
    pub(crate) async fn component(&self) -> Result<Arc<Prepared>, ActivationError> {
        self.touch();
        if let Some(c) = self.active.load_full() {
            return Ok(c);
        }
        let _one = self.activating.lock().await;
        if let Some(c) = self.active.load_full() {
            return Ok(c);
        }
        let (runtime, artifact) = (self.runtime.clone(), self.artifact.clone());
        // Off the ingress thread: a cache miss (the compiled file was removed) compiles.
        let loaded = tokio::task::spawn_blocking(move || runtime.load_http(&artifact))
            .await
            .map_err(|e| ActivationError::Panicked(e.to_string()))?
            .map_err(|error| ActivationError::Load {
                component: self.artifact.short().to_string(),
                error,
            })?;
        let component = loaded.component.inner;
        self.active.store(Some(component.clone()));
        self.activations.fetch_add(1, Ordering::Relaxed);
        self.metrics.activated(loaded.elapsed);
        tracing::debug!(
            "{}: active again in {:.1?} ({:?})",
            self.artifact.short(),
            loaded.elapsed,
            loaded.origin
        );
        Ok(component)
    }

    fn touch(&self) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Most requests of a busy app find the value current: read before writing, so that
        // cores do not fight over the cache line.
        if now.saturating_sub(self.last_request.load(Ordering::Relaxed)) >= 100 {
            self.last_request.store(now, Ordering::Relaxed);
        }
    }

    /// Releases the component if the app has had no request for its `idleAfter` and `quiet`
    /// (nothing in flight) holds; true if it did.
    pub(crate) fn release_if_idle(&self, quiet: bool) -> bool {
        let Some(idle_after) = self.idle_after else {
            return false;
        };
        let last = Duration::from_millis(self.last_request.load(Ordering::Relaxed));
        let idle_for = self.born.elapsed().saturating_sub(last);
        if !quiet || idle_for < idle_after || self.active.load().is_none() {
            return false;
        }
        // A request racing this keeps its own handle; it finishes on it.
        match self.activating.try_lock() {
            Ok(_one) => {
                self.active.store(None);
                self.releases.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn state(&self) -> ActivityState {
        ActivityState {
            active: self.active.load().is_some(),
            activations: self.activations.load(Ordering::Relaxed),
            releases: self.releases.load(Ordering::Relaxed),
        }
    }
}
