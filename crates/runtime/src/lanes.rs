//! Where guest code runs: on the ingress thread that accepted the request while it is short, on
//! the busy lane once it has computed for 10 ms (or from the start, while its app's requests
//! keep doing so).
//!
//! The busy lane is a small tokio runtime whose threads run at the lowest priority (nice 19): the
//! kernel gives an ingress thread that wakes up with a request the core at once, so however many
//! guests burn their CPU budget, short requests do not queue behind them, and when the node has
//! nothing else to do the busy guests get the lane's cores. Guests yield at every epoch tick, so
//! busy guests share the lane round-robin, and a guest blocked in the host holds no thread.
//! [`Meter`] charges each request the thread CPU it used, whichever thread ran it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::task::Poll;
use std::time::Duration;
use tokio::task::JoinError;
use tokio_util::task::AbortOnDropHandle;

/// The low-priority runtime that busy guests move to. Shut down (in the background) on drop.
pub(crate) struct BusyLane {
    runtime: Option<tokio::runtime::Runtime>,
}

impl BusyLane {
    /// Starts `threads` lowest-priority worker threads.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("shoal-busy")
            .on_thread_start(|| lower_priority(BUSY_NICE))
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `guest` on the calling task until `meter` says busy, then on the busy lane until it
    /// ends; if it is busy already, on the lane from the start. Before every poll of the guest,
    /// wherever it runs, `meter` notes the thread's CPU clock (see [`Meter::charge`]).
    ///
    /// The move happens between two polls, so the guest never notices it; the meter must turn
    /// busy just before the guest yields (the epoch callback does this). Dropping the returned
    /// future drops the guest, wherever it runs. The guest comes boxed: its future holds a
    /// whole request's state, which would otherwise be copied into every future holding it.
    ///
    /// # Errors
    /// The guest panicked on the lane, or the lane was shut down under it.
    pub(crate) async fn run<F>(
        &self,
        mut guest: Pin<Box<F>>,
        meter: Arc<Meter>,
    ) -> Result<F::Output, JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let here = std::future::poll_fn(|cx| {
            if meter.is_busy() {
                return Poll::Ready(None);
            }
            meter.poll_starts();
            match guest.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Some(out)),
                Poll::Pending if meter.is_busy() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match here {
            Some(out) => Ok(out),
            None => {
                let lane = self.runtime.as_ref().expect("present until dropped");
                let metered = std::future::poll_fn(move |cx| {
                    meter.poll_starts();
                    guest.as_mut().poll(cx)
                });
                AbortOnDropHandle::new(lane.spawn(metered)).await
            }
        }
    }
}

/// What one request's guest has cost in CPU, and whether it belongs on the busy lane. Shared
/// between the task that polls the guest and the epoch callback that runs inside it.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    busy: AtomicBool,
    /// Set at the first charge: short requests, which never reach an epoch tick, never read
    /// the clock.
    metering: AtomicBool,
    /// The polling thread's CPU clock (ns) when the current poll started, or when it was
    /// last charged during that poll.
    since: AtomicU64,
}

impl Meter {
    /// A meter that starts busy (on the lane) or not.
    pub(crate) fn new(busy: bool) -> Self {
        Self {
            busy: AtomicBool::new(busy),
            metering: AtomicBool::new(false),
            since: AtomicU64::new(0),
        }
    }

    /// Moves the guest to the busy lane at its next yield.
    pub(crate) fn turn_busy(&self) {
        self.busy.store(true, Ordering::Relaxed);
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    fn poll_starts(&self) {
        if self.metering.load(Ordering::Relaxed) {
            self.since.store(thread_cpu_ns(), Ordering::Relaxed);
        }
    }

    /// CPU the polling thread has spent since the poll started or since the last charge: the
    /// guest's own, whichever thread runs it and however often the kernel preempts it. The
    /// first charge is `first` (the tick interval: the guest ran for at most about that long
    /// before the first tick) and starts the metering. Call it only from inside the guest (the
    /// epoch callback).
    pub(crate) fn charge(&self, first: Duration) -> Duration {
        let now = thread_cpu_ns();
        if !self.metering.swap(true, Ordering::Relaxed) {
            self.since.store(now, Ordering::Relaxed);
            return first;
        }
        Duration::from_nanos(now.saturating_sub(self.since.swap(now, Ordering::Relaxed)))
    }
}

/// CPU time of the calling thread, in ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    #[allow(unsafe_code, reason = "clock_gettime writes the timespec it is given")]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    debug_assert_eq!(
        rc, 0,
        "CLOCK_THREAD_CPUTIME_ID is always available on Linux"
    );
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

impl Drop for BusyLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks, which is not allowed on an async worker.
            runtime.shutdown_background();
        }
    }
}

/// The nice value of busy-lane threads: the lowest priority that still guarantees progress.
/// Measured against `SCHED_IDLE` on the noisy-neighbour bench, it disturbed short requests no
/// more, and it never lets busy guests starve outright when other processes keep the CPU busy.
pub(crate) const BUSY_NICE: i32 = 19;

/// The nice value of compiler threads: compiling a new app must not slow the apps serving.
pub(crate) const COMPILE_NICE: i32 = 10;

/// Lowers the calling thread's priority to `nice` (Linux: nice values are per thread, and
/// threads it starts inherit them). Raising a nice value needs no privilege; if it fails
/// anyway, or elsewhere than Linux, the thread keeps its priority and a warning says so once.
pub(crate) fn lower_priority(nice: i32) {
    static WARNED: Once = Once::new();
    #[cfg(target_os = "linux")]
    let result = {
        // SAFETY: plain syscalls on the calling thread, with no pointers.
        #[allow(
            unsafe_code,
            reason = "gettid and setpriority take and return plain integers"
        )]
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid.cast_unsigned(), nice)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().to_string())
        }
    };
    #[cfg(not(target_os = "linux"))]
    let result: Result<(), String> =
        Err("per-thread priorities are implemented for Linux only".into());
    if let Err(e) = result {
        WARNED.call_once(|| {
            tracing::warn!(
                "cannot lower the priority of busy guests and compilation ({e}); they will compete with short requests"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn the_meter_charges_computing_not_waiting() {
        let meter = Meter::new(false);
        let first = Duration::from_millis(1);
        assert_eq!(meter.charge(first), first);
        let start = thread_cpu_ns();
        while thread_cpu_ns() - start < 5_000_000 {}
        assert!(meter.charge(first) >= Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(50));
        assert!(meter.charge(first) < Duration::from_millis(50));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_short_guest_stays_on_the_calling_thread() {
        let lane = BusyLane::start(1).unwrap();
        let caller = current_thread_name();
        let ran_on = lane
            .run(Box::pin(async { current_thread_name() }), Arc::default())
            .await
            .unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_guest_that_turns_busy_finishes_on_the_lane() {
        let lane = BusyLane::start(1).unwrap();
        let meter = Arc::new(Meter::new(false));
        let signal = meter.clone();
        let guest = async move {
            let before = current_thread_name();
            signal.turn_busy();
            tokio::task::yield_now().await;
            (before, current_thread_name())
        };
        let (before, after) = lane.run(Box::pin(guest), meter).await.unwrap();
        assert_eq!(before, current_thread_name());
        assert_eq!(after, "shoal-busy");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_run_drops_the_guest_on_the_lane() {
        let lane = BusyLane::start(1).unwrap();
        let meter = Arc::new(Meter::new(false));
        let signal = meter.clone();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let guest = async move {
            let _tell_when_dropped = dropped_tx;
            signal.turn_busy();
            std::future::pending::<()>().await;
        };
        let run = lane.run(Box::pin(guest), meter);
        // The guest moves to the lane on the first poll and never finishes; give up on it.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(1), run)
                .await
                .is_err()
        );
        assert!(dropped_rx.await.is_err(), "the guest was dropped");
    }
}
