//! End-to-end tests: each starts a real `shoal up` on port 0 with its own data dir and drives it
//! with the real CLI and real HTTP requests.

mod api_limits;
mod app_data;
mod apps;
mod bad_input;
mod browser;
mod capabilities;
mod chain;
mod cluster;
mod cluster_trust;
mod commands;
mod completion;
mod compose;
mod dashboard;
mod hostile;
mod init;
mod jobs;
mod limits;
mod logs;
mod metrics;
mod oci;
mod oci_spin;
mod reuse;
mod rollout;
mod scale;
mod spin;
mod spin_conformance;
mod support;
mod tenants;
mod tidy;
mod tls;
mod top;
mod traces;
mod wasi3;
