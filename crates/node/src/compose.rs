//! What a revision runs: its component pre-initialised (`spec.init`), then composed with its
//! dependencies (`spec.dependencies`). A composition is kept in the compile cache directory,
//! named after the digests of all its parts and each dependency's name, export and
//! inheritance, so that a node composes one combination once; it is then compiled and
//! cached like any component, under its own digest.

use crate::workload::{ArtifactError, artifact};
use shoal_api::App;
use shoal_blobs::Blobs;
use shoal_runtime::{Artifact, Runtime};

/// One dependency of a revision, its component fetched.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    name: String,
    artifact: Artifact,
    export: Option<String>,
    inherit: bool,
}

/// The dependencies of `app`, each component fetched if this node does not have it.
///
/// # Errors
/// A dependency's component is not a digest (the server resolves every one at apply) or its
/// blob cannot be had; the message names the dependency.
pub(crate) async fn parts(blobs: &Blobs, app: &App) -> Result<Vec<Part>, String> {
    let mut parts = Vec::with_capacity(app.spec.dependencies.len());
    for (name, d) in &app.spec.dependencies {
        let field = shoal_compose::field(name);
        let component = d
            .component
            .as_ref()
            .ok_or_else(|| format!("{field}: names no component"))?;
        let artifact = artifact(blobs, component)
            .await
            .map_err(|e: ArtifactError| format!("{field}: {e}"))?;
        parts.push(Part {
            name: name.clone(),
            artifact,
            export: d.export.clone(),
            inherit: d.inherit_capabilities,
        });
    }
    Ok(parts)
}

/// `root` composed with `parts` (`root` itself when there are none), from the cache when
/// this node composed them before.
///
/// # Caveats
/// Blocks while it reads and composes; call it from a blocking thread.
///
/// # Errors
/// The composition is refused (the field and why), or a file cannot be read or written.
pub(crate) fn composed(
    runtime: &Runtime,
    root: Artifact,
    parts: &[Part],
) -> Result<Artifact, String> {
    if parts.is_empty() {
        return Ok(root);
    }
    let mut key = root.digest.clone();
    for p in parts {
        let export = p.export.as_deref().unwrap_or("");
        let inherit = if p.inherit { "inherit" } else { "" };
        for f in [p.name.as_str(), &p.artifact.digest, export, inherit] {
            key.push('\0');
            key.push_str(f);
        }
    }
    let key = shoal_api::Digest::of(key.as_bytes());
    let name = format!("{}-composed.wasm", key.hex());
    let files: Vec<_> = parts
        .iter()
        .map(|p| shoal_compose::DependencyFile {
            name: &p.name,
            path: &p.artifact.path,
            id: &p.artifact.digest,
            export: p.export.as_deref(),
            inherit: p.inherit,
        })
        .collect();
    let denied = shoal_api::capabilities::interfaces();
    runtime
        .derived(&name, |tmp| {
            let composed = shoal_compose::compose_files(&root.path, &files, &denied)?;
            Ok::<_, shoal_compose::Refusal>(std::fs::write(tmp, composed)?)
        })
        .map(|composed| Artifact {
            // Its instances are the snapshot's: their memory, the snapshot's image.
            snapshot: root.snapshot,
            ..composed
        })
        .map_err(|r| r.to_string())
}
