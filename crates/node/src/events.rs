//! The node's event recorder, shared by its controllers: every event it records names the
//! node as its source, and a warning also goes to the node's own log.

use shoal_api::{EventReason, EventType, ObjectRef};
use shoal_store::Objects;

/// Records events about objects, from `node/NAME`.
#[derive(Clone)]
pub(crate) struct Recorder {
    objects: Objects,
    source: String,
}

impl Recorder {
    /// A recorder for node `node`.
    pub(crate) fn new(objects: Objects, node: &str) -> Self {
        Self {
            objects,
            source: format!("node/{node}"),
        }
    }

    /// Records `reason` about `about`. Events are advisory: a store that cannot take one is
    /// logged, not retried.
    pub(crate) async fn record(&self, about: &ObjectRef, reason: EventReason, message: &str) {
        if reason.type_() == EventType::Warning {
            tracing::warn!("{about}: {message}");
        }
        if let Err(e) = self
            .objects
            .record_event(about, reason, message, &self.source)
            .await
        {
            tracing::warn!("{about}: cannot record event: {e}");
        }
    }
}
