//! Where ended spans wait for the exporter: already encoded, in a buffer of the thread that
//! ended them.
//!
//! A request ends several spans on the threads that serve requests, so what a span's end
//! costs is what tracing every request costs. Here it is an append to a buffer of its own
//! thread, under a lock no other thread takes but the exporter, a few times a second. A
//! buffer shared by the threads made every end contend for one cache line, and a span's
//! fields moved to the exporter's thread to be freed there (glibc's cross-thread frees); a
//! channel woke the exporter for every span. The exporter is woken when a buffer holds a
//! batch, or finds the buffers on its own round.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// Bytes of encoded spans one thread keeps waiting at most (about 4,000 spans); past it a
/// span is dropped.
const THREAD_BYTES: usize = 1 << 20;
/// Bytes of waiting spans in one thread's buffer that wake the exporter.
pub(crate) const BATCH_BYTES: usize = 256 << 10;

/// The encoded spans (OTLP `ScopeSpans.spans` fields, each with its tag and length) one
/// thread ended, and how many.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) count: usize,
}

#[derive(Debug, Default)]
struct Shard(Mutex<Encoded>);

impl Shard {
    /// Appends the span whose fields are `span`, unless the buffer is full; whether the
    /// buffer has just reached a batch, or `None` when the span was dropped.
    fn push(&self, span: &[u8]) -> Option<bool> {
        let mut waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let before = waiting.bytes.len();
        // The span's tag (one byte) and length (a varint, ten bytes at most) go before it.
        if before + span.len() + 11 > THREAD_BYTES {
            return None;
        }
        crate::proto::span_field(&mut waiting.bytes, span);
        waiting.count += 1;
        Some(before < BATCH_BYTES && waiting.bytes.len() >= BATCH_BYTES)
    }

    fn take(&self) -> Encoded {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

// Each queue's buffer of this thread, by the queue's id (a process has one queue; tests
// make more).
thread_local! {
    static SHARDS: RefCell<Vec<(usize, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

/// The spans ended and not yet taken by the exporter.
#[derive(Debug)]
pub(crate) struct Queue {
    id: usize,
    /// Every thread's buffer; the first is for spans ended while a thread exits (its own
    /// buffer is gone by then).
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Woken when a buffer holds a batch.
    pub(crate) full: Notify,
    pub(crate) dropped: AtomicU64,
}

impl Default for Queue {
    fn default() -> Self {
        static IDS: AtomicUsize = AtomicUsize::new(0);
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(vec![Arc::default()]),
            full: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }
}

impl Queue {
    /// Queues the span whose encoded fields are `span`.
    pub(crate) fn push(&self, span: &[u8]) {
        let pushed = SHARDS
            .try_with(|local| {
                let mut local = local.borrow_mut();
                if let Some((_, shard)) = local.iter().find(|(id, _)| *id == self.id) {
                    return shard.push(span);
                }
                let shard = Arc::<Shard>::default();
                self.lock().push(shard.clone());
                let pushed = shard.push(span);
                local.push((self.id, shard));
                pushed
            })
            .unwrap_or_else(|_| self.lock()[0].push(span));
        match pushed {
            Some(true) => self.full.notify_one(),
            Some(false) => {}
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Everything waiting, a buffer per thread; forgets the buffers of threads that ended.
    pub(crate) fn take(&self) -> Vec<Encoded> {
        let mut shards = self.lock();
        let taken = shards
            .iter()
            .map(|s| s.take())
            .filter(|e| e.count > 0)
            .collect();
        let mut first = true;
        shards.retain(|s| std::mem::take(&mut first) || Arc::strong_count(s) > 1);
        taken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Shard>>> {
        self.shards.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_queues_into_its_own_buffer_and_an_ended_threads_is_forgotten() {
        let queue: &'static Queue = Box::leak(Box::default());
        queue.push(b"a");
        std::thread::spawn(|| {
            queue.push(b"bc");
            queue.push(b"d");
        })
        .join()
        .unwrap();
        let mut counts: Vec<_> = queue.take().iter().map(|e| e.count).collect();
        counts.sort_unstable();
        assert_eq!(counts, [1, 2]);
        assert_eq!(
            queue.lock().len(),
            2,
            "the fallback and this thread's buffer"
        );
        assert!(queue.take().is_empty());
    }

    #[test]
    fn a_full_buffer_drops_spans_and_counts_them() {
        let queue: &'static Queue = Box::leak(Box::default());
        let span = vec![0; 1000];
        let fit = THREAD_BYTES / (span.len() + 3);
        for _ in 0..fit + 10 {
            queue.push(&span);
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 10);
        assert_eq!(queue.take()[0].count, fit);
    }
}
