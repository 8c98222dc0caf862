//! The `wasi:config` capability's spec: `spec.config`, the values `wasi:config/store` reads.

use crate::{FieldError, WorkloadSpec, fail};
use std::collections::BTreeMap;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "config";

/// The values `spec` gives (only Apps have any).
pub fn values(spec: WorkloadSpec<'_>) -> Option<&BTreeMap<String, String>> {
    match spec {
        WorkloadSpec::App(app) => Some(&app.config),
        WorkloadSpec::Job(_) => None,
    }
}

/// Keys are non-empty.
///
/// # Errors
/// An empty key.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    if values(spec).is_some_and(|v| v.keys().any(String::is_empty)) {
        return fail("spec.config", "keys must not be empty");
    }
    Ok(())
}
