//! Carrying out the agent's steps: load a generation's component (compiled on the blocking
//! pool), grant it, health-check it off the loop, install it in the route table; and report
//! apps that went idle or came back.

use super::state::{Deployed, LoadedComponent, Report};
use super::status::Patch;
use super::{Agent, app_ref};
use crate::controller::Work;
use shoal_api::{App, EventReason, short_digest};
use shoal_runtime::{HttpApp, LoadError, Origin};
use shoal_store::ObjectKey;
use shoal_trace::{Span, SpanKind::Internal};
use std::sync::Arc;

impl Agent {
    /// Loads the component of `app`'s latest generation on its own task (compiling on the
    /// blocking pool, at most `compile_concurrency` at once); its end is a [`Report::Loaded`].
    pub(super) fn start_load(
        &self,
        key: &ObjectKey,
        app: &App,
        mut span: Span,
        work: &Work<Report>,
    ) {
        let generation = app.metadata.generation;
        let component = app.spec.component.clone();
        let init = app.spec.init.as_ref().map(|i| shoal_runtime::Init {
            function: i.function.clone(),
            memory: app.spec.limits.resolve().memory,
            timeout: i.timeout(),
        });
        let (runtime, slots, blobs) = (
            self.parts.runtime.clone(),
            self.compile_slots.clone(),
            self.parts.blobs.clone(),
        );
        tracing::info!(
            "{}: loading generation {generation} ({})",
            app_ref(key),
            short_digest(&component.to_string())
        );
        let (key, app) = (key.clone(), app.clone());
        work.spawn(async move {
            let load = async {
                let artifact = crate::workload::artifact(&blobs, &component)
                    .await
                    .map_err(|e| (EventReason::Failed, e.to_string()))?;
                let parts = crate::compose::parts(&blobs, &app)
                    .await
                    .map_err(|e| (EventReason::Failed, e))?;
                let _slot = slots.acquire_owned().await;
                let short = artifact.short().to_string();
                let dependencies = parts.len();
                let failed = move |e: LoadError| {
                    let reason = match e {
                        LoadError::Compile(_) | LoadError::CompileLimit(_) => {
                            EventReason::CompileFailed
                        }
                        _ => EventReason::Failed,
                    };
                    (reason, format!("component {short} {e}"))
                };
                let loaded = tokio::task::spawn_blocking(move || {
                    // Pre-initialised first: wizer snapshots a component, not a composition.
                    let (artifact, initialised) = match &init {
                        Some(init) => {
                            let (snapshot, done) =
                                runtime.pre_initialise(&artifact, init).map_err(&failed)?;
                            (snapshot, Some(done))
                        }
                        None => (artifact, None),
                    };
                    let artifact = crate::compose::composed(&runtime, artifact, &parts)
                        .map_err(|e| (EventReason::Failed, e))?;
                    let loaded = runtime.load_http(&artifact).map_err(&failed)?;
                    Ok((loaded, initialised))
                })
                .await
                .unwrap_or_else(|e| {
                    Err((
                        EventReason::Failed,
                        format!("loading the component panicked: {e}"),
                    ))
                })?;
                let (loaded, initialised) = loaded;
                let how = match loaded.origin {
                    Origin::Shared => "compiled code already loaded".to_string(),
                    Origin::Cache => {
                        format!("loaded compiled code from cache in {:.1?}", loaded.elapsed)
                    }
                    Origin::Compiled => format!("compiled in {:.1?}", loaded.elapsed),
                };
                let how = match dependencies {
                    0 => how,
                    1 => format!("composed with its dependency; {how}"),
                    n => format!("composed with its {n} dependencies; {how}"),
                };
                Ok(LoadedComponent {
                    compiled: loaded.origin == Origin::Compiled,
                    how: match &initialised {
                        Some(i) if i.cached => format!(
                            "pre-initialised by {} (snapshot from cache); {how}",
                            i.function
                        ),
                        Some(i) => format!(
                            "pre-initialised by {} in {:.1?}; {how}",
                            i.function, i.elapsed
                        ),
                        None => how,
                    },
                    component: loaded.component,
                })
            };
            let result = load.await;
            match &result {
                Ok(loaded) => span.set("shoal.load", &loaded.how),
                Err((_, message)) => span.fail(message),
            }
            drop(span);
            Report::Loaded {
                key,
                generation,
                result,
            }
        });
    }

    /// Takes in a load's end: records it, and deploys what loaded if it is still the latest.
    pub(super) async fn loaded(
        &mut self,
        key: &ObjectKey,
        generation: u64,
        result: Result<LoadedComponent, (EventReason, String)>,
        work: &Work<Report>,
    ) {
        self.state.loading.remove(&(key.clone(), generation));
        match result {
            Ok(loaded) => {
                if loaded.compiled {
                    let message =
                        format!("{} {}", short_digest(loaded.component.digest()), loaded.how);
                    self.event(key, EventReason::Compiled, &message).await;
                }
                self.state
                    .loaded
                    .insert((key.clone(), generation), loaded.component);
                if let Some(app) = self
                    .state
                    .desired
                    .get(key)
                    .filter(|a| a.metadata.generation == generation)
                    .cloned()
                {
                    self.deploy(&app, &loaded.how, work).await;
                } else {
                    self.end_deploy(key, generation, None);
                }
            }
            Err((reason, message)) => {
                self.end_deploy(key, generation, Some(Err(&message)));
                self.state
                    .failed
                    .insert((key.clone(), generation), message.clone());
                if self.state.is_latest(key, generation) {
                    self.event(key, reason, &message).await;
                }
            }
        }
    }

    /// Grants the loaded component of `app` and installs it, after its health check when the
    /// spec has one (run off the loop: other apps keep being reconciled meanwhile, and the
    /// previous generation keeps serving until this one passes).
    async fn deploy(&mut self, app: &App, how: &str, work: &Work<Report>) {
        let key = ObjectKey::of(&app.metadata);
        let generation = app.metadata.generation;
        let Some(component) = self.state.loaded.remove(&(key.clone(), generation)) else {
            return;
        };
        // Before it opens anything: data here of an earlier app of its name is not its.
        self.parts.owners.adopt(app).await;
        let log = self.parts.logs.app(&key.namespace, &key.name);
        let metrics = self.parts.metrics.app(&key.namespace, &key.name);
        let workload =
            match crate::workload::http(app, &self.parts.capabilities, log, metrics).await {
                Ok(w) => w,
                Err(e) => {
                    let message = e.to_string();
                    self.end_deploy(&key, generation, Some(Err(&message)));
                    self.event(&key, EventReason::Failed, &message).await;
                    self.state.failed.insert((key, generation), message);
                    return;
                }
            };
        let shared = self.parts.quotas.instances(&key.namespace);
        let serving = crate::workload::serving(app, Some(shared));
        let http = Arc::new(HttpApp::new(
            workload,
            serving,
            component,
            &self.parts.runtime,
        ));
        let routes = app.spec.routes.clone();
        let Some(check) = app.spec.health_check.clone() else {
            self.install(&key, generation, http, routes, how).await;
            return;
        };
        self.state.checking.insert((key.clone(), generation));
        let how = how.to_string();
        let mut span = self
            .state
            .deploys
            .get(&(key.clone(), generation))
            .map_or_else(Span::none, |d| d.child("health check", Internal));
        work.spawn(async move {
            let result = crate::health::check(&http, &check.path).await;
            span.set("url.path", &check.path);
            if let Err(message) = &result {
                span.fail(message);
            }
            drop(span);
            Report::Checked {
                key,
                generation,
                app: http,
                routes,
                how,
                result,
            }
        });
    }

    /// Makes `http` the app's serving generation.
    pub(super) async fn install(
        &mut self,
        key: &ObjectKey,
        generation: u64,
        http: Arc<HttpApp>,
        routes: Vec<shoal_api::Route>,
        how: &str,
    ) {
        let digest = http.digest().to_string();
        let reported = http.activity();
        self.state.deployed.insert(
            key.clone(),
            Deployed {
                generation,
                app: http,
                routes,
                reported,
            },
        );
        self.publish_routes();
        let message = format!(
            "generation {generation} serving {} ({how})",
            short_digest(&digest)
        );
        tracing::info!("{}: {message}", app_ref(key));
        self.end_deploy(key, generation, Some(Ok(how)));
        self.event(key, EventReason::Serving, &message).await;
    }

    /// Ends the span of generation `generation`'s deploy: it serves (`how` it loaded), or it
    /// failed (why), or (`None`) a newer generation took its place.
    pub(super) fn end_deploy(
        &mut self,
        key: &ObjectKey,
        generation: u64,
        end: Option<Result<&str, &str>>,
    ) {
        let Some(mut span) = self.state.deploys.remove(&(key.clone(), generation)) else {
            return;
        };
        match end {
            Some(Ok(how)) => span.set("shoal.serving", &how.to_string()),
            Some(Err(why)) => span.fail(why),
            None => span.set("shoal.superseded", true),
        }
    }

    /// Releases the apps idle for their `spec.scale.idleAfter`, and reports those that went
    /// idle or came back (a request activates an idle app by itself, on the ingress).
    pub(super) async fn sweep(&mut self) {
        let mut changed = Vec::new();
        for (key, d) in &mut self.state.deployed {
            d.app.scale_to_zero_if_idle();
            let now = d.app.activity();
            if now != d.reported {
                changed.push((key.clone(), d.reported, now));
                d.reported = now;
            }
        }
        for (key, before, now) in changed {
            let Some(generation) = self.state.desired.get(&key).map(|a| a.metadata.generation)
            else {
                continue;
            };
            let (reason, message) = if now.active {
                let n = now.activations - before.activations;
                (
                    EventReason::Activated,
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
                    EventReason::ScaledToZero,
                    "idle: released the component; the next request loads it again".to_string(),
                )
            };
            self.event(&key, reason, &message).await;
            self.write(&key, generation, &Patch::Scale { activity: now })
                .await;
        }
    }
}
