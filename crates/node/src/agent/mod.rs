//! The node agent: App objects in, running components and App status out.
//!
//! - `policy`: the pure [`reconcile`](policy::reconcile) — what to do next for one App;
//! - `deploy`: carrying it out — load (compile off the async workers), grant, health check,
//!   install into the route table — and reporting idle apps (scale to zero);
//! - `status`: this node's report in the App's status and its summary.
//!
//! The loop around them is the node's one controller loop (`crate::controller`).

mod deploy;
mod owners;
mod policy;
mod state;
mod status;

use crate::controller::{Controller, Work};
use crate::events::Recorder;
use crate::spin::SpinRoute;
use crate::watch::Change;
use crate::{RouteTable, Routes};
pub use owners::Owners;
use policy::{Known, Step};
use shoal_api::{App, EventReason, Phase};
use shoal_blobs::Blobs;
use shoal_capabilities::Capabilities;
use shoal_logs::LogDir;
use shoal_runtime::Runtime;
use shoal_store::{ObjectKey, Objects, StoreError};
use shoal_trace::SpanKind::Internal;
use state::{Report, State};
use status::Patch;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
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
    /// Serve only the apps the cluster placed on this node (`status.placement`); false: every
    /// app (a single node).
    pub placed_only: bool,
}

/// What the agent works with: the node's parts it shares with the job controller.
#[derive(Clone)]
pub struct AgentParts {
    /// The store, through which Apps arrive and their status is written.
    pub objects: Objects,
    /// Where components come from.
    pub blobs: Blobs,
    /// What runs them.
    pub runtime: Arc<Runtime>,
    /// What they may be granted.
    pub capabilities: Arc<Capabilities>,
    /// Where their logs go.
    pub logs: LogDir,
    /// Whose data this node keeps under each app's name.
    pub owners: Owners,
    /// The namespaces' limits their apps share here.
    pub quotas: crate::quotas::Quotas,
    /// What the apps are measured by.
    pub metrics: Arc<crate::metrics::NodeMetrics>,
    /// Where the apps served here are published for in-memory calls.
    pub apps: crate::calls::Apps,
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
    parts: AgentParts,
    routes: Routes,
    cfg: AgentConfig,
    events: Recorder,
    compile_slots: Arc<Semaphore>,
    state: State,
    next_sweep: Instant,
}

impl Agent {
    /// An agent serving into `routes`.
    pub fn new(parts: AgentParts, routes: Routes, cfg: AgentConfig) -> Self {
        Self {
            serving: Arc::default(),
            events: Recorder::new(parts.objects.clone(), &cfg.node_name),
            compile_slots: Arc::new(Semaphore::new(cfg.compile_concurrency.max(1))),
            parts,
            routes,
            cfg,
            state: State::default(),
            next_sweep: Instant::now() + SWEEP_EVERY,
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
        let (apps, _) = self.parts.objects.list::<App>(None).await?;
        for app in apps.iter().filter(|a| a.status.phase == Phase::Ready) {
            let patch = Patch::NodeStarting {
                node: self.cfg.node_name.clone(),
            };
            let key = ObjectKey::of(&app.metadata);
            self.write(&key, app.metadata.generation, &patch).await;
        }
        Ok(())
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let objects = self.parts.objects.clone();
        crate::controller::run(objects, self, shutdown).await;
    }

    /// Writes `patch` into this node's report about App `key`, if `generation` is still its
    /// latest.
    async fn write(&self, key: &ObjectKey, generation: u64, patch: &Patch) {
        let (node, now) = (&self.cfg.node_name, chrono::Utc::now());
        let written = self
            .parts
            .objects
            .write_status::<App>(key, |app| {
                (app.metadata.generation == generation).then(|| {
                    let mut s = app.status.clone();
                    patch.apply(&mut s, node, generation, now);
                    s.observed_generation = generation;
                    s
                })
            })
            .await;
        if let Err(e) = written {
            tracing::warn!("{}: cannot write status: {e}", app_ref(key));
        }
    }

    async fn event(&self, key: &ObjectKey, reason: EventReason, message: &str) {
        self.events.record(&app_ref(key), reason, message).await;
    }

    /// Removes the data of the Apps `change` says are deleted — a delete, or a full list
    /// without them — in the background (see `owners`).
    fn release_deleted(&self, change: &Change<App>) {
        let owners = self.parts.owners.clone();
        match change {
            Change::Delete(key) => {
                let key = key.clone();
                let uid = self
                    .state
                    .desired
                    .get(&key)
                    .and_then(|a| a.metadata.uid.clone());
                tokio::spawn(async move { owners.release(&key, uid.as_deref()).await });
            }
            Change::Resync(apps) => {
                let live: std::collections::HashSet<ObjectKey> =
                    apps.iter().map(|a| ObjectKey::of(&a.metadata)).collect();
                tokio::spawn(async move {
                    for (key, uid) in owners.all() {
                        if !live.contains(&key) {
                            owners.release(&key, Some(&uid)).await;
                        }
                    }
                });
            }
            Change::Put(_) => {}
        }
    }

    fn publish_routes(&self) {
        let count = u32::try_from(self.state.deployed.len()).unwrap_or(u32::MAX);
        self.serving
            .store(count, std::sync::atomic::Ordering::Relaxed);
        let desired = &self.state.desired;
        let mut entries = Vec::new();
        let mut apps = Vec::with_capacity(self.state.deployed.len());
        for (key, d) in &self.state.deployed {
            let labels = desired.get(key).map(|a| &a.metadata.labels);
            let label = |name| labels.and_then(|l| l.get(name));
            // A Spin app's requests carry Spin's headers, computed from the route that matched.
            let spin = label(shoal_api::SPIN_APP_LABEL);
            let shaped: Vec<(shoal_api::Route, Option<Arc<SpinRoute>>)> = d
                .routes
                .iter()
                .map(|r| (r.clone(), spin.map(|_| Arc::new(SpinRoute::of(r)))))
                .collect();
            entries.extend(shaped.iter().map(|(r, spin)| {
                let routed = crate::Routed {
                    app: d.app.clone(),
                    spin: spin.clone(),
                };
                (r.clone(), routed)
            }));
            let component = match (spin, label(shoal_api::SPIN_COMPONENT_LABEL)) {
                (Some(application), Some(id)) => {
                    let routes = shaped
                        .into_iter()
                        .filter_map(|(r, shape)| Some((r, shape?)));
                    Some(crate::calls::SpinComponent::new(
                        application,
                        id,
                        routes.collect(),
                    ))
                }
                _ => None,
            };
            let callable = crate::calls::Callable {
                app: d.app.clone(),
                spin: component,
            };
            apps.push((key.clone(), callable));
        }
        self.routes.store(Arc::new(RouteTable::new(entries)));
        let directory = crate::calls::Directory::new(apps);
        self.parts.apps.store(Arc::new(directory));
    }
}

impl Controller for Agent {
    type Object = App;
    type Report = Report;

    fn observe(&mut self, change: Change<App>) -> Vec<ObjectKey> {
        self.release_deleted(&change);
        // An app placed elsewhere is, for this node, an app that does not exist.
        let change = match change {
            Change::Resync(apps) => Change::Resync(
                apps.into_iter()
                    .filter(|a| self.is_placed_here(a))
                    .collect(),
            ),
            Change::Put(app) if !self.is_placed_here(&app) => {
                Change::Delete(ObjectKey::of(&app.metadata))
            }
            other => other,
        };
        let state = &mut self.state;
        match change {
            Change::Resync(apps) => {
                state.desired = apps
                    .into_iter()
                    .map(|a| (ObjectKey::of(&a.metadata), a))
                    .collect();
                let before = state.deployed.len();
                let desired = &state.desired;
                state.deployed.retain(|k, _| desired.contains_key(k));
                if state.deployed.len() != before {
                    self.publish_routes();
                }
                self.state.desired.keys().cloned().collect()
            }
            Change::Put(app) => {
                let key = ObjectKey::of(&app.metadata);
                state.desired.insert(key.clone(), app);
                vec![key]
            }
            Change::Delete(key) => {
                state.desired.remove(&key);
                if state.deployed.remove(&key).is_some() {
                    self.publish_routes();
                    tracing::info!("{}: deleted; no longer served", app_ref(&key));
                }
                vec![]
            }
        }
    }

    async fn report(&mut self, report: Report, work: &Work<Report>) -> Vec<ObjectKey> {
        match report {
            Report::Loaded {
                key,
                generation,
                result,
            } => {
                self.loaded(&key, generation, result, work).await;
                vec![key]
            }
            Report::Checked {
                key,
                generation,
                app,
                routes,
                how,
                result,
            } => {
                self.state.checking.remove(&(key.clone(), generation));
                let current = self.state.is_latest(&key, generation);
                match result {
                    Ok(()) if current => {
                        let how = format!("{how}, health check passed");
                        self.install(&key, generation, app, routes, &how).await;
                    }
                    Ok(()) => self.end_deploy(&key, generation, None),
                    Err(message) => {
                        self.end_deploy(&key, generation, Some(Err(&message)));
                        if current {
                            self.event(&key, EventReason::HealthCheckFailed, &message)
                                .await;
                        }
                        self.state.failed.insert((key.clone(), generation), message);
                    }
                }
                vec![key]
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        Some(self.next_sweep)
    }

    async fn wake(&mut self, now: Instant) -> Vec<ObjectKey> {
        self.next_sweep = now + SWEEP_EVERY;
        self.sweep().await;
        Vec::new()
    }

    async fn reconcile(&mut self, key: &ObjectKey, work: &Work<Report>) {
        let Some(app) = self.state.desired.get(key).cloned() else {
            return;
        };
        let generation = app.metadata.generation;
        let latest = (key.clone(), generation);
        let known = Known {
            serving: self
                .state
                .deployed
                .get(key)
                .map(|d| (d.generation, d.app.wasi().version(), d.reported)),
            failed: self.state.failed.get(&latest).cloned(),
            in_progress: self.state.checking.contains(&latest)
                || self.state.loading.contains(&latest),
        };
        match policy::reconcile(&app, &known) {
            Step::Report(patch) => self.write(key, generation, &patch).await,
            Step::Wait => {}
            Step::Load => {
                self.state.loading.insert(latest.clone());
                let span = deploy_span(&app);
                self.start_load(key, &app, span.child("load component", Internal), work);
                self.state.deploys.insert(latest, span);
            }
        }
    }

    fn settle(&mut self) {
        let state = &mut self.state;
        // Compiled code is held by the apps that serve it; what no deploy took is released.
        let desired = &state.desired;
        let latest = |(key, generation): &(ObjectKey, u64)| {
            desired
                .get(key)
                .is_some_and(|a| a.metadata.generation == *generation)
        };
        state.loaded.retain(|k, _| latest(k));
        // Failures matter only while they describe an App's latest generation.
        state.failed.retain(|k, _| latest(k));
        // A deploy of an App deleted or replaced meanwhile ends with the span's drop.
        state.deploys.retain(|k, _| latest(k));
    }
}

/// The span of a deploy of `app`'s latest generation, under the apply that made it when the
/// server traced that (`status.trace`); nothing while this node traces nothing.
fn deploy_span(app: &App) -> shoal_trace::Span {
    let tracer = shoal_trace::tracer();
    if !tracer.is_on() {
        return shoal_trace::Span::none();
    }
    let (ns, name) = (&app.metadata.namespace, &app.metadata.name);
    let parent = app.status.trace.as_deref();
    let mut span = tracer.start_under(&format!("deploy app/{ns}/{name}"), Internal, parent);
    span.set("shoal.namespace", ns.as_str());
    span.set("shoal.app", name.as_str());
    span.set("shoal.generation", app.metadata.generation as i64);
    span
}

fn app_ref(key: &ObjectKey) -> shoal_api::ObjectRef {
    shoal_api::ObjectRef::new("app", &key.namespace, &key.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_api::Activity;
    use shoal_store::Precondition;

    /// A real node agent on a store and runtime in a temp dir, with tokio's clock paused.
    #[tokio::test(start_paused = true)]
    async fn an_app_without_requests_goes_idle_after_its_idle_after_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = shoal_store::Embedded::open(&dir.path().join("store.redb")).unwrap();
        let objects = Objects::new(Arc::new(store));
        let store = shoal_blobs::BlobStore::open(dir.path().join("blobs")).unwrap();
        let hello = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/hello-c/hello.wasm"
        );
        let digest = store.put(&std::fs::read(hello).unwrap()).unwrap();
        let blobs = Blobs::local(store);
        let capabilities = Capabilities::open(shoal_capabilities::Resources {
            keyvalue: (dir.path().join("keyvalue.redb"), Default::default()),
            kv_namespaces: Default::default(),
            blobs: blobs.clone(),
            files: dir.path().join("files"),
            sqlite: (dir.path().join("sqlite"), Default::default()),
            apps: Arc::new(shoal_capabilities::internal::NoApps),
        })
        .unwrap();
        let runtime = Runtime::new(
            shoal_runtime::RuntimeConfig {
                max_instances: 4,
                cache_dir: dir.path().join("compiled"),
                busy_threads: 1,
                pooling: false,
                keep_resident: 0,
                absent_imports: shoal_runtime::AbsentImports::none(),
                compile_limits: None,
            },
            |linker, kind| Ok(capabilities.link(linker, kind)?),
        )
        .unwrap();
        let capabilities = Arc::new(capabilities);
        let logs = LogDir::open(dir.path().join("logs"), 1 << 20).unwrap();
        let runtime = Arc::new(runtime);
        let agent = Agent::new(
            AgentParts {
                objects: objects.clone(),
                blobs,
                metrics: Arc::new(crate::metrics::NodeMetrics::new(runtime.clone())),
                runtime,
                owners: Owners::new(
                    dir.path().join("owners"),
                    capabilities.clone(),
                    logs.clone(),
                ),
                capabilities,
                logs,
                quotas: Default::default(),
                apps: Default::default(),
            },
            Arc::default(),
            AgentConfig {
                node_name: "test".into(),
                compile_concurrency: 1,
                placed_only: false,
            },
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(agent.run(shutdown.clone()));

        let mut a = policy::tests::app(1);
        a.spec.component = digest.into();
        a.spec.scale = Some(serde_yaml::from_str("{idleAfter: 1m}").unwrap());
        objects.put(a, Precondition::Absent).await.unwrap();
        let scale = || async {
            let a: App = objects.get("default", "a").await.unwrap().unwrap();
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
