//! Why a key-value call failed, before each interface words it as its own error.

use wasmtime::component::ResourceTableError;

/// Why a key-value call failed, before each interface words it as its own error.
#[derive(Debug)]
pub enum KvError {
    /// The bucket is not one the app was granted.
    AccessDenied,
    /// Anything else, with a message for the guest.
    Other(String),
}

impl From<ResourceTableError> for KvError {
    fn from(e: ResourceTableError) -> Self {
        KvError::Other(e.to_string())
    }
}

pub(super) fn other(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}
