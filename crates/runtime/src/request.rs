//! One request on one instance, for a `wasi:http@0.2` component (`incoming-handler`, on a
//! fresh or a reused instance) or a `wasi:http@0.3` one (`handler`, run in the store's
//! concurrent event loop): its store, CPU meter, lane, timeout, and what it came to.
//!
//! # When the instance is torn down
//! A request's guest runs on its own task, which owns the instance. The task ends — and the
//! instance is dropped — when the guest has produced its response *and* finished everything
//! else it does for the request: streaming the response body, and (0.3) every task it spawned,
//! even after responding. Whichever comes first also ends it: the request's timeout (counted
//! from the start, through the body and any background work), its CPU limit (likewise), a
//! trap, or the client going away before the body is complete (see [`GuestBody`]).

use crate::bodies::{Abandon, Body, GuestBody, Held, text_response};
use crate::chain::Within;
use crate::component::Prepared;
use crate::host::Host;
use crate::lanes::{BusyLane, Meter};
use crate::permit::Permit;
use crate::reuse;
use crate::ticker::EPOCH_TICK;
use crate::workload::{Limits, Workload};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use shoal_metrics::LimitHit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wasmtime::{AsContextMut, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{self, Proxy, ProxyPre};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// CPU after which a request moves to the busy lane. Above what a fresh instance of a big
/// interpreter (Python, JavaScript: 2–5 ms) needs to answer, so that such apps serve from the
/// ingress threads at full priority; at 2 ms they lost a fifth of their throughput and
/// JavaScript's p99 grew 20× on the HTTP bench.
const BUSY_AFTER: Duration = Duration::from_millis(10);

/// What serving a request on one instance came to.
pub(crate) enum Answer {
    /// The guest (or the host, for a malformed request) produced a response.
    Response(Response<Body>),
    /// The guest produced none.
    Failed(Outcome),
}

impl Answer {
    /// A failure that may come from reusing an instance, and that a fresh one might not repeat.
    /// Limits and timeouts are not: a replay would cost as much again.
    pub(crate) fn is_reuse_suspect(&self) -> bool {
        match self {
            Answer::Response(resp) => resp.status().is_server_error(),
            Answer::Failed(Outcome::Trapped(_) | Outcome::Returned | Outcome::ErrorCode(_)) => true,
            Answer::Failed(Outcome::CpuExceeded | Outcome::TimedOut(_)) => false,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Answer::Response(resp) => format!("it answered {}", resp.status()),
            Answer::Failed(Outcome::Trapped(e)) => format!("it failed: {e:#}"),
            Answer::Failed(Outcome::Returned) => "it returned without a response".into(),
            Answer::Failed(Outcome::ErrorCode(code)) => format!("it responded with {code}"),
            Answer::Failed(Outcome::CpuExceeded) => "it exceeded its CPU limit".into(),
            Answer::Failed(Outcome::TimedOut(_)) => "it timed out".into(),
        }
    }
}

/// How the guest's side of a request ended when it never produced a response.
pub(crate) enum Outcome {
    Returned,
    /// The guest answered with a `wasi:http` error code (its debug form).
    ErrorCode(String),
    Trapped(wasmtime::Error),
    CpuExceeded,
    TimedOut(Bound),
}

/// What set the deadline a request ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Its own `spec.limits.timeout`.
    Own,
    /// The chain of calls it is a hop of: the first caller's timeout, sooner than its own.
    Chain,
}

/// When a try must end, and what set that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) bound: Bound,
}

/// The log line for a request that ran out of time (`timeout`: its own).
pub(crate) fn timed_out(bound: Bound, timeout: Duration) -> String {
    match bound {
        Bound::Own => format!("request exceeded its timeout ({timeout:?})"),
        Bound::Chain => format!(
            "request stopped at the deadline of the chain of calls it is a hop of (the first caller's timeout, sooner than its own {timeout:?})"
        ),
    }
}

impl Outcome {
    /// The limit that ended the guest this way, if one did.
    pub(crate) fn limit_hit(&self) -> Option<LimitHit> {
        match self {
            Outcome::TimedOut(_) => Some(LimitHit::Timeout),
            Outcome::CpuExceeded => Some(LimitHit::Cpu),
            _ => None,
        }
    }

    /// The log line for a guest ended this way after its response began (the client saw only
    /// a cut-off body); none for a guest that ended by itself.
    fn cut_off(&self, limits: Limits) -> Option<String> {
        let after = "after its response began; the body was cut off there";
        Some(match self {
            Outcome::TimedOut(bound) => format!("{} {after}", timed_out(*bound, limits.timeout)),
            Outcome::CpuExceeded => {
                format!("request exceeded its CPU limit ({:?}) {after}", limits.cpu)
            }
            Outcome::Trapped(e) => format!("request failed {after}: {e:#}"),
            Outcome::Returned | Outcome::ErrorCode(_) => return None,
        })
    }
}

/// The span a request is traced under: the ingress's, which it carries in its extensions
/// while tracing is on.
pub(crate) fn traced_under<B>(req: &hyper::Request<B>) -> Option<shoal_trace::SpanContext> {
    req.extensions().get::<shoal_trace::SpanContext>().copied()
}

/// A span of the runtime's work on a traced request (`None` when it is not traced).
pub(crate) fn span(
    under: Option<shoal_trace::SpanContext>,
    name: &'static str,
) -> shoal_trace::Span {
    match under {
        Some(under) => {
            shoal_trace::tracer().start(name, shoal_trace::SpanKind::Internal, Some(under))
        }
        None => shoal_trace::Span::none(),
    }
}

/// What one request runs with: the app's component, workload, limits and lanes.
#[derive(Clone, Copy)]
pub(crate) struct Attempt<'a> {
    pub(crate) component: &'a Arc<Prepared>,
    pub(crate) workload: &'a Arc<Workload>,
    pub(crate) limits: Limits,
    pub(crate) lane: &'a Arc<BusyLane>,
    /// The app's last request turned busy (its next ones start on the busy lane).
    pub(crate) last_was_busy: &'a Arc<AtomicBool>,
    /// How deep in a chain of in-memory calls the request is (0: it came from outside).
    pub(crate) depth: u32,
    /// The chain's deadline, when the request is on one.
    pub(crate) chain_deadline: Option<Instant>,
}

/// A store for one fresh instance of `workload`: its grants and its memory limit.
pub(crate) fn new_store(
    component: &Prepared,
    workload: &Arc<Workload>,
    memory: u64,
) -> Store<Host> {
    let mut store = Store::new(&component.engine, Host::new(workload, memory, |_| {}));
    store.limiter(|h| &mut h.account.limits);
    store.set_hostcall_fuel(crate::host::MAX_HOSTCALL_BYTES);
    store
}

impl Attempt<'_> {
    /// When a try starting now must end: the app's timeout, within the chain's.
    pub(crate) fn deadline(&self) -> Deadline {
        let own = Instant::now() + self.limits.timeout;
        match self.chain_deadline {
            Some(chain) if chain < own => Deadline {
                at: chain,
                bound: Bound::Chain,
            },
            _ => Deadline {
                at: own,
                bound: Bound::Own,
            },
        }
    }

    /// What the instance serving a try ending at `deadline` passes on to its calls.
    pub(crate) fn within(&self, deadline: Instant) -> Within {
        Within {
            depth: self.depth,
            deadline,
        }
    }

    /// Charges `store` the CPU its guest uses, from now on, against the request's limit.
    ///
    /// The guest yields at every tick so that no guest monopolises its thread; tokio's own
    /// yield lets the IO driver run first, so new requests on this thread are noticed after one
    /// tick. Each tick charges the CPU the guest's thread really spent (not the wall time,
    /// which preemption stretches). A request past `BUSY_AFTER` moves to the busy lane at that
    /// yield, and while an app's requests keep doing so, its next ones start there.
    fn meter(&self, store: &mut Store<Host>) -> Arc<Meter> {
        let cpu_limit = self.limits.cpu;
        store.data_mut().account.cpu_used = Duration::ZERO;
        store.data_mut().account.cpu_exceeded = false;
        store.set_epoch_deadline(1);
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
        meter
    }

    /// Runs `guest` (which owns the instance) on its own task, on the calling thread until it
    /// turns busy and then on the busy lane, until the request's deadline; the task holds
    /// `permit` until the guest is done, then tears down the fresh instance the guest leaves
    /// (see [`Ended`]). Dropping the returned [`Abandon`] before disarming it stops the guest.
    fn spawn<F>(
        &self,
        deadline: Deadline,
        meter: Arc<Meter>,
        permit: Permit,
        guest: F,
    ) -> (JoinHandle<Outcome>, Abandon)
    where
        F: Future<Output = Ended> + Send + 'static,
    {
        let lane = self.lane.clone();
        let (held, abandon) = Held::new(permit, self.workload.clone());
        let limits = self.limits;
        // On the heap once: the guest's future holds the whole request's state (kilobytes),
        // which the task's cell would otherwise copy in and out at spawn, poll and completion
        // (measured: 3% of a fresh request's p50, 10% of its mean, in `cargo bench`).
        let guest = Box::pin(guest);
        let task = tokio::spawn(async move {
            let held = held;
            let run = lane.run(guest, meter.clone());
            let ended = match tokio::time::timeout_at(deadline.at, run).await {
                Err(_) => Ended::Stopped(Outcome::TimedOut(deadline.bound)),
                Ok(Ok(ended)) => ended,
                Ok(Err(e)) => Ended::Stopped(Outcome::Trapped(wasmtime::Error::msg(format!(
                    "the busy lane lost the request: {e}"
                )))),
            };
            let (outcome, instance) = match ended {
                Ended::Stopped(outcome) => (outcome, None),
                Ended::Returned(store) => (Outcome::Returned, store),
            };
            held.finish(outcome.cut_off(limits), outcome.limit_hit());
            if let Some(store) = instance {
                tokio::task::yield_now().await;
                // Where the guest ran: a busy guest's teardown (its memory reset, as large as
                // the memory it used) stays off the ingress threads too.
                let teardown = Box::pin(async move { drop(store) });
                let _ = lane.run(teardown, meter).await;
            }
            outcome
        });
        let abandon = abandon(task.abort_handle());
        (task, abandon)
    }

    /// Serves `req` on a `wasi:http@0.2` component: on `warm` (from `pool`), or on a fresh
    /// instance, holding `permit` until the guest is done.
    pub(crate) async fn p2<B>(
        self,
        warm: Option<reuse::Warm>,
        pool: Option<Arc<reuse::Pool>>,
        req: hyper::Request<B>,
        permit: Permit,
    ) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let deadline = self.deadline();
        let within = self.within(deadline.at);
        self.workload.metrics.instance(warm.is_some());
        let (mut store, proxy, served) = match warm {
            Some(w) => (w.store, Some(w.proxy), w.served),
            None => (
                new_store(self.component, self.workload, self.limits.memory),
                None,
                0,
            ),
        };
        let meter = self.meter(&mut store);
        let traced = traced_under(&req);
        let (tx, rx) = tokio::sync::oneshot::channel();
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
        let ProxyPre::P2(pre) = &self.component.pre else {
            unreachable!("p2 is only called for wasi:http@0.2 components")
        };
        let (pre, this) = (pre.clone(), self.clone_parts());
        let (task, abandon) = self.spawn(deadline, meter, permit, async move {
            let run = async {
                let proxy = match proxy {
                    Some(proxy) => proxy,
                    None => {
                        let _span = span(traced, "instantiate");
                        pre.instantiate_async(&mut store).await?
                    }
                };
                let mut handler = span(traced, "handler");
                store.data_mut().trace_under(handler.context());
                store.data_mut().serve_within(within);
                let handled = proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await;
                if let Err(e) = &handled {
                    handler.fail(&format!("{e:#}"));
                }
                handled?;
                wasmtime::Result::Ok(proxy)
            };
            let result = run.await;
            if let Some(limit) = this.ended(&store, &result) {
                return Ended::Stopped(limit);
            }
            match result {
                Ok(proxy) => match pool {
                    Some(pool) => {
                        pool.put(reuse::Warm::new(store, proxy, served + 1));
                        Ended::Returned(None)
                    }
                    None => Ended::Returned(Some(store)),
                },
                Err(e) => Ended::Stopped(Outcome::Trapped(e)),
            }
        });
        // The response arrives through the outparam, usually while the guest still streams its
        // body. If the guest returns first without having set it, it never will (a guest may
        // keep the outparam alive, as componentize-js does when it fails a second request).
        let rx = async {
            match rx.await {
                Ok(Ok(resp)) => Ok(Ok(resp)),
                Ok(Err(code)) => Ok(Err(format!("{code:?}"))),
                Err(_) => Err(()),
            }
        };
        self.settle(deadline, rx, task, abandon).await
    }

    /// Serves `req` on a fresh instance of a `wasi:http@0.3` component, holding `permit` until
    /// the guest and everything it spawned are done.
    pub(crate) async fn p3<B>(self, req: hyper::Request<B>, permit: Permit) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let deadline = self.deadline();
        let within = self.within(deadline.at);
        self.workload.metrics.instance(false);
        let mut store = new_store(self.component, self.workload, self.limits.memory);
        let meter = self.meter(&mut store);
        let traced = traced_under(&req);
        let (tx, rx) = futures::channel::oneshot::channel();
        let req = req.map(|body| body.map_err(Into::into).boxed_unsync());
        let (component, this) = (self.component.clone(), self.clone_parts());
        let (task, abandon) = self.spawn(deadline, meter, permit, async move {
            let result = async {
                let proxy = {
                    let _span = span(traced, "instantiate");
                    component.pre.instantiate_async(&mut store).await?
                };
                let mut handler = span(traced, "handler");
                store.data_mut().trace_under(handler.context());
                store.data_mut().serve_within(within);
                let handled = run_p3(&mut store, &proxy, req, tx).await;
                if let Err(e) = &handled {
                    handler.fail(&format!("{e:#}"));
                }
                handled
            }
            .await;
            if let Some(limit) = this.ended(&store, &result) {
                return Ended::Stopped(limit);
            }
            match result {
                Ok(()) => Ended::Returned(Some(store)),
                Err(e) => Ended::Stopped(Outcome::Trapped(e)),
            }
        });
        let rx = async {
            match rx.await {
                Ok(Ok(resp)) => Ok(Ok(resp)),
                Ok(Err(e)) => match e
                    .downcast_ref::<wasmtime_wasi_http::p3::bindings::http::types::ErrorCode>()
                {
                    Some(code) => Ok(Err(format!("{code:?}"))),
                    None => Err(()),
                },
                Err(_) => Err(()),
            }
        };
        self.settle(deadline, rx, task, abandon).await
    }

    /// What a request came to: the response from `rx` (its body stopping the guest's work if
    /// the client goes away before it is complete), or, once the guest's `task` ended without
    /// one, how it ended; a timeout if neither comes by `deadline`.
    async fn settle(
        &self,
        deadline: Deadline,
        rx: impl Future<Output = Result<Result<Response<Body>, String>, ()>>,
        task: JoinHandle<Outcome>,
        abandon: Abandon,
    ) -> Answer {
        let joined = |r: Result<Outcome, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Outcome::Trapped(wasmtime::Error::msg(e.to_string())))
        };
        // Until the response is handed on, going away means dropping this future: the guest's
        // work stops with it.
        let mut task = task;
        let settled = tokio::time::timeout_at(deadline.at, async {
            tokio::pin!(rx);
            tokio::select! {
                biased;
                set = &mut rx => match set {
                    Ok(set) => Ok(set),
                    // No response will come: the task says why.
                    Err(()) => Err(joined((&mut task).await)),
                },
                done = &mut task => match futures::FutureExt::now_or_never(&mut rx) {
                    Some(Ok(set)) => Ok(set),
                    _ => Err(joined(done)),
                },
            }
        })
        .await;
        let outcome = match settled {
            Ok(Ok(Ok(resp))) => {
                abandon.responded();
                return Answer::Response(
                    resp.map(|body| GuestBody::new(body, abandon).boxed_unsync()),
                );
            }
            Ok(Ok(Err(code))) => Outcome::ErrorCode(code),
            Ok(Err(outcome)) => outcome,
            Err(_) => Outcome::TimedOut(deadline.bound),
        };
        // Ended by itself (or ends at the same deadline): nothing to stop.
        abandon.disarm();
        Answer::Failed(outcome)
    }

    /// What the guest's task needs of `self` after it is spawned.
    fn clone_parts(&self) -> Parts {
        Parts {
            last_was_busy: self.last_was_busy.clone(),
        }
    }
}

/// What a running guest's task keeps of its [`Attempt`].
struct Parts {
    last_was_busy: Arc<AtomicBool>,
}

impl Parts {
    fn ended<T>(&self, store: &Store<Host>, result: &wasmtime::Result<T>) -> Option<Outcome> {
        let account = &store.data().account;
        self.last_was_busy
            .store(account.cpu_used >= BUSY_AFTER, Ordering::Relaxed);
        if account.limits.memory_denied {
            store.data().workload().metrics.limit_hit(LimitHit::Memory);
        }
        match result {
            Err(_) if account.cpu_exceeded => Some(Outcome::CpuExceeded),
            _ => None,
        }
    }
}

/// How a guest's task ended. A guest that returned may leave its fresh instance to tear
/// down: its task gives back the request's slots first — the guest is done, and a client that
/// has its answer may send the next request at once — then yields, so that whatever the
/// finished response woke (the connection writing it out, the caller of an in-memory call)
/// runs before the teardown (memory reset, stack zeroed and decommitted: half of a C hello
/// request's CPU) rather than after it.
enum Ended {
    Returned(Option<Store<Host>>),
    Stopped(Outcome),
}

/// Runs one `wasi:http@0.3` request on `proxy` in `store`'s concurrent event loop until the
/// guest has answered (through `tx`) and no task of it is left.
async fn run_p3(
    store: &mut Store<Host>,
    proxy: &Proxy,
    req: http::Request<wasmtime_wasi_http::WasiBody>,
    tx: futures::channel::oneshot::Sender<wasmtime::Result<Response<Body>>>,
) -> wasmtime::Result<()> {
    let prepared = handler::Prepared::new(store.as_context_mut(), proxy, req, Host::http, tx)?;
    store
        .run_concurrent(async |accessor| {
            prepared.run(accessor, std::future::pending()).await?;
            // The response is out; the body and any spawned tasks still run here.
            std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
            wasmtime::Result::Ok(())
        })
        .await?
}
