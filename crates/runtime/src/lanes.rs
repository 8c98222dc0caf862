//! Where guest code runs: on the ingress thread that accepted the request while it is short, on
//! the busy lane once it has computed for 10 ms (or from the start, while its app's requests
//! keep doing so).
//!
//! The busy lane is a small tokio runtime whose threads run at the lowest priority (nice 19): the
//! kernel gives an ingress thread that wakes up with a request the core at once, so however many
//! guests burn their CPU budget, short requests do not queue behind them, and when the node has
//! nothing else to do the busy guests get the lane's cores. Guests yield at every epoch tick, so
//! busy guests share the lane round-robin, and a guest blocked in the host holds no thread.

use std::future::Future;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
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

    /// Runs `guest` on the calling task until `busy` is set, then on the busy lane until it ends;
    /// if `busy` is already set, on the lane from the start.
    ///
    /// The move happens between two polls, so the guest never notices it; `busy` must be set
    /// just before the guest yields (the epoch callback does this). Dropping the returned future
    /// drops the guest, wherever it runs.
    ///
    /// # Errors
    /// The guest panicked on the lane, or the lane was shut down under it.
    pub(crate) async fn run<F>(&self, guest: F, busy: &AtomicBool) -> Result<F::Output, JoinError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut guest = Box::pin(guest);
        let here = std::future::poll_fn(|cx| {
            if busy.load(Ordering::Relaxed) {
                return Poll::Ready(None);
            }
            match guest.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Some(out)),
                Poll::Pending if busy.load(Ordering::Relaxed) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match here {
            Some(out) => Ok(out),
            None => {
                let lane = self.runtime.as_ref().expect("present until dropped");
                AbortOnDropHandle::new(lane.spawn(guest)).await
            }
        }
    }
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
    use std::sync::Arc;

    fn current_thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_short_guest_stays_on_the_calling_thread() {
        let lane = BusyLane::start(1).unwrap();
        let busy = AtomicBool::new(false);
        let caller = current_thread_name();
        let ran_on = lane
            .run(async { current_thread_name() }, &busy)
            .await
            .unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_guest_that_turns_busy_finishes_on_the_lane() {
        let lane = BusyLane::start(1).unwrap();
        let busy = Arc::new(AtomicBool::new(false));
        let signal = busy.clone();
        let guest = async move {
            let before = current_thread_name();
            signal.store(true, Ordering::Relaxed);
            tokio::task::yield_now().await;
            (before, current_thread_name())
        };
        let (before, after) = lane.run(guest, &busy).await.unwrap();
        assert_eq!(before, current_thread_name());
        assert_eq!(after, "shoal-busy");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_run_drops_the_guest_on_the_lane() {
        let lane = BusyLane::start(1).unwrap();
        let busy = Arc::new(AtomicBool::new(false));
        let signal = busy.clone();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let guest = async move {
            let _tell_when_dropped = dropped_tx;
            signal.store(true, Ordering::Relaxed);
            std::future::pending::<()>().await;
        };
        let run = lane.run(guest, &busy);
        // The guest moves to the lane on the first poll and never finishes; give up on it.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(1), run)
                .await
                .is_err()
        );
        assert!(dropped_rx.await.is_err(), "the guest was dropped");
    }
}
