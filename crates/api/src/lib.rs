//! Shoal's object model: the types behind `apiVersion: shoal/v1alpha1`.
//!
//! Every object has `metadata`, a user-written `spec` and a system-written `status`. This crate
//! is plain data plus parsing of the small value types (quantities, durations, names, routes,
//! component references) and the pure checks of each capability's part of a spec
//! ([`capabilities`]): it does no IO and knows nothing about stores, HTTP or wasmtime.

mod app;
mod app_status;
pub mod capabilities;
mod error;
mod event;
mod job;
mod meta;
mod namespace;
mod node;
pub mod pull;
mod quantity;
mod reference;
mod revision;
mod route;
mod stats;

pub use app::*;
pub use app_status::*;
pub use capabilities::WorkloadSpec;
pub use capabilities::outbound::{
    Destination, HostPattern, OutboundRule, default_port, is_internal,
};
pub use error::{FieldError, InvalidValue, fail};
pub use event::*;
pub use job::*;
pub use meta::*;
pub use namespace::*;
pub use node::*;
pub use quantity::*;
pub use reference::{ComponentRef, Digest, OciRef, ReferenceError, WasmKind, short_digest};
pub use revision::*;
pub use route::{
    Route, Segment, host_ip, normalise_host, normalise_path, segments, valid_param_name,
};
pub use stats::{AppStats, Recent};

/// The only API version this build understands.
pub const API_VERSION: &str = "shoal/v1alpha1";

/// The request header an apply carries the credentials of its component's registry in
/// (`Basic base64(user:password)`), for the server's pull only: never stored.
pub const REGISTRY_AUTH_HEADER: &str = "shoal-registry-authorization";
