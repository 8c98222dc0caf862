//! The environment capability's spec: `spec.env`, the variables a component sees.

use crate::{FieldError, WorkloadSpec, fail};
use std::collections::BTreeMap;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "env";

/// The variables `spec` sets.
pub fn vars(spec: WorkloadSpec<'_>) -> &BTreeMap<String, String> {
    match spec {
        WorkloadSpec::App(app) => &app.env,
        WorkloadSpec::Job(job) => &job.env,
    }
}

/// The initial working directory `spec` gives (only Jobs have one).
pub fn working_dir(spec: WorkloadSpec<'_>) -> Option<&str> {
    match spec {
        WorkloadSpec::App(_) => None,
        WorkloadSpec::Job(job) => job.working_dir.as_deref(),
    }
}

/// Names are non-empty and hold no `=` or NUL; a working directory is not empty.
///
/// # Errors
/// The first invalid name.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    if working_dir(spec).is_some_and(|d| d.is_empty() || d.contains('\0')) {
        return fail(
            "spec.workingDir",
            "must be a directory path, e.g. /data or data",
        );
    }
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
