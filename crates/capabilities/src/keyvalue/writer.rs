//! The node's one key-value writer: a thread of its own that takes every app's writes off the
//! threads that run guests, and commits them in groups — the writes waiting when a commit
//! starts share its transaction and its fsync. A write that is refused (its app's quota, a
//! bad value) changes nothing and fails alone; one the store itself fails fails its group.
//! A write's caller awaits its result: a guest waiting on a commit holds no ingress thread.

use super::error::KvError;
use redb::{Database, WriteTransaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// A write's commit, to await: the checks are made, the bytes are the write's own.
pub(crate) type Commit<R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<R, KvError>> + Send>>;

/// Most writes one transaction commits.
const MAX_GROUP: usize = 256;

/// Why a write did not happen.
pub(super) enum Failure {
    /// Refused before it wrote anything: it fails alone.
    Refused(KvError),
    /// The store failed while it wrote: the transaction holds part of it, so its group fails.
    Store(KvError),
}

/// What a write left for after its group's commit: whether it broke the transaction, and how
/// to tell its caller (given the commit's error, if any).
struct Pending {
    broken: bool,
    finish: Finish,
}

/// Tells a write's caller its result, given its group commit's error, if any.
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

/// A write, given its group's transaction (or why there is none).
type Job = Box<dyn FnOnce(Result<&WriteTransaction, &str>) -> Pending + Send>;

/// The writer of one key-value file.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer of `db`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub(super) fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        let thread = std::thread::Builder::new()
            .name("shoal-kv-writer".into())
            .spawn(move || run(&db, &queue, &counted))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            commits,
        })
    }

    /// Queues `f` to run in a write transaction, as part of the next group; the future is its
    /// result once that group is committed (durably: the commit fsyncs).
    pub(super) fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, Failure> + Send + 'static,
    ) -> Commit<R> {
        let stopped = || KvError::Other("the node's key-value writer has stopped".into());
        let (send, done) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let unwritable = |e: &str| {
                Failure::Store(KvError::Other(format!(
                    "the key-value file cannot be written: {e}"
                )))
            };
            match tx.map_err(unwritable).and_then(f) {
                Ok(r) => Pending {
                    broken: false,
                    finish: Box::new(move |failed| {
                        let _ = send.send(match failed {
                            None => Ok(r),
                            Some(e) => Err(KvError::Other(format!(
                                "the key-value write was not committed: {e}"
                            ))),
                        });
                    }),
                },
                Err(Failure::Refused(e)) => Pending {
                    broken: false,
                    finish: Box::new(move |_| {
                        let _ = send.send(Err(e));
                    }),
                },
                Err(Failure::Store(e)) => Pending {
                    broken: true,
                    finish: Box::new(move |_| {
                        let _ = send.send(Err(e));
                    }),
                },
            }
        });
        let queued = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        Box::pin(async move {
            if !queued {
                return Err(stopped());
            }
            // The writer dropped the write unanswered: it panicked (and said so in the log).
            done.await.unwrap_or_else(|_| {
                Err(KvError::Other(
                    "the key-value write failed in the node's writer; see the node's log".into(),
                ))
            })
        })
    }

    /// Transactions committed so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    /// Finishes the writes already queued, then stops (so the file is closed when this returns).
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer's loop: a group is every write waiting (up to [`MAX_GROUP`]) when the last
/// commit ended.
fn run(db: &Database, queue: &mpsc::Receiver<Job>, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let group: Vec<Job> = std::iter::once(first)
            .chain(queue.try_iter().take(MAX_GROUP - 1))
            .collect();
        let tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let e = e.to_string();
                tracing::warn!("key-value: cannot begin a write: {e}");
                for job in group {
                    (job(Err(&e)).finish)(None);
                }
                continue;
            }
        };
        // A write that panics (a bug, or a damaged file) fails its group, not the writer.
        let mut panicked = false;
        let pending: Vec<Pending> = group
            .into_iter()
            .filter_map(|job| {
                let run = std::panic::AssertUnwindSafe(|| job(Ok(&tx)));
                std::panic::catch_unwind(run)
                    .map_err(|_| {
                        tracing::error!("key-value: a write panicked; its group is not committed");
                        panicked = true;
                    })
                    .ok()
            })
            .collect();
        let failed = if panicked || pending.iter().any(|p| p.broken) {
            let _ = tx.abort();
            Some("another write of its group failed in the store; retry".to_string())
        } else {
            match tx.commit() {
                Ok(()) => {
                    commits.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        };
        if let Some(e) = &failed {
            tracing::warn!("key-value: a group of writes failed: {e}");
        }
        for p in pending {
            (p.finish)(failed.as_deref());
        }
    }
}
