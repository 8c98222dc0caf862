//! What the agent knows between steps: what each App should run, what runs, and the work
//! under way; and what that work reports when it ends.

use shoal_api::{App, EventReason};
use shoal_runtime::{ActivityState, HttpApp, HttpComponent};
use shoal_store::ObjectKey;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A generation's component, loaded.
pub(crate) struct LoadedComponent {
    pub(super) component: HttpComponent,
    pub(super) how: String,
    /// It was compiled now (not loaded from the cache or shared).
    pub(super) compiled: bool,
}

/// What work the agent started reports when it ends.
pub(crate) enum Report {
    /// A generation's component loaded, or why it cannot.
    Loaded {
        key: ObjectKey,
        generation: u64,
        result: Result<LoadedComponent, (EventReason, String)>,
    },
    /// A new generation's health check ended.
    Checked {
        key: ObjectKey,
        generation: u64,
        app: Arc<HttpApp>,
        routes: Vec<shoal_api::Route>,
        how: String,
        result: Result<(), String>,
    },
}

pub(super) struct Deployed {
    pub(super) generation: u64,
    pub(super) app: Arc<HttpApp>,
    pub(super) routes: Vec<shoal_api::Route>,
    /// The app's activity as last written to its status.
    pub(super) reported: ActivityState,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) desired: HashMap<ObjectKey, App>,
    pub(super) deployed: HashMap<ObjectKey, Deployed>,
    pub(super) loading: HashSet<(ObjectKey, u64)>,
    /// Generations ready to serve once their health check passes.
    pub(super) checking: HashSet<(ObjectKey, u64)>,
    pub(super) failed: HashMap<(ObjectKey, u64), String>,
    /// Compiled components ready to deploy, by (app, generation).
    pub(super) loaded: HashMap<(ObjectKey, u64), HttpComponent>,
    /// The span of each deploy under way (load, health check, until it serves or fails),
    /// by (app, generation); ends when it is taken out.
    pub(super) deploys: HashMap<(ObjectKey, u64), shoal_trace::Span>,
}

impl State {
    /// Whether `generation` is still the latest of App `key`.
    pub(super) fn is_latest(&self, key: &ObjectKey, generation: u64) -> bool {
        self.desired
            .get(key)
            .is_some_and(|a| a.metadata.generation == generation)
    }
}
