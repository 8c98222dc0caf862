//! Opt-in instance reuse (`spec.reuse`): the idle instances an app keeps for its next requests.
//!
//! An instance that answered a request goes back to its app's [`Pool`] and answers a later one,
//! one request at a time, until it has served `maxRequests`; a trap, a limit or a timeout drops
//! it. Whether a component can answer twice is only known once it tries (componentize-js, for
//! one, cannot), so a pool starts [`Trust::Unproven`]: a reused instance then gets only requests
//! with a safe method (GET, HEAD, OPTIONS, TRACE) and no body, which `HttpApp` can replay on a
//! fresh instance if the reused one fails. The
//! first reused answer that succeeds proves the component; a failure that a fresh instance does
//! not repeat refuses it, and the app serves every request fresh from then on.
//!
//! Idle instances hold pool slots and their grown memory, so they are bounded three ways: per
//! app (its concurrency limit), per node ([`Budget`]: half the instance slots, so fresh instances
//! always find one), and in time ([`IDLE_TTL`], enforced by the `shoal-reaper` thread).
//!
//! This is reuse for WASI 0.2 components; a 0.3 one's instances answer requests concurrently
//! (see [`crate::share`]) under the same [`Trust`], [`Budget`] and [`IDLE_TTL`].

use crate::host::Host;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

/// An idle instance unused for this long is dropped, giving back its slot and memory.
pub(crate) const IDLE_TTL: Duration = Duration::from_secs(30);

/// How often the reaper looks for instances idle past [`IDLE_TTL`].
const REAP_EVERY: Duration = Duration::from_secs(1);

/// An instance between two requests, with the bindings to call it again.
pub(crate) struct Warm {
    pub(crate) store: Store<Host>,
    pub(crate) proxy: Proxy,
    /// Requests it has answered.
    pub(crate) served: u32,
    idle_since: Instant,
}

impl Warm {
    pub(crate) fn new(store: Store<Host>, proxy: Proxy, served: u32) -> Self {
        Self {
            store,
            proxy,
            served,
            idle_since: Instant::now(),
        }
    }
}

/// What is known about whether a component can answer more than one request per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// No reused instance has answered yet.
    Unproven,
    /// A reused instance answered well.
    Proven,
    /// A reused instance failed where a fresh one answered: reuse is off.
    Refused,
}

/// What is known so far about one deployment's component (see [`Trust`]), shared by its
/// requests.
#[derive(Debug, Default)]
pub(crate) struct Proof(AtomicU8);

impl Proof {
    pub(crate) fn get(&self) -> Trust {
        match self.0.load(Ordering::Relaxed) {
            0 => Trust::Unproven,
            1 => Trust::Proven,
            _ => Trust::Refused,
        }
    }

    /// A reused instance answered well (a refusal stands).
    pub(crate) fn prove(&self) {
        let _ = self.0.compare_exchange(
            Trust::Unproven as u8,
            Trust::Proven as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Reuse is off from now on.
    pub(crate) fn refuse(&self) {
        self.0.store(Trust::Refused as u8, Ordering::Relaxed);
    }
}

/// One app's idle instances.
pub(crate) struct Pool {
    max_requests: u32,
    max_idle: usize,
    /// Most recently used last: it is taken first, its pages are the warmest.
    idle: Mutex<Vec<Warm>>,
    proof: Proof,
    budget: Arc<Budget>,
}

impl Pool {
    /// A pool of at most `max_idle` instances, each answering at most `max_requests` requests.
    pub(crate) fn new(budget: &Arc<Budget>, max_requests: u32, max_idle: usize) -> Arc<Self> {
        let pool = Arc::new(Self {
            max_requests,
            max_idle,
            idle: Mutex::default(),
            proof: Proof::default(),
            budget: budget.clone(),
        });
        budget.register(&pool);
        pool
    }

    pub(crate) fn trust(&self) -> Trust {
        self.proof.get()
    }

    /// An idle instance for a request, if reuse may serve it: `replayable` says the request
    /// could be replayed on a fresh instance (a safe method, no body).
    pub(crate) fn take(&self, replayable: bool) -> Option<Warm> {
        match self.trust() {
            Trust::Refused => return None,
            Trust::Unproven if !replayable => return None,
            _ => {}
        }
        let warm = self.lock().pop()?;
        self.budget.used.fetch_sub(1, Ordering::Relaxed);
        Some(warm)
    }

    /// Keeps `warm` for a later request, unless it has served its share or there is no room.
    pub(crate) fn put(&self, warm: Warm) {
        if warm.served >= self.max_requests || self.trust() == Trust::Refused {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.max_idle && self.budget.reserve() {
            idle.push(warm);
            return;
        }
        drop(idle);
        // `warm` drops here, outside the lock.
    }

    /// A reused instance answered well.
    pub(crate) fn prove(&self) {
        self.proof.prove();
    }

    /// The component cannot be reused: drop every idle instance and keep none from now on.
    pub(crate) fn refuse(&self) {
        self.proof.refuse();
        self.clear();
    }

    /// Drops every idle instance (the app went idle).
    pub(crate) fn clear(&self) {
        let drained = std::mem::take(&mut *self.lock());
        self.budget.used.fetch_sub(drained.len(), Ordering::Relaxed);
    }

    /// Drops the instances idle since before `cutoff`.
    fn reap(&self, cutoff: Instant) {
        let mut idle = self.lock();
        // Oldest first: the stale ones are a prefix.
        let stale = idle.partition_point(|w| w.idle_since < cutoff);
        let expired: Vec<Warm> = idle.drain(..stale).collect();
        drop(idle);
        self.budget.used.fetch_sub(expired.len(), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        // A panic while holding the lock leaves a valid Vec; keep using it.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = self.lock().len();
        self.budget.used.fetch_sub(idle, Ordering::Relaxed);
    }
}

/// The node-wide bound on idle reused instances, and the registry the reaper walks.
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
    pools: Mutex<Vec<Weak<Pool>>>,
}

impl Budget {
    /// A budget of `limit` idle instances, with its reaper thread (which ends with the budget).
    pub(crate) fn start(limit: usize) -> std::io::Result<Arc<Self>> {
        let budget = Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            pools: Mutex::default(),
        });
        let weak = Arc::downgrade(&budget);
        std::thread::Builder::new()
            .name("shoal-reaper".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(REAP_EVERY);
                    let Some(budget) = weak.upgrade() else { return };
                    budget.reap(Instant::now() - IDLE_TTL);
                }
            })?;
        Ok(budget)
    }

    fn register(&self, pool: &Arc<Pool>) {
        self.pools_lock().push(Arc::downgrade(pool));
    }

    /// Takes one of the budget's instances, if one is left.
    pub(crate) fn reserve(&self) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .is_ok()
    }

    /// Gives back an instance [`Budget::reserve`] took.
    pub(crate) fn release(&self) {
        self.used.fetch_sub(1, Ordering::Relaxed);
    }

    fn reap(&self, cutoff: Instant) {
        let live: Vec<Arc<Pool>> = {
            let mut pools = self.pools_lock();
            pools.retain(|p| p.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        for pool in live {
            pool.reap(cutoff);
        }
    }

    fn pools_lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Pool>>> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
