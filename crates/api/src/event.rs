//! Events: notable things that happened to an object, for `describe` and `get events`.

use crate::{ObjectMeta, ObjectRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether an event is routine or needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// Routine progress.
    Normal,
    /// Something failed or needs the user's attention.
    Warning,
}

/// One event about one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Always `shoal/v1alpha1`.
    pub api_version: String,
    /// Always `Event`.
    pub kind: String,
    /// The event's own identity; its name is unique and sorts by time.
    pub metadata: ObjectMeta,
    /// The object the event is about.
    pub involved_object: ObjectRef,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// CamelCase reason, e.g. `CompileFailed`.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// Who reported it, e.g. `node/local`.
    pub source: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
}
