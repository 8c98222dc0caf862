//! The logs capability's spec: none. Every workload's stdout and stderr go to its log; there
//! is nothing to grant or to check, and the capability is listed so that every host
//! capability has its spec module.

use crate::{FieldError, WorkloadSpec};

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "logs";

/// Nothing to check.
///
/// # Errors
/// Never.
pub fn validate(_spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    Ok(())
}
