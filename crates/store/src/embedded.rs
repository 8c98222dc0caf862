//! The embedded store behind `shoal up`: one redb file, history kept in memory for watches.

use crate::{KeyValue, Precondition, Store, StoreError, Watch, WatchEvent};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

const OBJECTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
/// Changes kept in memory so a watch can resume from a recent revision.
const HISTORY: usize = 4096;

/// A durable single-process [`Store`] on a redb file.
///
/// # Guarantees
/// Every acknowledged write is fsynced before `put`/`delete` return. Watchers see changes in
/// revision order; one that falls more than [`HISTORY`] changes behind gets
/// [`StoreError::Compacted`] and must re-list, exactly as with etcd compaction.
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Serialises writers so that revisions, history and broadcasts agree on one order.
    log: Mutex<Log>,
    tx: broadcast::Sender<WatchEvent>,
}

struct Log {
    revision: u64,
    history: VecDeque<WatchEvent>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Embedded {
    /// Opens (or creates) the store file at `path`.
    ///
    /// # Errors
    /// The file cannot be opened, is locked by another process, or is not a store.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(unavailable)?;
        let revision = {
            tx.open_table(OBJECTS).map_err(unavailable)?;
            let meta = tx.open_table(META).map_err(unavailable)?;
            meta.get(REVISION)
                .map_err(unavailable)?
                .map_or(0, |g| g.value())
        };
        tx.commit().map_err(unavailable)?;
        let (btx, _) = broadcast::channel(HISTORY);
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                log: Mutex::new(Log {
                    revision,
                    history: VecDeque::new(),
                }),
                tx: btx,
            }),
        })
    }

    fn write(
        &self,
        key: &str,
        value: Option<Vec<u8>>,
        pre: Precondition,
    ) -> Result<Option<u64>, StoreError> {
        let mut log = self.inner.log.lock().expect("store log poisoned");
        let tx = self.inner.db.begin_write().map_err(unavailable)?;
        let revision = log.revision + 1;
        {
            let mut objects = tx.open_table(OBJECTS).map_err(unavailable)?;
            let current = objects.get(key).map_err(unavailable)?.map(|g| g.value().0);
            let ok = match pre {
                Precondition::None => true,
                Precondition::Absent => current.is_none(),
                Precondition::ModRevision(r) => current == Some(r),
            };
            if !ok {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                });
            }
            match &value {
                Some(v) => {
                    objects
                        .insert(key, (revision, v.as_slice()))
                        .map_err(unavailable)?;
                }
                None if current.is_none() => return Ok(None),
                None => {
                    objects.remove(key).map_err(unavailable)?;
                }
            }
            tx.open_table(META)
                .map_err(unavailable)?
                .insert(REVISION, revision)
                .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        log.revision = revision;
        let event = match value {
            Some(value) => WatchEvent::Put(KeyValue {
                key: key.to_string(),
                value,
                mod_revision: revision,
            }),
            None => WatchEvent::Delete {
                key: key.to_string(),
                revision,
            },
        };
        if log.history.len() == HISTORY {
            log.history.pop_front();
        }
        log.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.inner.tx.send(event);
        Ok(Some(revision))
    }

    fn read_get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let tx = self.inner.db.begin_read().map_err(unavailable)?;
        let objects = tx.open_table(OBJECTS).map_err(unavailable)?;
        Ok(objects.get(key).map_err(unavailable)?.map(|g| {
            let (mod_revision, value) = g.value();
            KeyValue {
                key: key.to_string(),
                value: value.to_vec(),
                mod_revision,
            }
        }))
    }

    fn read_list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError> {
        // Read the revision under the writer lock so it matches the snapshot.
        let (tx, revision) = {
            let log = self.inner.log.lock().expect("store log poisoned");
            (
                self.inner.db.begin_read().map_err(unavailable)?,
                log.revision,
            )
        };
        let objects = tx.open_table(OBJECTS).map_err(unavailable)?;
        let mut out = Vec::new();
        for entry in objects.range(prefix..).map_err(unavailable)? {
            let (k, v) = entry.map_err(unavailable)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            let (mod_revision, value) = v.value();
            out.push(KeyValue {
                key: key.to_string(),
                value: value.to_vec(),
                mod_revision,
            });
        }
        Ok((out, revision))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(unavailable)?
}

#[async_trait]
impl Store for Embedded {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(move || this.read_get(&key)).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(move || this.read_list(&prefix)).await
    }

    async fn put(&self, key: &str, value: Vec<u8>, pre: Precondition) -> Result<u64, StoreError> {
        let (this, key) = (self.clone(), key.to_string());
        let rev = blocking(move || this.write(&key, Some(value), pre)).await?;
        Ok(rev.expect("a put always writes"))
    }

    async fn delete(&self, key: &str, pre: Precondition) -> Result<Option<u64>, StoreError> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(move || this.write(&key, None, pre)).await
    }

    async fn watch(&self, prefix: &str, after: u64) -> Result<Watch, StoreError> {
        let (backlog, mut live) = {
            let log = self.inner.log.lock().expect("store log poisoned");
            let oldest_kept = log
                .history
                .front()
                .map_or(log.revision + 1, WatchEvent::revision);
            if after + 1 < oldest_kept && after < log.revision {
                return Err(StoreError::Compacted { requested: after });
            }
            let backlog: Vec<_> = log
                .history
                .iter()
                .filter(|e| e.revision() > after && e.key().starts_with(prefix))
                .cloned()
                .collect();
            (backlog, self.inner.tx.subscribe())
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            for event in backlog {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            loop {
                let item = match live.recv().await {
                    Ok(event) if event.key().starts_with(&prefix) && event.revision() > after => {
                        Ok(event)
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Err(StoreError::Compacted { requested: after })
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let fatal = item.is_err();
                if tx.send(item).await.is_err() || fatal {
                    return;
                }
            }
        });
        Ok(Watch::new(rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open() -> (tempfile::TempDir, Embedded) {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(&dir.path().join("state.redb")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn conforms() {
        let (_dir, s) = open().await;
        crate::conformance::cas_and_revisions(&s).await;
        let (_dir, s) = open().await;
        crate::conformance::watch_resumes_from_revision(&s).await;
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let rev = {
            let s = Embedded::open(&path).unwrap();
            s.put("k", b"v".to_vec(), Precondition::None).await.unwrap()
        };
        let s = Embedded::open(&path).unwrap();
        assert_eq!(s.get("k").await.unwrap().unwrap().mod_revision, rev);
        let next = s
            .put("k2", b"v".to_vec(), Precondition::None)
            .await
            .unwrap();
        assert_eq!(next, rev + 1, "revisions continue after a restart");
    }
}
