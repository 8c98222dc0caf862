//! What a guest may do beyond computing, each capability denied unless its App grants it.
//!
//! Every capability has the same lifecycle: built once per deployed app from its spec (an
//! `Arc` shared by all of that app's instances), then borrowed by each instance's host state
//! for the length of one request.
//!
//! - [`outbound`]: `wasi:http/outgoing-handler` behind an allow-list, checked against the real
//!   destination (resolved and pinned addresses), refusing internal addresses.
//! - [`keyvalue`]: `wasi:keyvalue` (store, atomics, batch) on a durable node-local file, each
//!   app's buckets private to it, with size limits.
//! - [`logs`]: guest stdout/stderr into the app's bounded log on disk.

pub mod keyvalue;
pub mod logs;
pub mod outbound;
