//! The key-value capability's spec: `spec.capabilities.keyvalue`, the buckets an app may open.

use crate::{FieldError, WorkloadSpec, fail};
use std::collections::HashSet;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "keyvalue";

/// The import names (prefixes) through which it is granted: `wasi:keyvalue`, and Spin's key-value.
pub const INTERFACES: &[&str] = &[
    "wasi:keyvalue/",
    "fermyon:spin/key-value",
    "spin:key-value/",
];

/// The buckets `spec` grants (only Apps have any).
pub fn buckets(spec: WorkloadSpec<'_>) -> &[String] {
    match spec {
        WorkloadSpec::App(app) => &app.capabilities.keyvalue,
        WorkloadSpec::Job(_) => &[],
    }
}

/// Bucket names are 1–63 of `[a-z0-9_-]`, each listed once.
///
/// # Errors
/// The first invalid or repeated bucket.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    validate_labels("spec.capabilities.keyvalue", buckets(spec), "bucket")
}

/// Labels (of buckets, of databases) are 1–63 of `[a-z0-9_-]`, each listed once.
///
/// # Errors
/// The first invalid or repeated label, as `field[i]`.
pub(crate) fn validate_labels(
    field: &str,
    labels: &[String],
    what: &str,
) -> Result<(), FieldError> {
    let mut seen = HashSet::new();
    for (i, label) in labels.iter().enumerate() {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return fail(
                format!("{field}[{i}]"),
                format!(
                    "'{label}' is not a {what} name; use 1-63 lowercase letters, digits, '-' or '_'"
                ),
            );
        }
        if !seen.insert(label) {
            return fail(
                format!("{field}[{i}]"),
                format!("{what} '{label}' is listed twice"),
            );
        }
    }
    Ok(())
}
