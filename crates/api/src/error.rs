//! The error every semantic check returns: which field, and what to do about it.

/// One invalid field: its dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// e.g. `spec.routes[1].path`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl FieldError {
    /// `path` is invalid because of `message`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `Err` of a [`FieldError`], for checks that return early.
pub fn fail(path: impl Into<String>, message: impl Into<String>) -> Result<(), FieldError> {
    Err(FieldError::new(path, message))
}
