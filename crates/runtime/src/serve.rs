//! One deployed app on a node ([`HttpApp`]): its permit, activation, reuse and the mapping of
//! what a request came to (`request`) onto the HTTP answer.

use crate::bodies::{Body, text_response};
use crate::component::HttpComponent;
use crate::lanes::BusyLane;
use crate::permit::Permit;
use crate::request::{Answer, Attempt, Bound, Outcome, new_store};
use crate::reuse;
use crate::scale::{Activity, ActivityState};
use crate::share::{Served, Shared};
use crate::ticker::EPOCH_TICK;
use crate::workload::{Limits, Serving, Workload};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Empty};
use shoal_metrics::LimitHit;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::Semaphore;
use wasmtime::Trap;
use wasmtime_wasi_http::handler::ProxyPre;

/// Why [`HttpApp::instantiate_once`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InstantiateError {
    /// The app was idle and its component cannot be loaded again.
    #[error("{0}")]
    Activation(#[from] crate::scale::ActivationError),
    /// Start-up code trapped or ran out of memory.
    #[error("{app} cannot be instantiated: {error:#}")]
    Trapped {
        /// `app/NAME`.
        app: String,
        /// What wasmtime said.
        error: wasmtime::Error,
    },
}

/// One deployed app on this node: its component, limits and in-flight budget.
pub struct HttpApp {
    /// The component while active; released after `idle_after` without requests.
    activity: Activity,
    workload: Arc<Workload>,
    limits: Limits,
    in_flight: Arc<Semaphore>,
    /// The limit it shares with other apps (its namespace's instances), if any.
    shared: Option<Arc<crate::SharedLimit>>,
    /// Where requests that compute for long run (see [`crate::RuntimeConfig::busy_threads`]).
    lane: Arc<BusyLane>,
    /// The app's last finished request turned busy: the next ones start on the busy lane, so an
    /// app whose every request computes for long never takes an ingress thread for a slice.
    last_was_busy: Arc<AtomicBool>,
    /// The WASI version of its component.
    wasi: crate::Wasi,
    /// How instances are reused, when the spec opts into reuse.
    reuse: Option<Reusing>,
}

/// An app's reused instances: idle ones kept for later requests (WASI 0.2), or instances that
/// answer several requests at once (0.3).
enum Reusing {
    Pool(Arc<reuse::Pool>),
    Shared(Shared),
}

impl HttpApp {
    /// `workload` served by `component` as `serving` says.
    pub fn new(
        workload: Workload,
        serving: Serving,
        component: HttpComponent,
        runtime: &Arc<crate::Runtime>,
    ) -> Self {
        let limits = serving.limits;
        let in_flight = Arc::new(Semaphore::new(limits.concurrency as usize));
        let workload = Arc::new(workload);
        let reuse = serving.reuse.map(|r| match component.wasi() {
            crate::Wasi::P3 => Reusing::Shared(Shared::new(
                &workload,
                limits,
                r.max_requests,
                r.max_concurrent,
                &runtime.reuse_budget,
            )),
            crate::Wasi::P2 => {
                if r.max_concurrent > 1 {
                    workload.event(
                        "spec.reuse.maxConcurrent needs a WASI 0.3 component; this 0.2 one answers one request at a time per instance",
                    );
                }
                Reusing::Pool(reuse::Pool::new(
                    &runtime.reuse_budget,
                    r.max_requests,
                    limits.concurrency as usize,
                ))
            }
        });
        Self {
            wasi: component.wasi(),
            shared: serving.shared,
            activity: Activity::new(
                component.inner,
                runtime.clone(),
                serving.idle_after,
                workload.metrics.clone(),
            ),
            workload,
            limits,
            in_flight,
            lane: runtime.lane.clone(),
            last_was_busy: Arc::default(),
            reuse,
        }
    }

    /// `app/NAME`.
    pub fn name(&self) -> &str {
        &self.workload.name
    }

    /// What the app is measured by.
    pub fn metrics(&self) -> &Arc<shoal_metrics::AppMetrics> {
        &self.workload.metrics
    }

    /// The WASI version of the component this app serves.
    pub fn wasi(&self) -> crate::Wasi {
        self.wasi
    }

    /// The digest of the component this app serves.
    pub fn digest(&self) -> &str {
        self.activity.digest()
    }

    /// Whether the app holds its component now, and how often it went idle and came back.
    pub fn activity(&self) -> ActivityState {
        self.activity.state()
    }

    /// Releases the app's component (and any reused instances) if it has had no request for
    /// its `spec.scale.idleAfter` and none is in flight; true if it did. The next request
    /// loads it again from the compile cache.
    pub fn scale_to_zero_if_idle(&self) -> bool {
        let quiet = self.in_flight.available_permits() == self.limits.concurrency as usize;
        if !self.activity.release_if_idle(quiet) {
            return false;
        }
        match &self.reuse {
            Some(Reusing::Pool(pool)) => pool.clear(),
            Some(Reusing::Shared(shared)) => shared.close(),
            None => {}
        }
        self.workload
            .event("idle: released the component; the next request loads it again");
        true
    }

    /// Handles one request: in a fresh instance, or in an idle one when the spec opts into
    /// reuse (see [`crate::reuse`]).
    ///
    /// # Guarantees
    /// Never panics and never queues: over the concurrency limit the answer is 503 with
    /// `Retry-After`. A trap or a CPU-limit hit before the response started is a 500, the wall
    /// timeout a 504; after the response started, either ends the body early. The instance is
    /// dropped when the guest returns, traps or runs out of time, whichever comes first, unless
    /// it returned and may be reused. A request that fails only because its instance was
    /// reused is answered by a fresh instance.
    pub async fn handle<B>(&self, req: hyper::Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let hop = crate::chain::hop_of(&req).cloned();
        if let Some(hop) = &hop {
            let how = match &hop.via {
                Some(node) => format!("through node/{node}"),
                None => "in memory".to_string(),
            };
            self.workload.note(&format!(
                "{} {} from {} {how} (hop {} of at most {})",
                req.method(),
                req.uri().path(),
                hop.caller,
                hop.depth,
                crate::MAX_DEPTH
            ));
        }
        // The body's start first: a slow client holds no slot of the app meanwhile.
        let req =
            match crate::prefetch::prefetch(req, &self.workload.name, self.limits.timeout).await {
                Ok(req) => req,
                Err(refused) => return refused,
            };
        let permit = match self.permit() {
            Ok(p) => p,
            Err(full) => {
                self.workload.metrics.limit_hit(LimitHit::Concurrency);
                let mut resp = text_response(StatusCode::SERVICE_UNAVAILABLE, full);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                return resp;
            }
        };
        let component = match self.activity.component().await {
            Ok(c) => c,
            Err(message) => {
                self.workload
                    .event(&format!("cannot become active: {message}"));
                return text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{} cannot become active: {message}", self.workload.name),
                );
            }
        };
        let attempt = Attempt {
            component: &component,
            workload: &self.workload,
            limits: self.limits,
            lane: &self.lane,
            last_was_busy: &self.last_was_busy,
            depth: hop.as_ref().map_or(0, |h| h.depth),
            chain_deadline: hop.and_then(|h| h.deadline),
        };
        // Only a request that can be sent again unchanged and harmlessly may meet reuse's
        // failures: no body, and a safe method (a replay repeats the guest's side effects).
        let replayable = req.body().is_end_stream() && req.method().is_safe();
        if let ProxyPre::P3(_) = component.pre {
            if let Some(Reusing::Shared(shared)) = &self.reuse
                && replayable
                && shared.trust() != reuse::Trust::Refused
            {
                return self.shared(shared, attempt, req, permit).await;
            }
            return self.finish(attempt.p3(req, permit).await);
        }
        let Some(Reusing::Pool(pool)) = &self.reuse else {
            return self.finish(attempt.p2(None, None, req, permit).await);
        };
        let Some(warm) = pool.take(replayable) else {
            return self.finish(attempt.p2(None, Some(pool.clone()), req, permit).await);
        };
        if pool.trust() != reuse::Trust::Unproven {
            let reused = attempt.p2(Some(warm), Some(pool.clone()), req, permit);
            return self.finish(reused.await);
        }

        // Not yet known whether this component can answer twice: keep what it takes to replay
        // the request on a fresh instance.
        let replay = replay_of(&req);
        let reused = attempt
            .p2(Some(warm), Some(pool.clone()), req, permit)
            .await;
        if !reused.is_reuse_suspect() {
            pool.prove();
            return self.finish(reused);
        }
        let Ok(permit) = self.permit() else {
            return self.finish(reused);
        };
        let fresh = attempt.p2(None, Some(pool.clone()), replay, permit).await;
        if fresh.is_reuse_suspect() {
            // A fresh instance fails too: the request is at fault, not reuse.
            return self.finish(fresh);
        }
        pool.refuse();
        self.refused(&reused.describe());
        self.finish(fresh)
    }

    /// A slot of the app's concurrency and of the limit it shares, or why there is none.
    fn permit(&self) -> Result<Permit, String> {
        let Ok(app) = self.in_flight.clone().try_acquire_owned() else {
            return Err(format!(
                "{} is at its concurrency limit ({}); retry shortly",
                self.workload.name, self.limits.concurrency
            ));
        };
        let shared = match &self.shared {
            Some(limit) => Some(
                limit
                    .try_acquire()
                    .map_err(|m| format!("{}: {m}", self.workload.name))?,
            ),
            None => None,
        };
        Ok(Permit::new(app, shared))
    }

    /// Serves a replayable request on a shared instance of a WASI 0.3 component (see
    /// [`crate::share`]), or on a fresh one when the shared one cannot answer it.
    async fn shared<B>(
        &self,
        shared: &Shared,
        attempt: Attempt<'_>,
        req: hyper::Request<B>,
        permit: Permit,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let replay = replay_of(&req);
        let deadline = attempt.deadline();
        let within = attempt.within(deadline.at);
        let req = req.map(|body| body.map_err(Into::into).boxed_unsync());
        let served = shared.serve(attempt.component, req, within, deadline.bound, permit);
        match served.await {
            Served::Answered(resp) => resp,
            Served::Failed(outcome) => self.finish(Answer::Failed(outcome)),
            Served::Replay { suspect, permit } => {
                let fresh = attempt.p3(replay, permit).await;
                if suspect && !fresh.is_reuse_suspect() {
                    shared.refuse();
                    self.refused("it failed on a shared instance");
                }
                self.finish(fresh)
            }
        }
    }

    /// Says that reuse is off for good, after a reused instance failed as `how` where a fresh
    /// one did not.
    fn refused(&self, how: &str) {
        self.workload.event(&format!(
            "a reused instance could not answer a second request ({how}), a fresh one could; \
             spec.reuse is off for this deployment and every request gets a fresh instance"
        ));
    }

    /// Creates one instance exactly as a request would, and drops it without calling the
    /// handler: what isolation alone costs per request (store, WASI context, instantiation,
    /// teardown). Start-up code is bounded by the app's CPU limit.
    ///
    /// # Errors
    /// The component failed to instantiate (a trap in start-up code, or out of memory).
    pub async fn instantiate_once(&self) -> Result<(), InstantiateError> {
        let component = self.activity.component().await?;
        let mut store = new_store(&component, &self.workload, self.limits.memory);
        let ticks = self.limits.cpu.as_nanos() / EPOCH_TICK.as_nanos();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        let instance = component.pre.instantiate_async(&mut store).await;
        instance
            .map(drop)
            .map_err(|error| InstantiateError::Trapped {
                app: self.workload.name.clone(),
                error,
            })
    }

    /// The response to send for `answer`; a failure is also an event in the app's log.
    fn finish(&self, answer: Answer) -> Response<Body> {
        let outcome = match answer {
            Answer::Response(resp) => return resp,
            Answer::Failed(outcome) => outcome,
        };
        if let Some(limit) = outcome.limit_hit() {
            self.workload.metrics.limit_hit(limit);
        }
        match outcome {
            Outcome::ErrorCode(code) => {
                self.workload
                    .event(&format!("handler responded with error: {code}"));
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{} failed: {code}", self.workload.name),
                )
            }
            Outcome::TimedOut(bound) => {
                let (name, timeout) = (&self.workload.name, self.limits.timeout);
                self.workload
                    .event(&crate::request::timed_out(bound, timeout));
                text_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    match bound {
                        Bound::Own => format!(
                            "{name} did not respond within its timeout ({timeout:?}); raise spec.limits.timeout"
                        ),
                        Bound::Chain => format!(
                            "{name} did not respond before the deadline of the chain of calls it is a hop of; raise the first caller's spec.limits.timeout"
                        ),
                    },
                )
            }
            Outcome::CpuExceeded => {
                self.workload.event(&format!(
                    "request exceeded its CPU limit ({:?})",
                    self.limits.cpu
                ));
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "{} exceeded its CPU limit ({:?}) for this request; raise spec.limits.cpu",
                        self.workload.name, self.limits.cpu
                    ),
                )
            }
            Outcome::Trapped(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                // Every instance slot of the node is in use (by any app): shed, as over an
                // app's own concurrency limit — the client may retry; nothing failed.
                self.workload.metrics.limit_hit(LimitHit::Concurrency);
                self.workload.event(
                    "the node's instance slots are all in use (--max-instances); answered 503",
                );
                let mut resp = text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{}: this node is at its instance limit; retry shortly",
                        self.workload.name
                    ),
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                resp
            }
            Outcome::Trapped(e) if crate::host::passed_too_much(&e) => {
                let reason = format!(
                    "the component passed the host more than {} MiB in one call",
                    crate::host::MAX_HOSTCALL_BYTES >> 20
                );
                self.workload.event(&format!("request failed: {reason}"));
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{}: {reason}", self.workload.name),
                )
            }
            Outcome::Trapped(e) => {
                self.workload.event(&format!("request failed: {e:#}"));
                let reason = match e.downcast_ref::<Trap>() {
                    Some(Trap::StackOverflow) => "the component overflowed its stack".to_string(),
                    Some(trap) => format!(
                        "the component trapped: {}",
                        trap.to_string().trim_start_matches("wasm trap: ")
                    ),
                    None => format!("the component failed: {}", e.root_cause()),
                };
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{}: {reason}", self.workload.name),
                )
            }
            Outcome::Returned => {
                self.workload
                    .event("handler returned without setting a response");
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{} returned without a response", self.workload.name),
                )
            }
        }
    }
}

/// A copy of `req` without its body (it has none): what it takes to send it again.
fn replay_of<B>(req: &hyper::Request<B>) -> hyper::Request<Body> {
    let mut r = hyper::Request::new(
        Empty::<Bytes>::new()
            .map_err(|never| -> wasmtime_wasi_http::Error { match never {} })
            .boxed_unsync(),
    );
    *r.method_mut() = req.method().clone();
    *r.uri_mut() = req.uri().clone();
    *r.version_mut() = req.version();
    *r.headers_mut() = req.headers().clone();
    r
}
