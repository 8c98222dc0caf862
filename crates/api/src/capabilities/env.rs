//! The environment capability's spec: `spec.env`, the variables a component sees.

use crate::{FieldError, WorkloadSpec, fail};
use std::collections::BTreeMap;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "env";

/// The import names (prefixes) through which it is granted: the environment.
pub const INTERFACES: &[&str] = &["wasi:cli/environment"];

/// The variables `spec` sets.
pub fn vars(spec: WorkloadSpec<'_>) -> &BTreeMap<String, String> {
    match spec {
        WorkloadSpec::App(app) => &app.env,
        WorkloadSpec::Job(job) => &job.env,
    }
}

/// Names are non-empty and hold no `=` or NUL.
///
/// # Errors
/// The first invalid name.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    for key in vars(spec).keys() {
        let valid = !key.is_empty() && !key.contains(['=', '\0']);
        if !valid {
            return fail(
                format!("spec.env.{key}"),
                "environment variable names must be non-empty and contain no '=' or NUL",
            );
        }
    }
    Ok(())
}
