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
    /// Why, in one CamelCase word, e.g. `CompileFailed`.
    pub reason: EventReason,
    /// Human-readable explanation.
    pub message: String,
    /// Who reported it, e.g. `node/local`.
    pub source: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident: $type_:ident,)*) => {
        /// Every reason an event can have, each routine (`Normal`) or not (`Warning`). Stored
        /// and shown as its CamelCase name; a name this build does not know (from a newer
        /// build) reads as [`EventReason::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum EventReason {
            $($(#[$doc])* $name,)*
            /// A reason this build does not know.
            Other(String),
        }

        impl EventReason {
            /// The reason's name, as users read it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$name => stringify!($name),)*
                    Self::Other(name) => name,
                }
            }

            /// Whether it is routine or needs attention.
            pub fn type_(&self) -> EventType {
                match self {
                    $(Self::$name => EventType::$type_,)*
                    Self::Other(_) => EventType::Normal,
                }
            }

            /// The reason called `name`.
            pub fn parse(name: &str) -> Self {
                match name {
                    $(stringify!($name) => Self::$name,)*
                    other => Self::Other(other.to_string()),
                }
            }
        }
    };
}

reasons! {
    /// An object was created (server); a job run was created (node).
    Created: Normal,
    /// An object's spec changed: a new revision or generation.
    Updated: Normal,
    /// An app's earlier revision was applied again.
    RolledBack: Normal,
    /// A node compiled a component.
    Compiled: Normal,
    /// A component does not compile.
    CompileFailed: Warning,
    /// A generation cannot be served, or a job run failed for good.
    Failed: Warning,
    /// A new generation did not answer its health check.
    HealthCheckFailed: Warning,
    /// A generation serves on a node.
    Serving: Normal,
    /// An idle app released its component.
    ScaledToZero: Normal,
    /// A request loaded an idle app's component again.
    Activated: Normal,
    /// The cluster placed an app on nodes.
    Placed: Normal,
    /// No node can hold an app.
    Unschedulable: Warning,
    /// A node's heartbeats arrive.
    NodeReady: Normal,
    /// A node's heartbeats stopped.
    NodeNotReady: Warning,
    /// A job attempt failed; a retry may follow.
    AttemptFailed: Warning,
    /// A job attempt was cut short by its node stopping.
    Interrupted: Warning,
    /// A job run succeeded.
    Succeeded: Normal,
    /// A scheduled job run was skipped (its concurrency policy forbids overlap).
    Skipped: Normal,
}

impl std::fmt::Display for EventReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for EventReason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for EventReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_the_words_users_know() {
        assert_eq!(
            EventReason::HealthCheckFailed.to_string(),
            "HealthCheckFailed"
        );
        assert_eq!(
            EventReason::parse("ScaledToZero"),
            EventReason::ScaledToZero
        );
        assert_eq!(EventReason::Unschedulable.type_(), EventType::Warning);
        assert_eq!(
            EventReason::parse("FromTheFuture"),
            EventReason::Other("FromTheFuture".into())
        );
        let json = serde_json::to_string(&EventReason::Skipped).unwrap();
        assert_eq!(json, "\"Skipped\"");
    }
}
