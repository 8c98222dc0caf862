//! Everything wasmtime: the engine, the compile cache, and one fresh instance per request.
//!
//! The runtime is told what to run in its own terms — an [`Artifact`] (a file and its
//! digest), a [`Workload`] (a name, a log and the [`Grants`] the capabilities built) and the
//! limits — and knows neither Shoal's API objects, nor its store, nor any capability by name.
//!
//! - [`Runtime`] owns the [`wasmtime::Engine`] (pooling allocator, copy-on-write memory images,
//!   epoch interruption), the linker (WASI 0.2, `wasi:http`, and what the caller links in) and
//!   the on-disk cache of compiled code (`code`).
//! - [`Runtime::load_http`] turns a component file into an [`HttpComponent`]: compiled (or
//!   loaded from the cache), linked, checked to export the incoming handler, and
//!   pre-instantiated. It blocks; callers run it off the async workers.
//!   [`Runtime::pre_initialise`] (`init`) snapshots a component after its init function
//!   (`spec.init`); the snapshot is a component of its own, loaded like any.
//! - [`HttpApp`] serves requests for one deployed app: a concurrency permit, a fresh `Store` and
//!   instance per request shaped by its grants ([`Host`]), its limits, and the mapping of
//!   failures to HTTP statuses.
//! - [`Runtime::load_command`] and [`Runtime::run_command`] run a Job's `wasi:cli` command
//!   (a component, or a wasip1 core module) to completion on the busy lane.
//! - `reuse` keeps idle instances of WASI 0.2 apps that opt into reuse, and finds out whether
//!   a component can answer twice at all; `share` does it for 0.3 apps, whose instances answer
//!   several requests at once.
//! - `scale` releases an idle app's component (scale to zero) and loads it again on the next
//!   request.
//! - `lanes` keeps long-computing requests off the ingress threads: they finish on
//!   lowest-priority threads that the kernel preempts for every short request.
//!
//! Nothing outside this crate and `shoal-capabilities` touches wasmtime types.

mod absent;
mod bodies;
mod chain;
mod code;
mod command;
pub mod compiler;
mod component;
mod engine;
mod host;
mod init;
mod lanes;
mod load;
mod node_log;
mod permit;
mod prefetch;
mod request;
mod reuse;
mod scale;
mod serve;
mod share;
mod snapshot;
mod stats;
mod ticker;
mod workload;

pub use absent::AbsentImports;
pub use bodies::{Body, RequestBody, ResponseBody, relayed_body, text_response};
pub use chain::{Hop, MAX_DEPTH};
pub use code::{Artifact, LoadError};
pub use command::{Command, Exit, Invocation};
pub use component::{HttpComponent, Wasi};
pub use engine::{EngineKind, Runtime, RuntimeConfig};
pub use host::Host;
pub use init::Initialised;
pub use load::{Loaded, Origin};
pub use permit::SharedLimit;
pub use scale::{ActivationError, ActivityState};
pub use serve::{HttpApp, InstantiateError};
pub use snapshot::Init;
/// The error of a request or response body, as [`HttpApp::handle`] takes one.
pub use wasmtime_wasi_http::Error as HttpError;
pub use workload::{
    Grant, Grants, InstanceBuilder, Limits, OutgoingHttp, Reuse, Sent, Serving, Workload,
};
