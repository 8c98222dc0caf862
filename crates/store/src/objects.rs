//! Typed access to API objects stored as JSON.

use crate::{KeyValue, Precondition, Store, StoreError};
use serde::{Serialize, de::DeserializeOwned};
use shoal_api::{App, Event, Job};
use std::sync::Arc;

/// The key of an App.
pub fn app_key(namespace: &str, name: &str) -> String {
    format!("apps/{namespace}/{name}")
}

/// The key of a Job.
pub fn job_key(namespace: &str, name: &str) -> String {
    format!("jobs/{namespace}/{name}")
}

/// The key of a Node.
pub fn node_key(name: &str) -> String {
    format!("nodes/{name}")
}

/// The key of an Event.
pub fn event_key(namespace: &str, name: &str) -> String {
    format!("events/{namespace}/{name}")
}

/// The key of revision `number` of App `name` (zero-padded, so a listing is in order).
pub fn revision_key(namespace: &str, name: &str, number: u64) -> String {
    format!("{}{number:020}", revisions_prefix(namespace, name))
}

/// The prefix of every revision of App `name`.
pub fn revisions_prefix(namespace: &str, name: &str) -> String {
    format!("revisions/{namespace}/{name}/")
}

/// Objects that carry a `metadata.resourceVersion`.
pub trait Versioned: Serialize + DeserializeOwned {
    /// Sets `metadata.resourceVersion`.
    fn set_resource_version(&mut self, rv: u64);
}

impl Versioned for App {
    fn set_resource_version(&mut self, rv: u64) {
        self.metadata.resource_version = rv;
    }
}

impl Versioned for Job {
    fn set_resource_version(&mut self, rv: u64) {
        self.metadata.resource_version = rv;
    }
}

impl Versioned for shoal_api::Node {
    fn set_resource_version(&mut self, rv: u64) {
        self.metadata.resource_version = rv;
    }
}

impl Versioned for shoal_api::Revision {
    fn set_resource_version(&mut self, rv: u64) {
        self.metadata.resource_version = rv;
    }
}

impl Versioned for Event {
    fn set_resource_version(&mut self, rv: u64) {
        self.metadata.resource_version = rv;
    }
}

/// JSON objects over any [`Store`].
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn Store>,
}

impl Objects {
    /// Typed access over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The raw store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Decodes a stored value, stamping its resourceVersion.
    pub fn decode<T: Versioned>(kv: &KeyValue) -> Result<T, StoreError> {
        let mut obj: T = serde_json::from_slice(&kv.value).map_err(|e| StoreError::Corrupt {
            key: kv.key.clone(),
            message: e.to_string(),
        })?;
        obj.set_resource_version(kv.mod_revision);
        Ok(obj)
    }

    /// The object at `key`.
    pub async fn get<T: Versioned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.store
            .get(key)
            .await?
            .map(|kv| Self::decode(&kv))
            .transpose()
    }

    /// Every object under `prefix` and the revision they were read at.
    pub async fn list<T: Versioned>(&self, prefix: &str) -> Result<(Vec<T>, u64), StoreError> {
        let (kvs, rev) = self.store.list(prefix).await?;
        let objs = kvs.iter().map(Self::decode).collect::<Result<_, _>>()?;
        Ok((objs, rev))
    }

    /// Writes `obj` at `key` under `pre`; returns it with its new resourceVersion.
    pub async fn put<T: Versioned>(
        &self,
        key: &str,
        mut obj: T,
        pre: Precondition,
    ) -> Result<T, StoreError> {
        // The revision is the store's; never persist a stale copy of it.
        obj.set_resource_version(0);
        let bytes = serde_json::to_vec(&obj).expect("API objects always serialize");
        let rev = self.store.put(key, bytes, pre).await?;
        obj.set_resource_version(rev);
        Ok(obj)
    }
}

impl Objects {
    /// Read-modify-write of the object at `key` by compare-and-swap, retried on conflicts:
    /// `change` edits the current object and returns false to leave it as it is.
    ///
    /// Returns the object as stored afterwards (`None` if there is none).
    ///
    /// # Errors
    /// The store is unavailable, or other writers won the race ten times in a row.
    pub async fn update<T: Versioned + Clone>(
        &self,
        key: &str,
        mut change: impl FnMut(&mut T) -> bool,
    ) -> Result<Option<T>, StoreError> {
        let mut attempts = 0;
        loop {
            let Some(kv) = self.store.get(key).await? else {
                return Ok(None);
            };
            let current: T = Self::decode(&kv)?;
            let mut next = current.clone();
            if !change(&mut next) {
                return Ok(Some(current));
            }
            let pre = Precondition::ModRevision(kv.mod_revision);
            match self.put(key, next, pre).await {
                Err(StoreError::Conflict { .. }) if attempts < 10 => attempts += 1,
                other => return other.map(Some),
            }
        }
    }
}

/// Events kept per object; older ones are pruned when a new one is recorded.
pub const EVENTS_PER_OBJECT: usize = 50;

impl Objects {
    /// Records an event about `about`, keeping at most [`EVENTS_PER_OBJECT`] per object.
    ///
    /// # Errors
    /// The store is unavailable. Callers usually log and continue: events are advisory.
    pub async fn record_event(
        &self,
        about: &shoal_api::ObjectRef,
        type_: shoal_api::EventType,
        reason: &str,
        message: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let stamp = now.timestamp_nanos_opt().unwrap_or_default();
        let prefix = format!("{}.{}.", about.kind, about.name);
        let name = format!("{prefix}{stamp:020}");
        let mut metadata = shoal_api::ObjectMeta::named(&name);
        metadata.namespace = about.namespace.clone();
        metadata.creation_timestamp = Some(now);
        let event = Event {
            api_version: shoal_api::API_VERSION.into(),
            kind: "Event".into(),
            metadata,
            involved_object: about.clone(),
            type_,
            reason: reason.into(),
            message: message.into(),
            source: source.into(),
            timestamp: now,
        };
        self.put(
            &event_key(&about.namespace, &name),
            event,
            Precondition::None,
        )
        .await?;
        let (old, _) = self
            .store
            .list(&event_key(&about.namespace, &prefix))
            .await?;
        for kv in old.iter().rev().skip(EVENTS_PER_OBJECT) {
            self.store.delete(&kv.key, Precondition::None).await?;
        }
        Ok(())
    }

    /// Events about `about`, oldest first.
    pub async fn events_for(&self, about: &shoal_api::ObjectRef) -> Result<Vec<Event>, StoreError> {
        let prefix = event_key(&about.namespace, &format!("{}.{}.", about.kind, about.name));
        Ok(self.list(&prefix).await?.0)
    }

    /// Every event in `namespace`, grouped by object.
    pub async fn events_in(&self, namespace: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self.list(&event_key(namespace, "")).await?.0)
    }

    /// Deletes every event about `about`.
    pub async fn delete_events_for(&self, about: &shoal_api::ObjectRef) -> Result<(), StoreError> {
        let prefix = event_key(&about.namespace, &format!("{}.{}.", about.kind, about.name));
        for kv in self.store.list(&prefix).await?.0 {
            self.store.delete(&kv.key, Precondition::None).await?;
        }
        Ok(())
    }
}
