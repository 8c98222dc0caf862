//! What a request holds while its guest runs: a slot of its app's concurrency and, when the
//! app shares a limit with others (its namespace's instances on this node), a slot of that.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::OwnedSemaphorePermit;

/// A limit on the instances running at once that several deployments share; changed in
/// place (`set`) and seen by the next request.
#[derive(Debug)]
pub struct SharedLimit {
    what: String,
    limit: AtomicUsize,
    in_flight: AtomicUsize,
}

impl SharedLimit {
    /// A limit of `limit` instances (none when `None`), `what` naming it in refusals (e.g.
    /// `namespace team-a's quota of instances (spec.quota.instances)`).
    pub fn new(what: impl Into<String>, limit: Option<u64>) -> Arc<Self> {
        let this = Arc::new(Self {
            what: what.into(),
            limit: AtomicUsize::new(usize::MAX),
            in_flight: AtomicUsize::new(0),
        });
        this.set(limit);
        this
    }

    /// Changes the limit; requests in flight over a lowered one run to their end.
    pub fn set(&self, limit: Option<u64>) {
        let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Instances holding a slot now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A slot, unless all are taken: the refusal's message then.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Result<SharedSlot, String> {
        let limit = self.limit.load(Ordering::Relaxed);
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        if taken > limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "{} is reached ({limit} at once on this node); retry shortly",
                self.what
            ));
        }
        Ok(SharedSlot(self.clone()))
    }
}

/// One slot of a [`SharedLimit`], given back when dropped.
#[derive(Debug)]
pub(crate) struct SharedSlot(Arc<SharedLimit>);

impl Drop for SharedSlot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request's slots, held until its guest is done.
#[derive(Debug)]
pub(crate) struct Permit {
    _app: OwnedSemaphorePermit,
    _shared: Option<SharedSlot>,
}

impl Permit {
    pub(crate) fn new(app: OwnedSemaphorePermit, shared: Option<SharedSlot>) -> Self {
        Self {
            _app: app,
            _shared: shared,
        }
    }
}
