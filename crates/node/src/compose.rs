//! What a revision runs: its component pre-initialised (`spec.init`), then composed with its
//! dependencies (`spec.dependencies`). A composition is kept in the compile cache directory,
//! named after the digests of all its parts and each dependency's name, export and
//! inheritance, so that a node composes one combination once; it is then compiled and
//! cached like any component, under its own digest.

use crate::workload::{ArtifactError, artifact};
use sha2::{Digest, Sha256};
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
    let mut key = Sha256::new();
    key.update(root.digest.as_bytes());
    for p in parts {
        let export = p.export.as_deref().unwrap_or("");
        let fields = [
            p.name.as_str(),
            &p.artifact.digest,
            export,
            if p.inherit { "inherit" } else { "" },
        ];
        for f in fields {
            key.update([0]);
            key.update(f.as_bytes());
        }
    }
    let path = runtime
        .cache_dir()
        .join(format!("{}-composed.wasm", hex::encode(key.finalize())));
    let io = |e: std::io::Error| format!("spec.dependencies: {e}");
    if !path.exists() {
        let read = |a: &Artifact| std::fs::read(&a.path).map_err(io);
        let root_wasm = read(&root)?;
        let wasm: Vec<Vec<u8>> = parts
            .iter()
            .map(|p| read(&p.artifact))
            .collect::<Result<_, _>>()?;
        let dependencies: Vec<_> = parts
            .iter()
            .zip(&wasm)
            .map(|(p, wasm)| shoal_compose::Dependency {
                name: &p.name,
                wasm,
                id: &p.artifact.digest,
                export: p.export.as_deref(),
                inherit: p.inherit,
            })
            .collect();
        let composed = shoal_compose::compose(
            &root_wasm,
            &dependencies,
            &shoal_api::capabilities::interfaces(),
        )
        .map_err(|r| r.to_string())?;
        // Written beside its name and renamed: two loads may compose one combination.
        let tmp = path.with_extension(format!(
            "tmp{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, &composed)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(io)?;
    }
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(&path).map_err(io)?))
    );
    Ok(Artifact { digest, path })
}
