//! Shoal's state store: the one place objects are persisted.
//!
//! The [`Store`] trait is shaped after etcd, the store a cluster uses: a flat key space, a global
//! revision that increases on every write, compare-and-swap on a key's modification revision, and
//! watches that resume from a revision. [`Embedded`] implements it on a redb file for `shoal up`;
//! [`Etcd`] on etcd for a cluster (`shoal server --store etcd://…`).
//! [`Objects`] is the typed layer on top: JSON objects whose `metadata.resourceVersion` is the
//! key's modification revision, each kind a [`Resource`] that alone knows its keys.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod embedded;
mod etcd;
pub mod http;
mod objects;
pub mod resource;

pub use embedded::Embedded;
pub use etcd::Etcd;
pub use objects::{EVENTS_PER_OBJECT, MAX_EVENT_MESSAGE, Objects, surplus_events};
pub use resource::{HasStatus, ObjectKey, Resource, raw};

use async_trait::async_trait;

/// A stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Full key, e.g. `apps/default/hello`.
    pub key: String,
    /// Opaque bytes (JSON for objects).
    pub value: Vec<u8>,
    /// Revision of the write that last changed this key.
    pub mod_revision: u64,
}

/// A condition a write must meet; otherwise it fails with [`StoreError::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Write unconditionally.
    None,
    /// The key must not exist (create).
    Absent,
    /// The key must exist with exactly this modification revision (update).
    ModRevision(u64),
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or updated.
    Put(KeyValue),
    /// The key was deleted at `revision`.
    Delete {
        /// The deleted key.
        key: String,
        /// Revision of the delete.
        revision: u64,
    },
}

impl WatchEvent {
    /// The key this event is about.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision of the write that caused this event.
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The precondition did not hold; re-read and retry.
    #[error("conflict on {key}: it was changed concurrently; re-read and retry")]
    Conflict {
        /// The contested key.
        key: String,
    },
    /// A watch asked for history the store no longer keeps, or fell behind; re-list.
    #[error("history before revision {requested} is compacted; re-list and watch again")]
    Compacted {
        /// The revision the watch wanted to resume after.
        requested: u64,
    },
    /// The store itself failed (disk, corruption, connection).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("stored object {key} is corrupt: {message}")]
    Corrupt {
        /// The key holding the bad value.
        key: String,
        /// What failed to decode.
        message: String,
    },
}

/// A stream of changes under a prefix, in revision order.
pub struct Watch {
    rx: tokio::sync::mpsc::Receiver<Result<WatchEvent, StoreError>>,
}

impl Watch {
    /// Wraps a channel fed by a backend.
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<WatchEvent, StoreError>>) -> Self {
        Self { rx }
    }

    /// The next change; `None` when the store shut down. An error means: re-list, then watch again.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        self.rx.recv().await
    }
}

/// A key-value store with revisions, compare-and-swap and watches (etcd's model).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Every key under `prefix`, sorted, and the store revision they were read at.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, u64), StoreError>;
    /// Writes `value` if `pre` holds; returns the new revision.
    async fn put(&self, key: &str, value: Vec<u8>, pre: Precondition) -> Result<u64, StoreError>;
    /// Deletes `key` if `pre` holds; returns the revision, or `None` if the key did not exist.
    async fn delete(&self, key: &str, pre: Precondition) -> Result<Option<u64>, StoreError>;
    /// Changes under `prefix` with a revision greater than `after`.
    async fn watch(&self, prefix: &str, after: u64) -> Result<Watch, StoreError>;
}
