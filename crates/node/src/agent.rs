//! The node agent: App objects in, running components and App status out.

use crate::watch::{Change, Key, watch};
use crate::{Blobs, RouteTable, Routes};
use shoal_api::{
    Activity, App, EventType, NodeAppStatus, ObjectRef, Phase, ScaleStatus, short_digest,
};
use shoal_runtime::{ActivityState, HttpApp, HttpComponent, LoadError, Origin, Runtime};
use shoal_store::{Objects, Precondition, StoreError, app_key};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// How often the agent looks for apps that went idle (and reports those that came back).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Node-level settings of the agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's name, used as the source of events.
    pub node_name: String,
    /// Components compiled at once; the rest wait. (Compiler threads run at a lower priority
    /// than serving, so this bounds memory and queueing more than CPU.)
    pub compile_concurrency: usize,
    /// Where shipped file trees are unpacked, one directory per digest.
    pub files_dir: std::path::PathBuf,
    /// Serve only the apps the cluster placed on this node (`status.placement`); false: every
    /// app (a single node).
    pub placed_only: bool,
}

/// Watches Apps and keeps this node's route table and the Apps' status in line with them.
///
/// # Guarantees
/// Level-triggered: on start, after any watch error and on every change it compares each App's
/// latest spec with what runs. A new generation replaces the serving one only once it compiled
/// and passed the handler check; until then (or if it fails) the previous one keeps serving.
/// Compilation runs on blocking threads, at most `compile_concurrency` at once.
pub struct Agent {
    /// Apps this node serves now (for its heartbeat).
    serving: Arc<std::sync::atomic::AtomicU32>,
    objects: Objects,
    blobs: Blobs,
    runtime: Arc<Runtime>,
    routes: Routes,
    cfg: AgentConfig,
}

enum Msg {
    /// The full set of Apps, after a (re-)list.
    Resync(Vec<App>),
    Put(Box<App>),
    Delete(Key),
    Loaded {
        key: Key,
        generation: u64,
        /// The component, or the event reason and message of why it cannot be loaded.
        result: Result<LoadedComponent, (&'static str, String)>,
    },
    /// Time to look for apps that went idle or came back.
    Sweep,
    /// A new generation's health check ended.
    Checked {
        key: Key,
        generation: u64,
        app: Arc<HttpApp>,
        routes: Vec<shoal_api::Route>,
        how: String,
        result: Result<(), String>,
    },
}

struct LoadedComponent {
    component: HttpComponent,
    how: String,
    /// It was compiled now (not loaded from the cache or shared).
    compiled: bool,
}

struct Deployed {
    generation: u64,
    app: Arc<HttpApp>,
    routes: Vec<shoal_api::Route>,
    /// The app's activity as last written to its status.
    reported: ActivityState,
}

#[derive(Default)]
struct State {
    desired: HashMap<Key, App>,
    deployed: HashMap<Key, Deployed>,
    loading: HashSet<(Key, u64)>,
    /// Generations ready to serve once their health check passes.
    checking: HashSet<(Key, u64)>,
    failed: HashMap<(Key, u64), String>,
    /// Compiled components ready to deploy, by (app, generation).
    loaded: HashMap<(Key, u64), HttpComponent>,
}

fn key_of(app: &App) -> Key {
    (app.metadata.namespace.clone(), app.metadata.name.clone())
}

impl Agent {
    /// An agent serving into `routes`.
    pub fn new(
        objects: Objects,
        blobs: Blobs,
        runtime: Arc<Runtime>,
        routes: Routes,
        cfg: AgentConfig,
    ) -> Self {
        Self {
            serving: Arc::default(),
            objects,
            blobs,
            runtime,
            routes,
            cfg,
        }
    }

    fn is_placed_here(&self, app: &App) -> bool {
        !self.cfg.placed_only
            || app
                .status
                .placement
                .as_ref()
                .is_some_and(|p| p.nodes.contains(&self.cfg.node_name))
    }

    /// The number of apps this node serves, kept current while the agent runs.
    pub fn serving(&self) -> Arc<std::sync::atomic::AtomicU32> {
        self.serving.clone()
    }

    /// Marks every App this node will serve as not Ready yet: a starting node has loaded
    /// nothing, so a status left Ready by its previous run would be a lie until it reloads.
    /// Call before the API starts answering, so no client sees the stale status.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn mark_unloaded(&self) -> Result<(), StoreError> {
        let (apps, _) = self.objects.list::<App>("apps/").await?;
        for app in apps.iter().filter(|a| a.status.phase == Phase::Ready) {
            let generation = app.metadata.generation;
            let patch = Patch::NodeStarting {
                node: self.cfg.node_name.clone(),
            };
            let now = chrono::Utc::now();
            let node = &self.cfg.node_name;
            self.write_status(&key_of(app), generation, |s| {
                patch.apply(s, node, generation, now)
            })
            .await;
        }
        Ok(())
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel(1024);
        let watcher = tokio::spawn(watch(
            self.objects.clone(),
            "apps/",
            tx.clone(),
            |change| match change {
                Change::Resync(apps) => Msg::Resync(apps),
                Change::Put(app) => Msg::Put(Box::new(app)),
                Change::Delete(key) => Msg::Delete(key),
            },
            shutdown.clone(),
        ));
        let compile_slots = Arc::new(Semaphore::new(self.cfg.compile_concurrency.max(1)));
        let mut state = State::default();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg { Some(m) => m, None => break },
                _ = sweep.tick() => Msg::Sweep,
            };
            // An app placed elsewhere is, for this node, an app that does not exist.
            let msg = match msg {
                Msg::Resync(apps) => Msg::Resync(
                    apps.into_iter()
                        .filter(|a| self.is_placed_here(a))
                        .collect(),
                ),
                Msg::Put(app) if !self.is_placed_here(&app) => Msg::Delete(key_of(&app)),
                other => other,
            };
            let touched: Vec<Key> = match msg {
                Msg::Resync(apps) => {
                    state.desired = apps.into_iter().map(|a| (key_of(&a), a)).collect();
                    let gone: Vec<Key> = state
                        .deployed
                        .keys()
                        .filter(|k| !state.desired.contains_key(*k))
                        .cloned()
                        .collect();
                    for k in &gone {
                        state.deployed.remove(k);
                    }
                    if !gone.is_empty() {
                        self.publish_routes(&state);
                    }
                    state.desired.keys().cloned().collect()
                }
                Msg::Sweep => {
                    self.sweep(&mut state).await;
                    vec![]
                }
                Msg::Put(app) => {
                    let key = key_of(&app);
                    state.desired.insert(key.clone(), *app);
                    vec![key]
                }
                Msg::Delete(key) => {
                    state.desired.remove(&key);
                    if state.deployed.remove(&key).is_some() {
                        self.publish_routes(&state);
                        tracing::info!("{}: deleted; no longer served", app_ref(&key));
                    }
                    vec![]
                }
                Msg::Loaded {
                    key,
                    generation,
                    result,
                } => {
                    state.loading.remove(&(key.clone(), generation));
                    match result {
                        Ok(loaded) => {
                            if loaded.compiled {
                                let message = format!(
                                    "{} {}",
                                    short_digest(loaded.component.digest()),
                                    loaded.how
                                );
                                self.event(&key, EventType::Normal, "Compiled", &message)
                                    .await;
                            }
                            state
                                .loaded
                                .insert((key.clone(), generation), loaded.component);
                            if let Some(app) = state
                                .desired
                                .get(&key)
                                .filter(|a| a.metadata.generation == generation)
                                .cloned()
                            {
                                self.deploy(&mut state, &app, &loaded.how, &tx).await;
                            }
                        }
                        Err((reason, message)) => {
                            state
                                .failed
                                .insert((key.clone(), generation), message.clone());
                            if state
                                .desired
                                .get(&key)
                                .is_some_and(|a| a.metadata.generation == generation)
                            {
                                tracing::warn!(
                                    "{}: generation {generation} failed: {message}",
                                    app_ref(&key)
                                );
                                self.event(&key, EventType::Warning, reason, &message).await;
                            }
                        }
                    }
                    vec![key]
                }
                Msg::Checked {
                    key,
                    generation,
                    app,
                    routes,
                    how,
                    result,
                } => {
                    state.checking.remove(&(key.clone(), generation));
                    let current = state
                        .desired
                        .get(&key)
                        .is_some_and(|a| a.metadata.generation == generation);
                    match result {
                        Ok(()) if current => {
                            let how = format!("{how}, health check passed");
                            self.install(&mut state, &key, generation, app, routes, &how)
                                .await;
                        }
                        Ok(()) => {}
                        Err(message) => {
                            tracing::warn!(
                                "{}: generation {generation} failed its health check: {message}",
                                app_ref(&key)
                            );
                            if current {
                                self.event(&key, EventType::Warning, "HealthCheckFailed", &message)
                                    .await;
                            }
                            state.failed.insert((key.clone(), generation), message);
                        }
                    }
                    vec![key]
                }
            };
            for key in touched {
                self.reconcile_app(&mut state, &key, &tx, &compile_slots)
                    .await;
            }
            // Compiled code is held by the apps that serve it; what no deploy took is released.
            let desired = &state.desired;
            state.loaded.retain(|(key, generation), _| {
                desired
                    .get(key)
                    .is_some_and(|a| a.metadata.generation == *generation)
            });
            // Failures matter only while they describe an App's latest generation.
            let desired = &state.desired;
            state.failed.retain(|(key, generation), _| {
                desired
                    .get(key)
                    .is_some_and(|a| a.metadata.generation == *generation)
            });
        }
        watcher.abort();
    }

    /// Brings one App towards its spec; idempotent.
    async fn reconcile_app(
        &self,
        state: &mut State,
        key: &Key,
        tx: &mpsc::Sender<Msg>,
        slots: &Arc<Semaphore>,
    ) {
        let Some(app) = state.desired.get(key).cloned() else {
            return;
        };
        let generation = app.metadata.generation;
        let latest = (key.clone(), generation);
        let known = Known {
            serving: state.deployed.get(key).map(|d| (d.generation, d.reported)),
            failed: state.failed.get(&latest).cloned(),
            in_progress: state.checking.contains(&latest) || state.loading.contains(&latest),
        };
        match reconcile(&app, &known) {
            Step::Report(patch) => {
                let now = chrono::Utc::now();
                let node = &self.cfg.node_name;
                self.write_status(key, generation, |s| patch.apply(s, node, generation, now))
                    .await;
                return;
            }
            Step::Wait => return,
            Step::Load => {
                state.loading.insert(latest);
            }
        }
        let digest = app.spec.component.clone();
        let (runtime, tx, slots, key, blobs) = (
            self.runtime.clone(),
            tx.clone(),
            slots.clone(),
            key.clone(),
            self.blobs.clone(),
        );
        tracing::info!(
            "{}: loading generation {generation} ({})",
            app_ref(&key),
            short_digest(&digest)
        );
        tokio::spawn(async move {
            let load = async {
                let path = blobs
                    .path(&digest)
                    .await
                    .map_err(|m| ("Failed", format!("component: {m}")))?;
                let _slot = slots.acquire_owned().await;
                let loaded = tokio::task::spawn_blocking(move || {
                    runtime.load_http(&digest, &path).map_err(|e| {
                        let reason = match e {
                            LoadError::Compile(_) => "CompileFailed",
                            _ => "Failed",
                        };
                        (reason, format!("component {} {e}", short_digest(&digest)))
                    })
                })
                .await
                .unwrap_or_else(|e| {
                    Err(("Failed", format!("loading the component panicked: {e}")))
                })?;
                Ok(LoadedComponent {
                    compiled: loaded.origin == Origin::Compiled,
                    how: match loaded.origin {
                        Origin::Shared => "compiled code already loaded".to_string(),
                        Origin::Cache => {
                            format!("loaded compiled code from cache in {:.1?}", loaded.elapsed)
                        }
                        Origin::Compiled => format!("compiled in {:.1?}", loaded.elapsed),
                    },
                    component: loaded.component,
                })
            };
            let result = load.await;
            let _ = tx
                .send(Msg::Loaded {
                    key,
                    generation,
                    result,
                })
                .await;
        });
    }

    async fn deploy(&self, state: &mut State, app: &App, how: &str, tx: &mpsc::Sender<Msg>) {
        let key = key_of(app);
        let generation = app.metadata.generation;
        let Some(component) = state.loaded.remove(&(key.clone(), generation)) else {
            return;
        };
        let prepared = match self.materialize_files(app).await {
            Ok(mounts) => HttpApp::new(app, component, &self.runtime, mounts),
            Err(e) => Err(e),
        };
        let http = match prepared {
            Ok(h) => Arc::new(h),
            Err(message) => {
                tracing::warn!(
                    "{}: generation {generation} failed: {message}",
                    app_ref(&key)
                );
                self.event(&key, EventType::Warning, "Failed", &message)
                    .await;
                state.failed.insert((key, generation), message);
                return;
            }
        };
        let routes = app.spec.routes.clone();
        let Some(check) = app.spec.health_check.clone() else {
            self.install(state, &key, generation, http, routes, how)
                .await;
            return;
        };
        // Checked off the agent's loop: other apps keep being reconciled meanwhile, and the
        // previous generation keeps serving until this one passes.
        state.checking.insert((key.clone(), generation));
        let (tx, how) = (tx.clone(), how.to_string());
        tokio::spawn(async move {
            let result = crate::health::check(&http, &check.path).await;
            let _ = tx
                .send(Msg::Checked {
                    key,
                    generation,
                    app: http,
                    routes,
                    how,
                    result,
                })
                .await;
        });
    }

    /// Makes `http` the app's serving generation.
    async fn install(
        &self,
        state: &mut State,
        key: &Key,
        generation: u64,
        http: Arc<HttpApp>,
        routes: Vec<shoal_api::Route>,
        how: &str,
    ) {
        let digest = http.digest().to_string();
        let reported = http.activity();
        state.deployed.insert(
            key.clone(),
            Deployed {
                generation,
                app: http,
                routes,
                reported,
            },
        );
        self.publish_routes(state);
        let message = format!(
            "generation {generation} serving {} ({how})",
            short_digest(&digest)
        );
        tracing::info!("{}: {message}", app_ref(key));
        self.event(key, EventType::Normal, "Serving", &message)
            .await;
    }

    /// Releases the apps idle for their `spec.scale.idleAfter`, and reports those that went
    /// idle or came back (a request activates an idle app by itself, on the ingress).
    async fn sweep(&self, state: &mut State) {
        let mut changed = Vec::new();
        for (key, d) in &mut state.deployed {
            d.app.scale_to_zero_if_idle();
            let now = d.app.activity();
            if now != d.reported {
                changed.push((key.clone(), d.reported, now));
                d.reported = now;
            }
        }
        for (key, before, now) in changed {
            let Some(generation) = state.desired.get(&key).map(|a| a.metadata.generation) else {
                continue;
            };
            let (reason, message) = if now.active {
                let n = now.activations - before.activations;
                (
                    "Activated",
                    format!(
                        "a request loaded the component again{}",
                        match n {
                            1 => String::new(),
                            n => format!(" ({n} times since the last report)"),
                        }
                    ),
                )
            } else {
                (
                    "ScaledToZero",
                    "idle: released the component; the next request loads it again".to_string(),
                )
            };
            self.event(&key, EventType::Normal, reason, &message).await;
            let scale = scale_status(now, chrono::Utc::now());
            self.write_status(&key, generation, |s| s.scale = Some(scale.clone()))
                .await;
        }
    }

    /// Unpacks the app's file trees (once per digest) and returns `(host dir, mount)` pairs.
    async fn materialize_files(
        &self,
        app: &App,
    ) -> Result<Vec<(std::path::PathBuf, String)>, String> {
        let mut mounts = Vec::new();
        for (i, f) in app.spec.files.iter().enumerate() {
            let at = format!("spec.files[{i}]");
            let hex = shoal_store::parse_digest(&f.source)
                .ok_or_else(|| format!("{at}.source: '{}' is not an uploaded tree", f.source))?;
            let dest = self.cfg.files_dir.join(hex);
            if !dest.is_dir() {
                let blob = self
                    .blobs
                    .path(&f.source)
                    .await
                    .map_err(|m| format!("{at}.source: {m}"))?;
                let target = dest.clone();
                tokio::task::spawn_blocking(move || {
                    let archive = std::fs::File::open(&blob)
                        .map_err(|e| format!("cannot open {}: {e}", blob.display()))?;
                    shoal_store::trees::unpack(std::io::BufReader::new(archive), &target)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{at}.source: {e}"))?;
            }
            mounts.push((dest, f.mount.clone()));
        }
        Ok(mounts)
    }

    fn publish_routes(&self, state: &State) {
        let count = u32::try_from(state.deployed.len()).unwrap_or(u32::MAX);
        self.serving
            .store(count, std::sync::atomic::Ordering::Relaxed);
        let entries = state
            .deployed
            .values()
            .flat_map(|d| d.routes.iter().map(|r| (r.clone(), d.app.clone())));
        self.routes.store(Arc::new(RouteTable::new(entries)));
    }

    async fn event(&self, key: &Key, type_: EventType, reason: &str, message: &str) {
        let source = format!("node/{}", self.cfg.node_name);
        if let Err(e) = self
            .objects
            .record_event(&app_ref(key), type_, reason, message, &source)
            .await
        {
            tracing::warn!("{}: cannot record event: {e}", app_ref(key));
        }
    }

    /// Applies `update` to the stored status if the stored App is still at `generation`.
    async fn write_status(
        &self,
        key: &Key,
        generation: u64,
        update: impl Fn(&mut shoal_api::AppStatus),
    ) {
        let store_key = app_key(&key.0, &key.1);
        for _ in 0..5 {
            let current = match self.objects.get::<App>(&store_key).await {
                Ok(Some(app)) => app,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("{}: cannot read status: {e}", app_ref(key));
                    return;
                }
            };
            if current.metadata.generation != generation {
                return;
            }
            let mut next = current.clone();
            update(&mut next.status);
            next.status.observed_generation = generation;
            if next.status == current.status {
                return;
            }
            let rv = current.metadata.resource_version;
            match self
                .objects
                .put(&store_key, next, Precondition::ModRevision(rv))
                .await
            {
                Ok(_) => return,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => {
                    tracing::warn!("{}: cannot write status: {e}", app_ref(key));
                    return;
                }
            }
        }
    }
}

/// What the node knows of one App beyond the object itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    /// The generation this node serves, with the app's activity as last reported.
    pub serving: Option<(u64, ActivityState)>,
    /// Why the latest generation cannot serve, once that is known.
    pub failed: Option<String>,
    /// The latest generation is being loaded or health-checked; its end reconciles again.
    pub in_progress: bool,
}

/// The next step for an App on this node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Store what the status should say.
    Report(Patch),
    /// Compile or load the latest generation (then check and install it).
    Load,
    /// Nothing until the work under way ends.
    Wait,
}

/// A change to an App's status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Patch {
    /// `generation` serves `digest`.
    Serving {
        generation: u64,
        digest: String,
        activity: ActivityState,
    },
    /// The latest generation cannot serve; `message` says why (and what serves instead).
    Failed { message: String },
    /// The node has just started and serves nothing yet.
    NodeStarting { node: String },
}

impl Patch {
    /// Applies the patch; idempotent (a condition keeps its transition time, the scale state
    /// its `since`, while they do not change).
    pub(crate) fn apply(
        &self,
        s: &mut shoal_api::AppStatus,
        node: &str,
        generation: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let (phase, reason, message) = match self {
            Patch::Serving {
                generation: serving,
                digest,
                activity,
            } => {
                let scale = scale_status(*activity, now);
                if s.scale.as_ref().map(|x| x.state) != Some(scale.state) {
                    s.scale = Some(scale);
                }
                s.serving_generation = *serving;
                s.serving_component = Some(digest.clone());
                let message = format!("generation {serving} serves {}", short_digest(digest));
                (Phase::Ready, "Serving", message)
            }
            Patch::Failed { message } => (Phase::Failed, "ComponentFailed", message.clone()),
            Patch::NodeStarting { node } => (
                Phase::Pending,
                "NodeStarting",
                format!("node/{node} is starting and loading the component"),
            ),
        };
        s.nodes.insert(
            node.to_string(),
            NodeAppStatus {
                generation,
                phase,
                reason: reason.to_string(),
                message: (phase != Phase::Ready).then(|| message.clone()),
            },
        );
        summarize(s, generation, &message, now);
    }
}

/// The app's phase from its holders' reports about `generation`: Failed if one cannot serve
/// it, Ready once every holder serves it, Pending until then. `message` is this node's.
fn summarize(
    s: &mut shoal_api::AppStatus,
    generation: u64,
    message: &str,
    now: chrono::DateTime<chrono::Utc>,
) {
    let holders: Vec<String> = match &s.placement {
        Some(p) if !p.nodes.is_empty() => p.nodes.clone(),
        _ => s.nodes.keys().cloned().collect(),
    };
    let several = holders.len() > 1;
    let reports: Vec<(&String, &NodeAppStatus)> = holders
        .iter()
        .filter_map(|n| s.nodes.get(n).map(|r| (n, r)))
        .filter(|(_, r)| r.generation == generation)
        .collect();
    let said = |n: &str, text: &str| {
        if several {
            format!("node/{n}: {text}")
        } else {
            text.to_string()
        }
    };
    let (phase, ready, reason, text) =
        if let Some((n, r)) = reports.iter().find(|(_, r)| r.phase != Phase::Ready) {
            let text = said(n, r.message.as_deref().unwrap_or(""));
            (r.phase, false, r.reason.clone(), text)
        } else if reports.len() == holders.len() {
            (
                Phase::Ready,
                true,
                "Serving".to_string(),
                message.to_string(),
            )
        } else {
            let waiting: Vec<String> = holders
                .iter()
                .filter(|h| !reports.iter().any(|(n, _)| n == h))
                .map(|h| format!("node/{h}"))
                .collect();
            let text = format!(
                "waiting for {} to serve generation {generation}",
                waiting.join(", ")
            );
            (Phase::Pending, false, "Loading".to_string(), text)
        };
    s.phase = phase;
    s.message = (!ready).then(|| text.clone());
    s.set_condition("Ready", ready, &reason, &text, now);
}

/// Decides the next step for `app` given what the node knows of it; level-triggered and
/// idempotent: it looks only at the latest spec and the node's state, never at what woke it.
pub(crate) fn reconcile(app: &App, known: &Known) -> Step {
    let generation = app.metadata.generation;
    match &known.serving {
        Some((serving, activity)) if *serving == generation => {
            return Step::Report(Patch::Serving {
                generation,
                digest: app.spec.component.clone(),
                activity: *activity,
            });
        }
        _ => {}
    }
    if let Some(message) = &known.failed {
        let message = match known.serving {
            Some((g, _)) => format!("{message}; generation {g} keeps serving"),
            None => message.clone(),
        };
        return Step::Report(Patch::Failed { message });
    }
    if known.in_progress {
        return Step::Wait;
    }
    Step::Load
}

/// The status of an app whose activity is `a`, as of `since`.
fn scale_status(a: ActivityState, since: chrono::DateTime<chrono::Utc>) -> ScaleStatus {
    ScaleStatus {
        state: if a.active {
            Activity::Active
        } else {
            Activity::Idle
        },
        since,
        scaled_to_zero: a.releases,
        activations: a.activations,
    }
}

fn app_ref(key: &Key) -> ObjectRef {
    ObjectRef {
        kind: "app".into(),
        namespace: key.0.clone(),
        name: key.1.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::AppStatus;

    fn app(generation: u64) -> App {
        let yaml = format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: a}}\nspec:\n  component: sha256:{}\n  routes: [{{path: /}}]\n",
            "0".repeat(64)
        );
        let mut app: App = serde_yaml::from_str(&yaml).unwrap();
        app.metadata.generation = generation;
        app
    }

    const ACTIVE: ActivityState = ActivityState {
        active: true,
        activations: 0,
        releases: 0,
    };

    #[test]
    fn reconcile_decides_from_the_latest_generation_and_what_the_node_knows() {
        let a = app(2);
        let known = |serving: Option<u64>, failed: Option<&str>, in_progress: bool| Known {
            serving: serving.map(|g| (g, ACTIVE)),
            failed: failed.map(str::to_string),
            in_progress,
        };
        let serving = Step::Report(Patch::Serving {
            generation: 2,
            digest: a.spec.component.clone(),
            activity: ACTIVE,
        });
        for (k, expected) in [
            (known(None, None, false), Step::Load),
            (known(Some(1), None, false), Step::Load),
            (known(Some(1), None, true), Step::Wait),
            (known(Some(2), None, false), serving.clone()),
            // Serving wins over a stale failure of the same generation.
            (known(Some(2), Some("x"), false), serving),
            (
                known(Some(1), Some("no handler"), false),
                Step::Report(Patch::Failed {
                    message: "no handler; generation 1 keeps serving".into(),
                }),
            ),
            (
                known(None, Some("no handler"), true),
                Step::Report(Patch::Failed {
                    message: "no handler".into(),
                }),
            ),
        ] {
            assert_eq!(reconcile(&a, &k), expected, "{k:?}");
        }
    }

    #[test]
    fn patches_are_idempotent() {
        let t0 = chrono::Utc::now();
        let t1 = t0 + chrono::Duration::seconds(5);
        let patch = Patch::Serving {
            generation: 3,
            digest: "sha256:abc".into(),
            activity: ACTIVE,
        };
        let mut s = AppStatus::default();
        patch.apply(&mut s, "n1", 3, t0);
        let once = s.clone();
        patch.apply(&mut s, "n1", 3, t1);
        assert_eq!(s, once, "a second apply changes nothing, not even times");
        assert_eq!(s.phase, Phase::Ready);
        assert_eq!(s.scale.as_ref().unwrap().since, t0);
        Patch::Failed {
            message: "bad".into(),
        }
        .apply(&mut s, "n1", 3, t1);
        assert_eq!(s.conditions[0].last_transition_time, t1);
        assert_eq!(s.serving_generation, 3, "what serves is still reported");
    }

    #[test]
    fn an_app_is_ready_once_every_holder_serves_its_generation() {
        let now = chrono::Utc::now();
        let serving = |g| Patch::Serving {
            generation: g,
            digest: "sha256:abc".into(),
            activity: ACTIVE,
        };
        let mut s = AppStatus {
            placement: Some(shoal_api::PlacementStatus {
                nodes: vec!["n1".into(), "n2".into()],
                message: None,
            }),
            ..AppStatus::default()
        };
        serving(1).apply(&mut s, "n1", 1, now);
        assert_eq!(s.phase, Phase::Pending);
        assert_eq!(
            s.message.as_deref(),
            Some("waiting for node/n2 to serve generation 1")
        );
        serving(1).apply(&mut s, "n2", 1, now);
        assert_eq!((s.phase, s.message.as_deref()), (Phase::Ready, None));
        // Generation 2: n2 fails it; n1's report about generation 1 does not count for 2.
        Patch::Failed {
            message: "no handler".into(),
        }
        .apply(&mut s, "n2", 2, now);
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(s.message.as_deref(), Some("node/n2: no handler"));
    }

    /// A real node agent on a store and runtime in a temp dir, with tokio's clock paused.
    #[tokio::test(start_paused = true)]
    async fn an_app_without_requests_goes_idle_after_its_idle_after_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = shoal_store::Embedded::open(&dir.path().join("store.redb")).unwrap();
        let objects = Objects::new(Arc::new(store));
        let blobs = shoal_store::BlobStore::open(dir.path().join("blobs")).unwrap();
        let hello = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/hello-c/hello.wasm"
        );
        let digest = blobs.put(&std::fs::read(hello).unwrap()).unwrap();
        let runtime = Runtime::new(shoal_runtime::RuntimeConfig {
            max_instances: 4,
            cache_dir: dir.path().join("compiled"),
            keyvalue_path: dir.path().join("keyvalue.redb"),
            logs: shoal_store::LogDir::open(dir.path().join("logs"), 1 << 20).unwrap(),
            busy_threads: 1,
            pooling: false,
            keep_resident: 0,
        })
        .unwrap();
        let agent = Agent::new(
            objects.clone(),
            Blobs::local(blobs),
            Arc::new(runtime),
            Arc::default(),
            AgentConfig {
                node_name: "test".into(),
                compile_concurrency: 1,
                files_dir: dir.path().join("files"),
                placed_only: false,
            },
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(agent.run(shutdown.clone()));

        let mut a = app(1);
        a.spec.component = digest;
        a.spec.scale = Some(serde_yaml::from_str("{idleAfter: 1m}").unwrap());
        let key = app_key("default", "a");
        objects.put(&key, a, Precondition::Absent).await.unwrap();
        let scale = || async {
            let a: App = objects.get(&key).await.unwrap().unwrap();
            a.status.scale.map(|s| s.state)
        };
        while scale().await.is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let served_at = tokio::time::Instant::now();
        assert_eq!(scale().await, Some(Activity::Active));
        while scale().await == Some(Activity::Active) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(scale().await, Some(Activity::Idle));
        let idle_after = served_at.elapsed();
        assert!(
            idle_after >= Duration::from_secs(59) && idle_after < Duration::from_secs(70),
            "went idle after {idle_after:?}"
        );
        shutdown.cancel();
    }
}
