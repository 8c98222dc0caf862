//! The node: what turns App and Job objects into running components, and the HTTP ingress.
//!
//! - [`Node::builder`] assembles a node for one [`Topology`] (a single node on the embedded
//!   store, or a cluster's node through the servers) and starts it on a listener.
//! - [`Agent`] lists and watches Apps, compiles their components off the async workers, grants
//!   them their capabilities, swaps the result into the [`RouteTable`], and writes this node's
//!   report in each App's `status` (a node writes nothing else).
//! - [`JobController`] lists and watches Jobs, decides with the pure [`jobs::reconcile`] which
//!   runs and attempts to create, start, stop, retry and prune, and runs the attempts in the
//!   runtime ([`NodeRunner`]), recording every step in the Job's `status` before acting on it.
//! - Both run the one controller loop (`controller`): watch a kind, take in changes, reports
//!   of their work and their timers, reconcile what they touched; level-triggered.
//! - `workload` is the one place an App or Job becomes what the runtime runs.
//! - [`ingress::serve`] answers HTTP on one listener with one current-thread runtime per core,
//!   each with its own `SO_REUSEPORT` socket, routing by host and longest path prefix; in a
//!   cluster, [`forward`] relays requests for apps held elsewhere.
//! - [`metrics`] is what the node measures (per app, its ingress, runtime and process) and
//!   serves to a Prometheus scrape.

mod agent;
mod answer;
mod calls;
mod cluster;
mod compose;
mod controller;
mod events;
pub mod forward;
mod health;
pub mod ingress;
pub mod jobs;
mod limits;
pub mod metrics;
mod node;
mod quotas;
pub mod register;
mod routes;
mod spin;
mod watch;
pub mod workload;

pub use agent::{Agent, AgentConfig, AgentParts};
pub use jobs::{Clock, JobController, NodeRunner};
pub use limits::IngressLimits;
pub use node::{Builder, Node, StartError, Topology};
pub use routes::{RouteTable, Routed, Routes};
pub use shoal_runtime::compiler;
