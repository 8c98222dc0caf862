//! Blobs: what a workload runs and mounts, stored by content digest.
//!
//! - [`BlobStore`]: the local, content-addressed files (`DIR/sha256/<hex>`), written
//!   atomically; what the API stores uploads in and what a node runs from.
//! - [`Blobs`]: a node's view: local blobs, fetched from a [`BlobSource`] (the servers) on
//!   a miss and verified before anything uses them; file trees unpacked once per digest.
//! - [`trees`]: a directory packed into one blob (the CLI) and unpacked safely (the node).
//! - [`Fetcher`]: a blob fetched by URL (HTTP or HTTPS) and checked against its digest.

mod fetch;
mod store;
pub mod trees;
mod url;

pub use fetch::{BlobError, BlobSource, Blobs};
pub use store::BlobStore;
pub use url::{BodyError, FetchError, Fetcher, read_body, resolve};
