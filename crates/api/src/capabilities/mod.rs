//! The spec side of every capability: what part of an App's or a Job's spec grants it, and
//! how that part is validated (pure; the server and the CLI run the same checks).
//!
//! A capability is one spec module here, one host module in `shoal-capabilities` (which
//! links it, grants it per deployment and shapes each instance), and one entry in each of
//! the two lists, [`SPECS`] here and the host's; a test there keeps the lists in step.

pub mod config;
pub mod env;
pub mod files;
pub mod keyvalue;
pub mod logs;
pub mod outbound;
pub mod sqlite;

use crate::{AppSpec, FieldError, JobSpec};

/// The spec of an object that runs a component, as capabilities read it.
#[derive(Debug, Clone, Copy)]
pub enum WorkloadSpec<'a> {
    /// An App's spec.
    App(&'a AppSpec),
    /// A Job's spec.
    Job(&'a JobSpec),
}

/// A capability's check of its part of a spec.
pub type Validate = fn(WorkloadSpec<'_>) -> Result<(), FieldError>;

/// Every capability by name, with its check, in the order they are checked and granted.
pub const SPECS: &[(&str, Validate)] = &[
    (env::NAME, env::validate),
    (outbound::NAME, outbound::validate),
    (keyvalue::NAME, keyvalue::validate),
    (sqlite::NAME, sqlite::validate),
    (files::NAME, files::validate),
    (config::NAME, config::validate),
    (logs::NAME, logs::validate),
];

/// The import names (prefixes) through which capabilities are granted, with the rest of
/// Spin's platform: what a dependency that does not inherit its app's capabilities is
/// denied.
pub fn interfaces() -> Vec<&'static str> {
    let granted = [
        env::INTERFACES,
        outbound::INTERFACES,
        keyvalue::INTERFACES,
        sqlite::INTERFACES,
        files::INTERFACES,
        config::INTERFACES,
    ];
    let mut all: Vec<&str> = granted.concat();
    all.extend(["fermyon:spin/", "spin:"]);
    all
}

/// Checks every capability's part of `spec`.
///
/// # Errors
/// The first invalid field.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    SPECS.iter().try_for_each(|(_, check)| check(spec))
}
