//! Feeding a controller: a full list of one kind, then its changes; a re-list whenever the
//! watch breaks (including when it fell behind the store's compaction).

use shoal_store::{ObjectKey, Objects, Resource, WatchEvent};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a controller hears about objects of one kind.
pub(crate) enum Change<T> {
    /// Every object, after a (re-)list: anything not in it is gone.
    Resync(Vec<T>),
    /// An object was created or changed.
    Put(T),
    /// An object was deleted.
    Delete(ObjectKey),
}

/// Sends `wrap(change)` for every change of objects of kind `T` until `shutdown` or until
/// the receiver is gone.
pub(crate) async fn watch<T, M>(
    objects: Objects,
    tx: mpsc::Sender<M>,
    wrap: fn(Change<T>) -> M,
    shutdown: CancellationToken,
) where
    T: Resource,
{
    let kind = T::PREFIX;
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let (items, revision) = match objects.list::<T>(None).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cannot list {kind}, retrying in {backoff:?}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if tx.send(wrap(Change::Resync(items))).await.is_err() {
            return;
        }
        let mut watch = match objects.watch::<T>(revision).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("cannot watch {kind}: {e}; re-listing");
                continue;
            }
        };
        while let Some(event) = watch.next().await {
            let change = match event {
                Ok(WatchEvent::Put(kv)) => match Objects::decode::<T>(&kv) {
                    Ok(item) => Change::Put(item),
                    Err(e) => {
                        tracing::warn!("skipping undecodable object: {e}");
                        continue;
                    }
                },
                Ok(WatchEvent::Delete { key, .. }) => match T::parse_key(&key) {
                    Some(key) => Change::Delete(key),
                    None => continue,
                },
                Err(e) => {
                    tracing::info!("{kind} watch ended ({e}); re-listing");
                    break;
                }
            };
            if tx.send(wrap(change)).await.is_err() {
                return;
            }
        }
    }
}
