//! Everything wasmtime: the engine, the compile cache, and one fresh instance per request.
//!
//! - [`Runtime`] owns the [`wasmtime::Engine`] (pooling allocator, copy-on-write memory images,
//!   epoch interruption) and the on-disk cache of compiled code.
//! - [`Runtime::load_http`] turns component bytes into an [`HttpComponent`]: compiled (or loaded
//!   from the cache), linked against WASI P2 + `wasi:http`, checked to export the incoming
//!   handler, and pre-instantiated. It blocks; callers run it off the async workers.
//! - [`HttpApp`] serves requests for one deployed app: a concurrency permit, a fresh `Store` and
//!   instance per request, the app's limits, and the mapping of failures to HTTP statuses.
//! - [`Runtime::load_command`] and [`Runtime::run_command`] run a Job's `wasi:cli` command
//!   (a component, or a wasip1 core module) to completion on the busy lane.
//! - `reuse` keeps idle instances of apps that opt into reuse, and finds out whether a
//!   component can answer twice at all.
//! - `scale` releases an idle app's component (scale to zero) and loads it again on the next
//!   request.
//! - `lanes` keeps long-computing requests off the ingress threads: they finish on
//!   lowest-priority threads that the kernel preempts for every short request.
//!
//! Nothing outside this crate touches wasmtime types.

mod bodies;
mod command;
mod engine;
mod host;
mod lanes;
mod load;
mod reuse;
mod scale;
mod serve;

pub use bodies::{RequestBody, ResponseBody};
pub use command::{Command, Exit, Invocation};
pub use engine::{Runtime, RuntimeConfig};
pub use load::{HttpComponent, LoadError, Loaded, Origin};
pub use scale::ActivityState;
pub use serve::{Body, HttpApp, relayed_body, text_response};
