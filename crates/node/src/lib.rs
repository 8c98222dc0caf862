//! The node: an agent that turns App objects into running components, and the HTTP ingress.
//!
//! - [`Agent`] lists and watches Apps, compiles their components off the async workers, swaps
//!   the result into the [`RouteTable`], and writes each App's `status` (a node writes nothing
//!   else). It is level-triggered: whatever woke it, it compares spec with what it runs.
//! - [`JobController`] lists and watches Jobs, decides with the pure [`jobs::reconcile`] which
//!   runs and attempts to create, start, stop, retry and prune, and runs the attempts in the
//!   runtime ([`NodeRunner`]), recording every step in the Job's `status` before acting on it.
//! - [`ingress::serve`] answers HTTP on one listener with one current-thread runtime per core,
//!   each with its own `SO_REUSEPORT` socket, routing by host and longest path prefix.

mod agent;
mod blobs;
pub mod forward;
mod health;
pub mod ingress;
pub mod jobs;
mod limits;
pub mod register;
mod routes;
mod watch;

pub use agent::{Agent, AgentConfig};
pub use blobs::{BlobSource, Blobs};
pub use jobs::{Clock, JobController, NodeRunner};
pub use limits::IngressLimits;
pub use routes::{RouteTable, Routes};
