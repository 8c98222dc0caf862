//! Reuse for WASI 0.3 components (`spec.reuse` on a `wasi:http@0.3` app): an instance answers
//! up to `maxRequests` requests, up to `maxConcurrent` of them at once, as 0.3 allows. The
//! worker loop is wasmtime-wasi-http's `ProxyHandler`, the one `wasmtime serve` runs; what this
//! module adds is Shoal's rule that no request fails because of reuse, and its limits.
//!
//! # No request fails because of reuse
//! - Only a request that can be replayed (a safe method, no body) goes to a shared instance;
//!   any other gets a fresh instance of its own.
//! - A shared instance's response is held until its body is complete (up to [`HOLD`]), so
//!   nothing has reached the client while the instance might still fail: if it traps, runs
//!   out of memory, or is ended by another request's CPU limit, the request is replayed on a
//!   fresh instance. A body longer than [`HOLD`] streams on from there, and would be cut off
//!   if its instance failed after that: an app that streams long bodies should not share.
//! - As for 0.2 ([`crate::reuse`]), a component is unproven until a request that was not its
//!   instance's first succeeds. Until then, a failure on a shared instance that a fresh one
//!   does not repeat refuses reuse: from then on, every request gets a fresh instance.
//!
//! # Limits on a shared instance
//! - `timeout`: each request's own, counted from its arrival. One that passes it is answered
//!   504; its guest task goes on (wasmtime cannot yet cancel one task of an instance), so the
//!   instance takes no more requests and ends once its others are done, at the latest when
//!   the last one it accepted passes its timeout.
//! - `cpu`: every tick of CPU is shared out evenly among the requests in flight (wasmtime does
//!   not say which task computes); once a share passes the limit, the instance ends and every
//!   request it had not answered is replayed on a fresh instance of its own, where the one that
//!   computes too long fails by itself (500) and the others are answered. Work the guest does
//!   with no request in flight is charged to the instance, against one request's limit.
//! - `memory`: the instance's, shared by the requests it answers at once.
//! - Instances count against the node's reuse budget ([`Budget`]) and end after [`IDLE_TTL`]
//!   without a request; with no room in the budget, a request gets a fresh instance.

use crate::bodies::Body;
use crate::chain::Within;
use crate::component::Prepared;
use crate::host::Host;
use crate::permit::Permit;
use crate::request::{Bound, Outcome, new_store, span, traced_under};
use crate::reuse::{Budget, IDLE_TTL, Proof, Trust};
use crate::ticker::EPOCH_TICK;
use crate::workload::{Limits, Workload};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut, Trap, UpdateDeadline};
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, ProxyHandler, ShouldAccept, WorkerExpiration,
    WorkerState, WorkerStatus,
};

/// Most of a shared instance's response body held back until the body is complete.
pub(crate) const HOLD: usize = 1 << 20;

/// One app's shared 0.3 instances.
pub(crate) struct Shared {
    handler: ProxyHandler<Workers>,
}

/// What a request on a shared instance came to.
pub(crate) enum Served {
    /// A response to hand on: complete, or (past [`HOLD`]) streaming.
    Answered(Response<Body>),
    /// Its own failure, which a fresh instance would repeat.
    Failed(Outcome),
    /// Serve it on a fresh instance, under `permit`. `suspect`: reuse may be at fault; if the
    /// fresh instance answers well, it is (see [`Shared::refuse`]).
    Replay { suspect: bool, permit: Permit },
}

impl Shared {
    /// Shared instances of `workload`'s component, each answering at most `max_requests`
    /// requests, `max_concurrent` at once, under `limits`.
    pub(crate) fn new(
        workload: &Arc<Workload>,
        limits: Limits,
        max_requests: u32,
        max_concurrent: u32,
        budget: &Arc<Budget>,
    ) -> Self {
        Self {
            handler: ProxyHandler::new(Workers {
                component: ArcSwapOption::empty(),
                workload: workload.clone(),
                limits,
                max_requests,
                max_concurrent: max_concurrent.max(1),
                budget: budget.clone(),
                proof: Proof::default(),
                closing: Arc::new(Closing::default()),
            }),
        }
    }

    /// Whether requests may still go to shared instances.
    pub(crate) fn trust(&self) -> Trust {
        self.handler.state().proof.get()
    }

    /// Reuse failed where a fresh instance did not: every request gets a fresh instance from
    /// now on, and the shared instances end.
    pub(crate) fn refuse(&self) {
        self.handler.state().proof.refuse();
        self.close();
    }

    /// Ends every shared instance once it has answered what it accepted (the app went idle, or
    /// is gone); later requests start new ones.
    pub(crate) fn close(&self) {
        let workers = self.handler.state();
        workers.component.store(None);
        workers.closing.close();
    }

    /// Serves `req` (replayable: a safe method, no body) on a shared instance of `component`,
    /// by `within`'s deadline (set by `bound`), holding `permit` until its response is complete.
    pub(crate) async fn serve(
        &self,
        component: &Arc<Prepared>,
        req: http::Request<Body>,
        within: Within,
        bound: Bound,
        permit: Permit,
    ) -> Served {
        let deadline = within.deadline;
        let workers = self.handler.state();
        let current = workers.component.load();
        if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, component)) {
            workers.component.store(Some(component.clone()));
        }
        drop(current);
        // Until the response is held; its outgoing requests are not traced under it, as the
        // instance makes them for whichever of its requests.
        let mut handler = span(traced_under(&req), "handler");
        handler.set("shoal.instance.shared", true);
        let ticket = Arc::new(Ticket::new(within));
        let handled =
            tokio::time::timeout_at(deadline, self.handler.handle(ticket.clone(), req)).await;
        let resp = match handled {
            Err(_) => {
                handler.fail("timed out");
                return Served::Failed(Outcome::TimedOut(bound));
            }
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                handler.fail(&format!("{e:#}"));
                return self.failed(&e, &ticket, bound, permit);
            }
        };
        let reused = ticket.reused();
        handler.set("shoal.instance.reused", reused);
        workers.workload.metrics.instance(reused);
        let unproven = workers.proof.get() == Trust::Unproven;
        if resp.status().is_server_error() && reused && unproven {
            handler.set("shoal.replayed", true);
            return Served::Replay {
                suspect: true,
                permit,
            };
        }
        // Hold the body until it is complete, or until HOLD of it has come.
        let (parts, mut body) = resp.into_parts();
        let (mut frames, mut held) = (VecDeque::new(), 0);
        let complete = loop {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => {
                    handler.fail("timed out");
                    return Served::Failed(Outcome::TimedOut(bound));
                }
                Ok(None) => break true,
                Ok(Some(Ok(frame))) => {
                    held += frame.data_ref().map_or(0, Bytes::len);
                    frames.push_back(frame);
                    if held > HOLD {
                        break false;
                    }
                }
                // The instance failed under the body (or the guest failed it): a fresh
                // instance answers, or fails the same way.
                Ok(Some(Err(_))) => {
                    handler.set("shoal.replayed", true);
                    return Served::Replay {
                        suspect: reused && unproven && !ticket.cpu_ended.load(Ordering::Relaxed),
                        permit,
                    };
                }
            }
        };
        if reused {
            workers.proof.prove();
        }
        let body = HeldBody {
            frames,
            rest: (!complete).then_some(body),
            _in_flight: (ticket, permit),
        };
        Served::Answered(Response::from_parts(parts, body.boxed_unsync()))
    }

    /// What a request whose shared instance gave no response comes to.
    fn failed(&self, e: &wasmtime::Error, ticket: &Ticket, bound: Bound, permit: Permit) -> Served {
        if e.is::<ExpirationError>() {
            return Served::Failed(Outcome::TimedOut(bound));
        }
        // Which request computed too long is for fresh instances to tell; reuse is not at
        // fault.
        if ticket.cpu_ended.load(Ordering::Relaxed) {
            return Served::Replay {
                suspect: false,
                permit,
            };
        }
        let reused = ticket.reused();
        let unproven = self.trust() == Trust::Unproven;
        match e.downcast_ref::<wasmtime_wasi_http::p3::bindings::http::types::ErrorCode>() {
            // The guest's own answer, on its instance's first request or once reuse is proven.
            Some(code) if !(reused && unproven) => {
                Served::Failed(Outcome::ErrorCode(format!("{code:?}")))
            }
            // An error code on a reused instance of an unproven component; or the instance
            // trapped, ran out of memory or could not start (with room or not in the budget):
            // a fresh instance answers or fails by itself.
            _ => Served::Replay {
                suspect: reused && unproven,
                permit,
            },
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.close();
    }
}

/// The shared instances' common state: what `ProxyHandler` starts workers from.
struct Workers {
    /// The component new instances are made of (none while the app is idle).
    component: ArcSwapOption<Prepared>,
    workload: Arc<Workload>,
    limits: Limits,
    max_requests: u32,
    max_concurrent: u32,
    budget: Arc<Budget>,
    proof: Proof,
    closing: Arc<Closing>,
}

/// Tells every shared instance of an app to end.
#[derive(Default)]
struct Closing {
    generation: AtomicU64,
    notify: Arc<tokio::sync::Notify>,
}

impl Closing {
    fn close(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

/// Why a shared instance could not be made.
#[derive(Debug, thiserror::Error)]
enum NoInstance {
    #[error("the app is idle")]
    Idle,
    #[error("the node's reuse budget is spent")]
    NoRoom,
}

impl HandlerState for Workers {
    type StoreData = Host;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiry, Worker>> {
        let Some(component) = self.component.load_full() else {
            return Err(NoInstance::Idle.into());
        };
        if !self.budget.reserve() {
            return Err(NoInstance::NoRoom.into());
        }
        let life = Arc::new(Life::default());
        let mut store = new_store(&component, &self.workload, self.limits.memory);
        store.set_epoch_deadline(1);
        let (charged, cpu) = (life.clone(), self.limits.cpu);
        store.epoch_deadline_callback(move |_| {
            if !charged.charge(cpu) {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let proxy = match component.pre.instantiate_async(&mut store).await {
            Ok(proxy) => proxy,
            Err(e) => {
                self.budget.release();
                return Err(e);
            }
        };
        let born = self.closing.generation();
        Ok(Instance {
            store,
            proxy,
            view: <Host as wasmtime_wasi_http::WasiHttpView>::http,
            expiration: Expiry {
                timeout: self.limits.timeout,
                closing: self.closing.clone(),
                born,
                sleep: Mutex::new(Box::pin(tokio::time::sleep(IDLE_TTL))),
                closed: Mutex::new(Box::pin(self.closing.notify.clone().notified_owned())),
            },
            state: Worker {
                life,
                workload: self.workload.clone(),
                max_requests: self.max_requests as usize,
                max_concurrent: self.max_concurrent as usize,
                budget: self.budget.clone(),
                closing: self.closing.clone(),
                born,
            },
        })
    }
}

/// One request on a shared instance, as the instance and its caller both see it.
struct Ticket {
    deadline: Instant,
    /// Its depth in a chain of in-memory calls.
    depth: u32,
    /// Its share of the instance's CPU, in ns.
    cpu_ns: AtomicU64,
    /// Its instance was ended by the CPU limit while it was in flight.
    cpu_ended: AtomicBool,
    /// The how-many-th request of its instance it is (0 until one accepts it).
    number: AtomicU32,
}

impl Ticket {
    /// Whether its instance had accepted a request before it: reuse was at work.
    fn reused(&self) -> bool {
        self.number.load(Ordering::Relaxed) > 1
    }

    fn new(within: Within) -> Self {
        Self {
            deadline: within.deadline,
            depth: within.depth,
            cpu_ns: AtomicU64::new(0),
            cpu_ended: AtomicBool::new(false),
            number: AtomicU32::new(0),
        }
    }
}

/// One shared instance's accounting, kept by its epoch callback and its worker.
#[derive(Default)]
struct Life {
    /// The requests it accepted whose callers still wait (or stream): those in flight.
    tickets: Mutex<Vec<Weak<Ticket>>>,
    accepted: AtomicU32,
    /// CPU (ns) spent with no request in flight.
    background_ns: AtomicU64,
    /// The thread that last charged, and its CPU clock then.
    last: Mutex<Option<(std::thread::ThreadId, u64)>>,
}

impl Life {
    /// Charges one tick of the guest's CPU; false once a request's share, or the work done
    /// with none in flight, has passed `limit`.
    ///
    /// `ProxyHandler` polls the instance, so unlike a fresh instance's [`Meter`] no hook sees
    /// each poll start: the charge is the thread's CPU since the previous tick when that tick
    /// ran on the same thread, capped at one tick (other tasks may have run in between), and
    /// one tick otherwise.
    ///
    /// [`Meter`]: crate::lanes::Meter
    fn charge(&self, limit: Duration) -> bool {
        let now = crate::lanes::thread_cpu_ns();
        let here = std::thread::current().id();
        let tick = u64::try_from(EPOCH_TICK.as_nanos()).unwrap_or(u64::MAX);
        let used = {
            let mut last = lock(&self.last);
            let used = match *last {
                Some((thread, then)) if thread == here => now.saturating_sub(then).min(tick),
                _ => tick,
            };
            *last = Some((here, now));
            used
        };
        let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let mut tickets = lock(&self.tickets);
        tickets.retain(|t| t.strong_count() > 0);
        let live: Vec<Arc<Ticket>> = tickets.iter().filter_map(Weak::upgrade).collect();
        drop(tickets);
        if live.is_empty() {
            return self.background_ns.fetch_add(used, Ordering::Relaxed) + used <= limit;
        }
        let share = used / live.len() as u64;
        let mut within = true;
        for ticket in &live {
            within &= ticket.cpu_ns.fetch_add(share, Ordering::Relaxed) + share <= limit;
        }
        if !within {
            for ticket in &live {
                ticket.cpu_ended.store(true, Ordering::Relaxed);
            }
        }
        within
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One shared instance, as `ProxyHandler`'s worker asks it what to do.
struct Worker {
    life: Arc<Life>,
    workload: Arc<Workload>,
    max_requests: usize,
    max_concurrent: usize,
    budget: Arc<Budget>,
    closing: Arc<Closing>,
    born: u64,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = Arc<Ticket>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_requests || self.closing.generation() != self.born {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, Host>,
        ticket: Arc<Ticket>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let number = self.life.accepted.fetch_add(1, Ordering::Relaxed) + 1;
        ticket.number.store(number, Ordering::Relaxed);
        lock(&self.life.tickets).push(Arc::downgrade(&ticket));
        store.data_mut().serve_also(Within {
            depth: ticket.depth,
            deadline: ticket.deadline,
        });
        let sleep = Mutex::new(Box::pin(tokio::time::sleep_until(ticket.deadline)));
        Box::pin(std::future::poll_fn(move |cx| {
            lock(&sleep).as_mut().poll(cx)
        }))
    }

    fn drop(&self, store: Store<Host>, result: wasmtime::Result<()>) {
        drop(store);
        self.budget.release();
        if let Err(e) = result {
            self.workload.event(&format!(
                "a shared instance ended: {e:#}; requests it had not answered are answered by fresh instances"
            ));
        }
    }
}

/// When a shared instance ends: idle for [`IDLE_TTL`] or closed; or stuck — requests accepted
/// but none answered within a timeout of the latest, or work after the last response going
/// on for a timeout.
struct Expiry {
    timeout: Duration,
    closing: Arc<Closing>,
    born: u64,
    // In mutexes only to be `Sync`, as `ProxyHandler` wants; one worker polls them.
    sleep: Mutex<Pin<Box<tokio::time::Sleep>>>,
    closed: Mutex<Pin<Box<tokio::sync::futures::OwnedNotified>>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: std::time::Instant,
    ) -> Poll<()> {
        let idle = status == WorkerStatus::Idle;
        // Closed while idle: end now. (The generation catches a close before the first poll
        // of `closed`, which only then starts listening.)
        if idle
            && (self.closing.generation() != self.born
                || lock(&self.closed).as_mut().poll(cx).is_ready())
        {
            return Poll::Ready(());
        }
        let at = Instant::from_std(start) + if idle { IDLE_TTL } else { self.timeout };
        let mut sleep = lock(&self.sleep);
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        sleep.as_mut().poll(cx)
    }
}

/// A response body from a shared instance: what was held back, then the rest, if any.
struct HeldBody {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<Body>,
    /// The request is in flight — for the CPU shares and the app's concurrency — until its
    /// body is done.
    _in_flight: (Arc<Ticket>, Permit),
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self
                .rest
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream)
    }
}
