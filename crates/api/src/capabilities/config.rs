//! The `wasi:config` capability's spec: `spec.config`, the values `wasi:config/store` reads.

use crate::{FieldError, WorkloadSpec, fail};
use std::collections::BTreeMap;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "config";

/// The import names (prefixes) through which it is granted: `wasi:config/store`, and Spin's variables.
pub const INTERFACES: &[&str] = &["wasi:config/", "fermyon:spin/variables", "spin:variables/"];

/// Keys under this prefix are Shoal's: a job run's identity (`shoal.job.name`, `.run`,
/// `.attempt`).
pub const RESERVED: &str = "shoal.";

/// The values `spec` gives, and (an App's) secret ones.
pub fn values(spec: WorkloadSpec<'_>) -> Option<&BTreeMap<String, String>> {
    match spec {
        WorkloadSpec::App(app) => Some(&app.config),
        WorkloadSpec::Job(job) => Some(&job.config),
    }
}

/// The secret values `spec` gives (only Apps have any).
pub fn secret_values(spec: WorkloadSpec<'_>) -> Option<&BTreeMap<String, String>> {
    match spec {
        WorkloadSpec::App(app) => Some(&app.secret_config),
        WorkloadSpec::Job(_) => None,
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
    if let Some(secrets) = secret_values(spec) {
        if secrets.keys().any(String::is_empty) {
            return fail("spec.secretConfig", "keys must not be empty");
        }
        if let Some(key) = secrets.keys().find(|k| values.contains_key(*k)) {
            return fail(
                format!("spec.secretConfig.{key}"),
                "is also in spec.config; give each key one value",
            );
        }
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

/// Whether `name` is a valid Spin variable name: lowercase letters, digits and single
/// underscores, starting with a letter and ending with a letter or digit (Spin's rule, which
/// both `spin.toml`'s variables and `fermyon:spin/variables` lookups follow).
///
/// # Errors
/// Why it is not, as Spin words it.
pub fn spin_variable_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "must not be empty".to_string()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        )
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_string()
    } else if name.ends_with('_') {
        "must end with a lowercase ASCII letter or digit".to_string()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_string()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {why}"))
}
