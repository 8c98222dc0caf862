//! Typed access to API objects stored as JSON, by kind (see [`Resource`]).

use crate::resource::{self, HasStatus, ObjectKey, Resource};
use crate::{KeyValue, Precondition, Store, StoreError, Watch};
use shoal_api::Event;
use std::sync::Arc;

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
    ///
    /// # Errors
    /// The value is not a `T`.
    pub fn decode<T: Resource>(kv: &KeyValue) -> Result<T, StoreError> {
        let mut obj: T = serde_json::from_slice(&kv.value).map_err(|e| StoreError::Corrupt {
            key: kv.key.clone(),
            message: e.to_string(),
        })?;
        obj.metadata_mut().resource_version = kv.mod_revision;
        Ok(obj)
    }

    /// Object `name` of kind `T` in `namespace`.
    ///
    /// # Errors
    /// The store is unavailable or the stored value is corrupt.
    pub async fn get<T: Resource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_at(&resource::key::<T>(namespace, name)).await
    }

    async fn get_at<T: Resource>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.store
            .get(key)
            .await?
            .map(|kv| Self::decode(&kv))
            .transpose()
    }

    /// Every object of kind `T` in `namespace` (every namespace: `None`), and the revision
    /// they were read at. An object that does not decode is skipped with a warning.
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn list<T: Resource>(
        &self,
        namespace: Option<&str>,
    ) -> Result<(Vec<T>, u64), StoreError> {
        self.list_at(&resource::prefix::<T>(namespace)).await
    }

    async fn list_at<T: Resource>(&self, prefix: &str) -> Result<(Vec<T>, u64), StoreError> {
        let (kvs, rev) = self.store.list(prefix).await?;
        // One undecodable object is reported and skipped: it never hides the rest of its kind.
        let objs = kvs
            .iter()
            .filter_map(|kv| match Self::decode(kv) {
                Ok(obj) => Some(obj),
                Err(e) => {
                    tracing::warn!("skipping an object that does not decode: {e}");
                    None
                }
            })
            .collect();
        Ok((objs, rev))
    }

    /// Changes to objects of kind `T` after revision `after`.
    ///
    /// # Errors
    /// The store is unavailable, or `after` is compacted away.
    pub async fn watch<T: Resource>(&self, after: u64) -> Result<Watch, StoreError> {
        self.store.watch(T::PREFIX, after).await
    }

    /// Writes `obj` at its key under `pre`; returns it with its new resourceVersion.
    ///
    /// # Errors
    /// `pre` does not hold, or the store is unavailable.
    pub async fn put<T: Resource>(&self, mut obj: T, pre: Precondition) -> Result<T, StoreError> {
        // The revision is the store's; never persist a stale copy of it.
        obj.metadata_mut().resource_version = 0;
        let bytes = serde_json::to_vec(&obj).expect("API objects always serialize");
        let rev = self.store.put(&obj.key(), bytes, pre).await?;
        obj.metadata_mut().resource_version = rev;
        Ok(obj)
    }

    /// Deletes object `name` of kind `T` in `namespace` if `pre` holds; the revision of the
    /// delete, or `None` if there was no such object.
    ///
    /// # Errors
    /// `pre` does not hold, or the store is unavailable.
    pub async fn delete<T: Resource>(
        &self,
        namespace: &str,
        name: &str,
        pre: Precondition,
    ) -> Result<Option<u64>, StoreError> {
        self.store
            .delete(&resource::key::<T>(namespace, name), pre)
            .await
    }

    /// Read-modify-write of object `name` by compare-and-swap, retried on conflicts:
    /// `change` edits the current object and returns false to leave it as it is.
    ///
    /// Returns the object as stored afterwards (`None` if there is none).
    ///
    /// # Errors
    /// The store is unavailable, or other writers won the race ten times in a row.
    pub async fn update<T: Resource>(
        &self,
        namespace: &str,
        name: &str,
        mut change: impl FnMut(&mut T) -> bool,
    ) -> Result<Option<T>, StoreError> {
        let key = resource::key::<T>(namespace, name);
        let mut attempts = 0;
        loop {
            let Some(kv) = self.store.get(&key).await? else {
                return Ok(None);
            };
            let current: T = Self::decode(&kv)?;
            let mut next = current.clone();
            if !change(&mut next) {
                return Ok(Some(current));
            }
            match self
                .put(next, Precondition::ModRevision(kv.mod_revision))
                .await
            {
                Err(StoreError::Conflict { .. }) if attempts < 10 => attempts += 1,
                other => return other.map(Some),
            }
        }
    }

    /// The one way the system writes what it observed: by compare-and-swap, `status` gives
    /// the object's next status from the object as stored (`None`: leave it). Nothing but the
    /// status can change, and an unchanged status is not written.
    ///
    /// # Errors
    /// See [`Objects::update`].
    pub async fn write_status<T: HasStatus>(
        &self,
        key: &ObjectKey,
        mut status: impl FnMut(&T) -> Option<T::Status>,
    ) -> Result<Option<T>, StoreError> {
        self.update::<T>(&key.namespace, &key.name, |obj| {
            match status(obj).filter(|next| next != obj.status()) {
                Some(next) => {
                    *obj.status_mut() = next;
                    true
                }
                None => false,
            }
        })
        .await
    }

    /// The revisions of App `app`, oldest first.
    ///
    /// # Errors
    /// The store is unavailable or a stored value is corrupt.
    pub async fn revisions(
        &self,
        namespace: &str,
        app: &str,
    ) -> Result<Vec<shoal_api::Revision>, StoreError> {
        Ok(self
            .list_at(&resource::revisions_of(namespace, app))
            .await?
            .0)
    }

    /// The keys of App `app`'s revisions, oldest first.
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn revision_keys(
        &self,
        namespace: &str,
        app: &str,
    ) -> Result<Vec<String>, StoreError> {
        let (kvs, _) = self
            .store
            .list(&resource::revisions_of(namespace, app))
            .await?;
        Ok(kvs.into_iter().map(|kv| kv.key).collect())
    }
}

/// Events kept per object and writer (`source`); older ones are pruned when a new one is
/// recorded.
pub const EVENTS_PER_OBJECT: usize = 50;

/// The longest event message, in bytes; a longer one is cut (and marked) when recorded.
pub const MAX_EVENT_MESSAGE: usize = 4096;

/// `message` within [`MAX_EVENT_MESSAGE`] bytes, cut at a character boundary and marked.
fn bounded_message(message: &str) -> String {
    if message.len() <= MAX_EVENT_MESSAGE {
        return message.to_string();
    }
    let mark = " … (cut)";
    let mut end = MAX_EVENT_MESSAGE - mark.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{mark}", &message[..end])
}

/// The events of `source` among `events` (about one object, oldest first) beyond the newest
/// [`EVENTS_PER_OBJECT`]: those to delete.
pub fn surplus_events<'a>(events: &'a [KeyValue], source: &str) -> Vec<&'a KeyValue> {
    events
        .iter()
        .rev()
        .filter(|kv| serde_json::from_slice::<Event>(&kv.value).is_ok_and(|e| e.source == source))
        .skip(EVENTS_PER_OBJECT)
        .collect()
}

impl Objects {
    /// Records an event about `about`, keeping at most [`EVENTS_PER_OBJECT`] of `source`'s
    /// per object (so no writer's events push out another's).
    ///
    /// # Errors
    /// The store is unavailable. Callers usually log and continue: events are advisory.
    pub async fn record_event(
        &self,
        about: &shoal_api::ObjectRef,
        reason: shoal_api::EventReason,
        message: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let stamp = now.timestamp_nanos_opt().unwrap_or_default();
        let prefix = resource::events_about(about);
        let name = format!("{}.{}.{stamp:020}", about.kind, about.name);
        let mut metadata = shoal_api::ObjectMeta::named(&name);
        metadata.namespace = about.namespace.clone();
        metadata.creation_timestamp = Some(now);
        let event = Event {
            api_version: shoal_api::API_VERSION.into(),
            kind: "Event".into(),
            metadata,
            involved_object: about.clone(),
            type_: reason.type_(),
            reason,
            message: bounded_message(message),
            source: source.into(),
            timestamp: now,
        };
        self.put(event, Precondition::None).await?;
        let (old, _) = self.store.list(&prefix).await?;
        for kv in surplus_events(&old, source) {
            self.store.delete(&kv.key, Precondition::None).await?;
        }
        Ok(())
    }

    /// Events about `about`, oldest first.
    ///
    /// # Errors
    /// The store is unavailable or a stored value is corrupt.
    pub async fn events_for(&self, about: &shoal_api::ObjectRef) -> Result<Vec<Event>, StoreError> {
        Ok(self.list_at(&resource::events_about(about)).await?.0)
    }

    /// Every event in `namespace`, grouped by object.
    ///
    /// # Errors
    /// The store is unavailable or a stored value is corrupt.
    pub async fn events_in(&self, namespace: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self.list::<Event>(Some(namespace)).await?.0)
    }

    /// Deletes every event about `about`.
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn delete_events_for(&self, about: &shoal_api::ObjectRef) -> Result<(), StoreError> {
        for kv in self.store.list(&resource::events_about(about)).await?.0 {
            self.store.delete(&kv.key, Precondition::None).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_messages_are_cut_within_the_limit_at_a_character() {
        assert_eq!(bounded_message("short"), "short");
        let long = "é".repeat(MAX_EVENT_MESSAGE);
        let cut = bounded_message(&long);
        assert!(cut.len() <= MAX_EVENT_MESSAGE, "{}", cut.len());
        assert!(cut.ends_with(" … (cut)"));
        assert!(cut.starts_with("éé"));
    }
}
