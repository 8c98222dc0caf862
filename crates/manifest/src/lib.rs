//! YAML manifests — and Spin's `spin.toml` (`spin`) — to Shoal API objects.
//!
//! Parsing is strict: unknown fields, missing fields, bad quantities and invalid names are errors
//! that name the file, the object, the field path and the line, and say what to write instead.
//! This crate does no IO: callers hand it text and a name to use in messages.

pub mod spin;
mod validate;

pub use shoal_api::FieldError;
pub use validate::{validate_app, validate_job};

use serde::de::DeserializeOwned;
use shoal_api::{API_VERSION, App, DEFAULT_NAMESPACE, Job, Namespace};

/// Any object a manifest can hold.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a manifest holds a handful of objects, parsed once; boxing buys nothing"
)]
pub enum Object {
    /// `kind: App`.
    App(App),
    /// `kind: Job`.
    Job(Job),
    /// `kind: Namespace`.
    Namespace(Namespace),
}

impl Object {
    /// `kind/name`, as kubectl prints it.
    pub fn display_ref(&self) -> String {
        match self {
            Object::App(app) => format!("app/{}", app.metadata.name),
            Object::Job(job) => format!("job/{}", job.metadata.name),
            Object::Namespace(ns) => format!("namespace/{}", ns.metadata.name),
        }
    }
}

/// A manifest that cannot be used, with everything a user needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ManifestError {
    /// The file (or `-` for stdin) the text came from.
    pub source_name: String,
    /// Object, field and what to do.
    pub message: String,
}

/// Parses every YAML document in `text` into objects and validates each.
///
/// # Errors
/// The first problem found, naming `source_name`, the object, the field path and the line. No
/// object is returned when any document is bad, so callers never apply half a file.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Object>, ManifestError> {
    let err = |message: String| ManifestError {
        source_name: source_name.to_string(),
        message,
    };
    let mut values = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| err(format!("invalid YAML: {e}")))?;
        values.push(value);
    }
    let mut objects = Vec::new();
    for (doc, value) in serde_yaml::Deserializer::from_str(text).zip(values) {
        if value.is_null() {
            continue;
        }
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string);
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string);
        let what = |kind: &str| match &name {
            Some(n) => format!("{}/{n}", kind.to_lowercase()),
            None => format!("{} without metadata.name", kind.to_lowercase()),
        };
        match value.get("apiVersion").and_then(|v| v.as_str()) {
            Some(API_VERSION) => {}
            Some(other) => {
                return Err(err(format!(
                    "{}: apiVersion: '{other}' is not supported; use {API_VERSION}",
                    what(kind.as_deref().unwrap_or("object"))
                )));
            }
            None => {
                return Err(err(format!(
                    "{}: apiVersion: missing; add apiVersion: {API_VERSION}",
                    what(kind.as_deref().unwrap_or("object"))
                )));
            }
        }
        let object = match kind.as_deref() {
            Some("App") => {
                let app: App = typed(doc).map_err(|e| err(format!("{}: {e}", what("App"))))?;
                validate_app(&app).map_err(|e| err(format!("{}: {e}", what("App"))))?;
                Object::App(app)
            }
            Some("Job") => {
                let job: Job = typed(doc).map_err(|e| err(format!("{}: {e}", what("Job"))))?;
                validate_job(&job).map_err(|e| err(format!("{}: {e}", what("Job"))))?;
                Object::Job(job)
            }
            Some("Namespace") => {
                let ns: Namespace =
                    typed(doc).map_err(|e| err(format!("{}: {e}", what("Namespace"))))?;
                validate_namespace(&ns).map_err(|e| err(format!("{}: {e}", what("Namespace"))))?;
                Object::Namespace(ns)
            }
            Some(other) => {
                return Err(err(format!(
                    "{}: kind: '{other}' is not a kind this version of Shoal knows; use App, Job or Namespace",
                    what(other)
                )));
            }
            None => {
                return Err(err(format!(
                    "{}: kind: missing; add kind: App, kind: Job or kind: Namespace",
                    what("object")
                )));
            }
        };
        objects.push(object);
    }
    Ok(objects)
}

/// A namespace's name is a DNS label, and it is in no namespace itself.
fn validate_namespace(ns: &Namespace) -> Result<(), String> {
    shoal_api::validate_dns_label(&ns.metadata.name).map_err(|e| format!("metadata.name: {e}"))?;
    if ns.metadata.namespace != DEFAULT_NAMESPACE {
        return Err("metadata.namespace: a namespace is in no namespace; leave it out".into());
    }
    Ok(())
}

/// Deserializes one document, reporting the failing field as a dotted path.
fn typed<T: DeserializeOwned>(doc: serde_yaml::Deserializer<'_>) -> Result<T, String> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde_yaml prefixes some messages with the enclosing path; ours is the precise one.
        let inner = match inner.split_once(": ") {
            Some((prefix, rest)) if path.starts_with(prefix) => rest.to_string(),
            _ => inner,
        };
        if path == "." || path.is_empty() {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

mod props;
#[cfg(test)]
mod tests;
