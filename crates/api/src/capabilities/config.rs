//! The `wasi:config` capability's spec: `spec.config`, the values `wasi:config/store` reads.

use crate::{FieldError, WorkloadSpec, fail};
use std::collections::BTreeMap;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "config";

/// Keys under this prefix are Shoal's: a job run's identity (`shoal.job.name`, `.run`,
/// `.attempt`).
pub const RESERVED: &str = "shoal.";

/// The values `spec` gives.
pub fn values(spec: WorkloadSpec<'_>) -> Option<&BTreeMap<String, String>> {
    match spec {
        WorkloadSpec::App(app) => Some(&app.config),
        WorkloadSpec::Job(job) => Some(&job.config),
    }
}

/// Keys are non-empty; a Job's do not start with [`RESERVED`].
///
/// # Errors
/// An empty or reserved key.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    let Some(values) = values(spec) else {
        return Ok(());
    };
    if values.keys().any(String::is_empty) {
        return fail("spec.config", "keys must not be empty");
    }
    if let WorkloadSpec::Job(_) = spec
        && let Some(key) = values.keys().find(|k| k.starts_with(RESERVED))
    {
        return fail(
            format!("spec.config.{key}"),
            format!(
                "keys beginning with {RESERVED} are Shoal's (a run's identity is there); choose another name"
            ),
        );
    }
    Ok(())
}
