//! `POST /v1/pull`: the server pulls an OCI artifact into its blob store ahead of an apply and
//! streams its progress, one JSON [`PullEvent`] per line.

use crate::{App, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What to pull.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequest {
    /// `oci://REGISTRY/REPOSITORY[:TAG][@sha256:…]`.
    pub reference: String,
    /// Set for a Spin application: what its Apps need.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spin: Option<SpinPull>,
}

/// A Spin application's settings: where its Apps go and its variables' values, as
/// `shoal apply -f spin.toml` takes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpinPull {
    /// The namespace of its Apps.
    pub namespace: String,
    /// `--variable NAME=VALUE`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// `SPIN_VARIABLE_*` of the CLI's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// One line of a pull's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PullEvent {
    /// A blob of `total` bytes starts downloading.
    Start {
        /// The blob's digest.
        digest: String,
        /// Its size.
        total: u64,
    },
    /// `done` bytes of it have arrived.
    Progress {
        /// The blob's digest.
        digest: String,
        /// Bytes so far.
        done: u64,
    },
    /// It is complete, or was not needed (the server had it).
    Finish {
        /// The blob's digest.
        digest: String,
    },
    /// The end: a component, stored.
    Component {
        /// The reference pinned to the digest it resolved to (`…:TAG@sha256:…`).
        reference: String,
        /// The component's digest in the blob store.
        component: Digest,
    },
    /// The end: a Spin application, stored, as the Apps to apply.
    Spin {
        /// The reference pinned to the digest it resolved to.
        reference: String,
        /// One App per HTTP-triggered component, ready to apply.
        apps: Vec<App>,
        /// What Shoal ignores or drops, as `shoal apply -f spin.toml` prints it.
        notes: Vec<String>,
    },
    /// The end: the pull failed.
    Error {
        /// What failed, naming the reference.
        message: String,
    },
}
