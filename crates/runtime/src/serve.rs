//! Serving one request of one app: permit, fresh instance, limits, status mapping.

use crate::component::{HttpComponent, Prepared};
use crate::host::Host;
use crate::lanes::{BusyLane, Meter};
use crate::reuse;
use crate::scale::{Activity, ActivityState};
use crate::ticker::EPOCH_TICK;
use crate::workload::Workload;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

/// CPU after which a request moves to the busy lane. Above what a fresh instance of a big
/// interpreter (Python, JavaScript: 2–5 ms) needs to answer, so that such apps serve from the
/// ingress threads at full priority; at 2 ms they lost a fifth of their throughput and
/// JavaScript's p99 grew 20× on the HTTP bench.
const BUSY_AFTER: Duration = Duration::from_millis(10);

/// The response body type of the ingress: whatever a guest streams, or a short host message.
pub type Body = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A body streamed from another node (the ingress forwarding a request), as the ingress's
/// response body.
pub fn relayed_body(body: hyper::body::Incoming) -> Body {
    body.map_err(wasmtime_wasi_http::Error::Hyper)
        .boxed_unsync()
}

/// A plain-text response from the host (not the guest), e.g. 404 or 503.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut text = text.into();
    text.push('\n');
    let body = Full::new(Bytes::from(text))
        .map_err(Into::into)
        .boxed_unsync();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("static response parts are valid")
}

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

/// How a deployed HTTP workload is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// What each request may use.
    pub limits: Limits,
    /// `Some(n)`: an instance that answered goes back to a pool and answers up to `n`
    /// requests in all (see [`crate::reuse`]); `None`: a fresh instance per request.
    pub reuse: Option<u32>,
    /// Time without a request after which the component is released (scale to zero).
    pub idle_after: Option<Duration>,
}

/// The limits of every request of one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory per memory of an instance.
    pub memory: u64,
    /// Guest compute per request.
    pub cpu: Duration,
    /// Wall clock per request.
    pub timeout: Duration,
    /// Requests in flight at once; more are answered 503.
    pub concurrency: u32,
}

/// One deployed app on this node: its component, limits and in-flight budget.
pub struct HttpApp {
    /// The component while active; released after `idle_after` without requests.
    activity: Activity,
    workload: Arc<Workload>,
    limits: Limits,
    in_flight: Arc<Semaphore>,
    /// Where requests that compute for long run (see [`crate::RuntimeConfig::busy_threads`]).
    lane: Arc<BusyLane>,
    /// The app's last finished request turned busy: the next ones start on the busy lane, so an
    /// app whose every request computes for long never takes an ingress thread for a slice.
    last_was_busy: Arc<AtomicBool>,
    /// Idle instances kept for later requests, when the spec opts into reuse.
    reuse: Option<Arc<reuse::Pool>>,
}

/// What serving a request on one instance came to.
enum Answer {
    /// The guest (or the host, for a malformed request) produced a response.
    Response(Response<Body>),
    /// The guest produced none.
    Failed(Outcome),
}

impl Answer {
    /// A failure that may come from reusing an instance, and that a fresh one might not repeat.
    /// Limits and timeouts are not: a replay would cost as much again.
    fn is_reuse_suspect(&self) -> bool {
        match self {
            Answer::Response(resp) => resp.status().is_server_error(),
            Answer::Failed(Outcome::Trapped(_) | Outcome::Returned | Outcome::ErrorCode(_)) => true,
            Answer::Failed(Outcome::CpuExceeded | Outcome::TimedOut) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Answer::Response(resp) => format!("it answered {}", resp.status()),
            Answer::Failed(Outcome::Trapped(e)) => format!("it failed: {e:#}"),
            Answer::Failed(Outcome::Returned) => "it returned without a response".into(),
            Answer::Failed(Outcome::ErrorCode(code)) => format!("it responded with {code:?}"),
            Answer::Failed(Outcome::CpuExceeded) => "it exceeded its CPU limit".into(),
            Answer::Failed(Outcome::TimedOut) => "it timed out".into(),
        }
    }
}

/// How the guest's side of a request ended when it never produced a response.
enum Outcome {
    Returned,
    ErrorCode(ErrorCode),
    Trapped(wasmtime::Error),
    CpuExceeded,
    TimedOut,
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
        let reuse = serving.reuse.map(|max_requests| {
            reuse::Pool::new(
                &runtime.reuse_budget,
                max_requests,
                limits.concurrency as usize,
            )
        });
        Self {
            activity: Activity::new(component.inner, runtime.clone(), serving.idle_after),
            workload: Arc::new(workload),
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
        if let Some(pool) = &self.reuse {
            pool.clear();
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
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            let mut resp = text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} is at its concurrency limit ({}); retry shortly",
                    self.workload.name, self.limits.concurrency
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return resp;
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
        let Some(pool) = &self.reuse else {
            return self.finish(self.serve(&component, None, req, permit).await);
        };
        // Only a request that can be sent again unchanged and harmlessly may test whether reuse
        // works: no body, and a safe method (a replay repeats the guest's side effects).
        let replayable = req.body().is_end_stream() && req.method().is_safe();
        let Some(warm) = pool.take(replayable) else {
            return self.finish(self.serve(&component, None, req, permit).await);
        };
        if pool.trust() != reuse::Trust::Unproven {
            return self.finish(self.serve(&component, Some(warm), req, permit).await);
        }

        // Not yet known whether this component can answer twice: keep what it takes to replay
        // the request on a fresh instance.
        let replay = {
            let mut r = hyper::Request::new(
                Empty::<Bytes>::new()
                    .map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
            );
            *r.method_mut() = req.method().clone();
            *r.uri_mut() = req.uri().clone();
            *r.version_mut() = req.version();
            *r.headers_mut() = req.headers().clone();
            r
        };
        let reused = self.serve(&component, Some(warm), req, permit).await;
        if !reused.is_reuse_suspect() {
            pool.prove();
            return self.finish(reused);
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            return self.finish(reused);
        };
        let fresh = self.serve(&component, None, replay, permit).await;
        if fresh.is_reuse_suspect() {
            // A fresh instance fails too: the request is at fault, not reuse.
            return self.finish(fresh);
        }
        pool.refuse();
        self.workload.event(&format!(
            "a reused instance could not answer a second request ({}), a fresh one could; \
             spec.reuse is off for this deployment and every request gets a fresh instance",
            reused.describe()
        ));
        self.finish(fresh)
    }

    /// Serves `req` on `warm`, or on a fresh instance, holding `permit` until the guest is done.
    async fn serve<B>(
        &self,
        component: &Arc<Prepared>,
        warm: Option<reuse::Warm>,
        req: hyper::Request<B>,
        permit: OwnedSemaphorePermit,
    ) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let deadline = Instant::now() + self.limits.timeout;
        let cpu_limit = self.limits.cpu;

        let (mut store, proxy, served) = match warm {
            Some(w) => (w.store, Some(w.proxy), w.served),
            None => (self.new_store(component), None, 0),
        };
        store.data_mut().account.cpu_used = Duration::ZERO;
        store.data_mut().account.cpu_exceeded = false;
        store.set_epoch_deadline(1);
        // Yield at every tick so that no guest monopolises its thread; tokio's own yield lets
        // the IO driver run first, so new requests on this thread are noticed after one tick.
        // Each tick charges the CPU the guest's thread really spent (not the wall time, which
        // preemption stretches). A request past BUSY_AFTER moves to the busy lane at that
        // yield, and while an app's requests keep doing so, its next ones start there.
        let meter = Arc::new(Meter::new(self.last_was_busy.load(Ordering::Relaxed)));
        let charged = meter.clone();
        store.epoch_deadline_callback(move |mut ctx| {
            let account = &mut ctx.data_mut().account;
            if !account.charge(charged.charge(EPOCH_TICK), Some(cpu_limit)) {
                return Err(Trap::Interrupt.into());
            }
            if account.cpu_used >= BUSY_AFTER {
                charged.turn_busy();
            }
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });

        let (tx, rx) = oneshot::channel();
        let prepared = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(tx)?)));
        let (req, out) = match prepared {
            Ok(v) => v,
            Err(e) => {
                return Answer::Response(text_response(
                    StatusCode::BAD_REQUEST,
                    format!("bad request: {e}"),
                ));
            }
        };

        let pre = component.pre.clone();
        let lane = self.lane.clone();
        let last_was_busy = self.last_was_busy.clone();
        let pool = self.reuse.clone();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let guest = async move {
                let run = async {
                    let proxy = match proxy {
                        Some(proxy) => proxy,
                        None => pre.instantiate_async(&mut store).await?,
                    };
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, req, out)
                        .await?;
                    wasmtime::Result::Ok(proxy)
                };
                let result = run.await;
                last_was_busy.store(
                    store.data().account.cpu_used >= BUSY_AFTER,
                    Ordering::Relaxed,
                );
                match result {
                    Ok(proxy) => {
                        if let Some(pool) = pool {
                            pool.put(reuse::Warm::new(store, proxy, served + 1));
                        }
                        Outcome::Returned
                    }
                    Err(_) if store.data().account.cpu_exceeded => Outcome::CpuExceeded,
                    Err(e) => Outcome::Trapped(e),
                }
            };
            match tokio::time::timeout_at(deadline, lane.run(guest, meter)).await {
                Err(_) => Outcome::TimedOut,
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => Outcome::Trapped(wasmtime::Error::msg(format!(
                    "the busy lane lost the request: {e}"
                ))),
            }
        });

        // The response arrives through the outparam, usually while the guest still streams its
        // body. If the guest returns first without having set it, it never will (a guest may
        // keep the outparam alive, as componentize-js does when it fails a second request).
        let (mut rx, mut task) = (rx, task);
        let joined = |r: Result<Outcome, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Outcome::Trapped(wasmtime::Error::msg(e.to_string())))
        };
        let settled = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                biased;
                set = &mut rx => match set {
                    Ok(set) => Ok(set),
                    // The guest dropped the outparam: the task says why.
                    Err(_) => Err(joined((&mut task).await)),
                },
                done = &mut task => rx.try_recv().map_err(|_| joined(done)),
            }
        })
        .await;
        Answer::Failed(match settled {
            Ok(Ok(Ok(resp))) => return Answer::Response(resp),
            Ok(Ok(Err(code))) => Outcome::ErrorCode(code),
            Ok(Err(outcome)) => outcome,
            Err(_) => Outcome::TimedOut,
        })
    }

    /// A store for one fresh instance: the app's grants and its memory limit.
    fn new_store(&self, component: &Prepared) -> Store<Host> {
        let mut store = Store::new(
            component.pre.engine(),
            Host::new(&self.workload, self.limits.memory, |_| {}),
        );
        store.limiter(|h| &mut h.account.limits);
        store
    }

    /// Creates one instance exactly as a request would, and drops it without calling the
    /// handler: what isolation alone costs per request (store, WASI context, instantiation,
    /// teardown). Start-up code is bounded by the app's CPU limit.
    ///
    /// # Errors
    /// The component failed to instantiate (a trap in start-up code, or out of memory).
    pub async fn instantiate_once(&self) -> Result<(), InstantiateError> {
        let component = self.activity.component().await?;
        let mut store = self.new_store(&component);
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
        match outcome {
            Outcome::ErrorCode(code) => {
                self.workload
                    .event(&format!("handler responded with error: {code:?}"));
                text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{} failed: {code:?}", self.workload.name),
                )
            }
            Outcome::TimedOut => {
                self.workload.event(&format!(
                    "request exceeded its timeout ({:?})",
                    self.limits.timeout
                ));
                text_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "{} did not respond within its timeout ({:?}); raise spec.limits.timeout",
                        self.workload.name, self.limits.timeout
                    ),
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
