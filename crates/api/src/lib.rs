//! Shoal's object model: the types behind `apiVersion: shoal/v1alpha1`.
//!
//! Every object has `metadata`, a user-written `spec` and a system-written `status`. This crate
//! is plain data plus parsing of the small value types (quantities, durations, names): it does no
//! IO and knows nothing about stores, HTTP or wasmtime.

mod app;
mod event;
mod job;
mod meta;
mod node;
mod outbound;
mod quantity;
mod revision;

pub use app::*;
pub use event::*;
pub use job::*;
pub use meta::*;
pub use node::*;
pub use outbound::*;
pub use quantity::*;
pub use revision::*;

/// A component digest cut for people: `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// The only API version this build understands.
pub const API_VERSION: &str = "shoal/v1alpha1";
