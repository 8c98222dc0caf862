//! The epoch ticker: one thread that advances the engine's epoch every [`EPOCH_TICK`], so
//! that every guest is interrupted (charged, checked, made to yield) that often.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the epoch advances: how often a guest's CPU is charged and checked against its
/// limit, and the longest slice it runs before it yields its thread to other requests.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Keeps the epoch ticker running while anything that can run guest code is alive: the
/// `Runtime` and every loaded component hold it. Without ticks no guest is ever interrupted,
/// so the ticker must outlive the last in-flight request, not just the `Runtime`.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    /// Starts the ticker thread of `engines`.
    pub(crate) fn start(engines: &[wasmtime::Engine]) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engines, stopped) = (engines.to_vec(), stop.clone());
        std::thread::Builder::new()
            .name("shoal-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
