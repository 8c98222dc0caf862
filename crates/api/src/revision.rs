//! Revisions: the immutable, numbered record of each spec an App has had.

use crate::{AppSpec, ObjectMeta};
use serde::{Deserialize, Serialize};

/// One spec an App had, numbered by the `metadata.generation` it had then. Written by the
/// server before the App itself, never changed afterwards; the last
/// [`Revision::KEPT`] of each App are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revision {
    /// Always `shoal/v1alpha1`.
    pub api_version: String,
    /// Always `Revision`.
    pub kind: String,
    /// `NAME-N` in the App's namespace; `creationTimestamp` is when it was applied.
    pub metadata: ObjectMeta,
    /// The App it belongs to.
    pub app: String,
    /// Its number: the App's generation when this spec was applied.
    pub revision: u64,
    /// The spec, exactly as applied.
    pub spec: AppSpec,
}

impl Revision {
    /// Revisions kept per App.
    pub const KEPT: usize = 10;
}
