//! OCI distribution for Wasm components: pull from and push to registries that speak the OCI
//! Distribution API (Docker's Distribution, ghcr.io, Harbor, zot, …).
//!
//! - [`Registry`] (`client.rs`): one registry's HTTP API with its credentials: anonymous,
//!   Basic, or the Bearer token flow a `WWW-Authenticate` challenge asks for. Plain HTTP only
//!   for loopback registries or ones named insecure.
//! - [`pull`] (`pull.rs`): a reference resolved to its manifest digest, the manifest and the
//!   one component layer fetched, each checked against its descriptor's digest and size, and
//!   the artifact's format told from its media types (a CNCF Wasm artifact, or an image whose
//!   one layer, plain or gzip-compressed tar, holds one `.wasm` file). Anything else is
//!   refused with the media types found.
//!   An image index leads to its `wasm` platform's manifest.
//! - [`push`] (`push.rs`): a component published as a CNCF Wasm artifact (config filled from
//!   the component's imports and exports), blobs uploaded only when the registry lacks them.
//! - [`pull_spin`], [`push_spin`] (`spin.rs`): a Spin application in `spin registry push`'s
//!   format: its locked app and every layer it names, verified; what the locked app means is
//!   `shoal_manifest::spin`'s to say.
//! - [`Progress`] (`progress.rs`): each blob's bytes as they move, for bars and streams.

mod client;
pub mod progress;
mod pull;
mod push;
mod spin;

pub use client::{Credentials, Registry};
pub use progress::Progress;
pub use pull::{Format, Pull, Pulled, pull, pull_showing, pull_unless_held};
pub use push::push;
pub use spin::{MAX_SPIN_LAYERS, SpinArtifact, SpinLayer, pull_spin, push_spin};

use shoal_api::Digest;

/// Media types Shoal reads and writes.
pub mod media {
    /// An OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// A Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// An OCI image index (a manifest of manifests).
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// A Docker manifest list (Docker's image index).
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// The CNCF TAG-Runtime Wasm artifact's config.
    pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
    /// A Wasm artifact's layer: the component itself.
    pub const WASM_LAYER: &str = "application/wasm";
    /// An OCI image's config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// A Docker image's config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// An uncompressed OCI image layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// A gzip-compressed OCI image layer.
    pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// A Docker image layer (what `docker push` sends: gzip-compressed tar).
    pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// A Spin application's locked app (`spin registry push`): a layer, or in older
    /// artifacts the config.
    pub const SPIN_APPLICATION: &str = "application/vnd.fermyon.spin.application.v1+config";
    /// A Spin application's component.
    pub const SPIN_WASM: &str = "application/vnd.wasm.content.layer.v1+wasm";
    /// One of a Spin application's files.
    pub const SPIN_DATA: &str = "application/vnd.wasm.content.layer.v1+data";
    /// Some of a Spin application's files, as a gzip-compressed tar.
    pub const SPIN_ARCHIVE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
}

/// The most bytes a manifest may have (Distribution's own default limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Why a pull or a push failed; every message names the reference.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The registry could not be reached, or answered something that is not HTTP.
    #[error("{reference}: {message}")]
    Transport {
        /// The reference being pulled or pushed.
        reference: String,
        /// What failed.
        message: String,
    },
    /// The registry refused the request.
    #[error("{reference}: the registry answered {status} to {what}{detail}")]
    Status {
        /// The reference.
        reference: String,
        /// The request, e.g. `GET manifest 1.0`.
        what: String,
        /// The status.
        status: http::StatusCode,
        /// The registry's error message, if it gave one (with its leading `: `).
        detail: String,
    },
    /// The registry asks for credentials that were not given, or refused the ones given.
    #[error(
        "{reference}: the registry needs credentials{detail}; log in with `shoal registry login {registry}`"
    )]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The registry's host.
        registry: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry served other bytes than the ones named, or more than allowed.
    #[error("{reference}: {message}; nothing was used")]
    Verification {
        /// The reference.
        reference: String,
        /// What did not match.
        message: String,
    },
    /// The artifact is not one Shoal runs.
    #[error("{reference}: {message}")]
    Format {
        /// The reference.
        reference: String,
        /// What was found and what is accepted.
        message: String,
    },
    /// The registry is reached over plain HTTP but is neither loopback nor named insecure.
    #[error(
        "{reference}: {registry} is not a loopback registry; Shoal reaches it over HTTPS only unless it is named with --insecure-registry {registry}"
    )]
    Insecure {
        /// The reference.
        reference: String,
        /// The registry's host.
        registry: String,
    },
}

/// A descriptor: what a manifest says of one blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations, e.g. a layer's file name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor of `bytes` as `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.into(),
            digest: Digest::of(bytes).to_string(),
            size: bytes.len() as u64,
            annotations: Default::default(),
        }
    }
}

/// An image manifest (OCI or Docker schema 2: the same shape).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// An artifact's type, when the config does not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Manifest {
    /// Whether this is a Spin application's manifest (`spin registry push`): its locked app
    /// is a layer, or (older artifacts) the config.
    pub fn is_spin_app(&self) -> bool {
        self.config.media_type == media::SPIN_APPLICATION
            || self
                .layers
                .iter()
                .any(|l| l.media_type == media::SPIN_APPLICATION)
    }
}
