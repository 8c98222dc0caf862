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

/// A value that does not parse (a quantity, a duration, a name, a schedule, an allow-list
/// entry); the text says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

impl From<String> for InvalidValue {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<InvalidValue> for String {
    fn from(e: InvalidValue) -> Self {
        e.0
    }
}

impl std::ops::Deref for InvalidValue {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for InvalidValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
