//! Object metadata shared by every kind, and name validation.

use crate::InvalidValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The namespace an object lands in when its manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Identity and bookkeeping of an object; `name` and `labels` are the user's, the rest the system's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// DNS-1123 label, unique per kind and namespace.
    pub name: String,
    /// DNS-1123 label; `default` when omitted.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Free-form labels for selection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Store revision of the last write; the basis of compare-and-swap updates.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resource_version: u64,
    /// Incremented by the server on every change of `spec`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
    /// When the server first stored the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// Set by the server when it creates an App: tells it apart from an earlier or later
    /// App of the same name (whose data a node must not hand it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl ObjectMeta {
    /// Metadata for a new object called `name` in the default namespace.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: default_namespace(),
            labels: BTreeMap::new(),
            resource_version: 0,
            generation: 0,
            creation_timestamp: None,
            uid: None,
        }
    }
}

/// Checks that `name` is a DNS-1123 label (what Kubernetes requires of most names).
///
/// # Errors
/// A sentence saying what is wrong, suitable after `metadata.name: `.
pub fn validate_dns_label(name: &str) -> Result<(), InvalidValue> {
    dns_label(name).map_err(InvalidValue::from)
}

fn dns_label(name: &str) -> Result<(), String> {
    let hint = "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    if name.is_empty() {
        return Err(format!("must not be empty; {hint}"));
    }
    if name.len() > 63 {
        return Err(format!(
            "'{name}' is {} characters long; {hint}",
            name.len()
        ));
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !name.starts_with('-') && !name.ends_with('-');
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err(format!("'{name}' is not a DNS-1123 label; {hint}"))
    }
}

/// A `kind/name` reference used in messages and events, e.g. `app/hello`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Lowercase kind, e.g. `app`.
    pub kind: String,
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
}

impl ObjectRef {
    /// `kind/name` in `namespace`.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace == DEFAULT_NAMESPACE {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(
                f,
                "{}/{} (namespace {})",
                self.kind, self.name, self.namespace
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "hello", "hello-world", "a1", "1a"] {
            assert_eq!(validate_dns_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Hello", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(validate_dns_label(bad).is_err(), "{bad}");
        }
    }
}
