//! The SQLite capability's spec: `spec.capabilities.sqlite`, the databases an app may open
//! (Spin's `sqlite_databases`). Each is a file of its own, private to the app.

use crate::{FieldError, WorkloadSpec};

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "sqlite";

/// The import names (prefixes) through which it is granted: Spin's SQLite.
pub const INTERFACES: &[&str] = &["fermyon:spin/sqlite", "spin:sqlite/"];

/// The database labels `spec` grants (only Apps have any).
pub fn databases(spec: WorkloadSpec<'_>) -> &[String] {
    match spec {
        WorkloadSpec::App(app) => &app.capabilities.sqlite,
        WorkloadSpec::Job(_) => &[],
    }
}

/// Database labels are 1–63 of `[a-z0-9_-]`, each listed once.
///
/// # Errors
/// The first invalid or repeated label.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    super::keyvalue::validate_labels("spec.capabilities.sqlite", databases(spec), "database")
}
