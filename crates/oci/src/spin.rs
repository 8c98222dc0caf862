//! Spin applications as `spin registry push` publishes them: an image manifest whose layers
//! are the locked app (`application/vnd.fermyon.spin.application.v1+config`; in older
//! artifacts it is the config itself), one layer per component
//! (`application/vnd.wasm.content.layer.v1+wasm`), one per file
//! (`…+data`, files of at most 128 bytes inlined in the locked app instead) or a gzip tar of
//! several (`application/vnd.wasm.content.bundle.v1.tar+gzip`).
//!
//! This module moves and verifies the bytes; what the locked app says is
//! `shoal_manifest::spin`'s to read.

use crate::progress::Sink;
use crate::pull::{fetch_blob, resolve};
use crate::{Descriptor, MAX_MANIFEST_BYTES, OciError, Registry, media};
use hyper::body::Bytes;
use shoal_api::{Digest, OciRef};
use std::collections::BTreeMap;

/// The most layers a Spin application may have (the lowest limit among well-known
/// registries, which Spin also keeps to).
pub const MAX_SPIN_LAYERS: usize = 500;

/// A Spin application pulled.
#[derive(Debug)]
pub struct SpinArtifact {
    /// What the reference resolved to: the manifest's (or image index's) digest.
    pub digest: Digest,
    /// The locked app (JSON), checked against its descriptor.
    pub locked: Vec<u8>,
    /// Every component and file the manifest holds that the caller did not, checked; the
    /// files of archive layers by their own digests.
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

/// Pulls the Spin application `reference` names: the locked app and every component and
/// file layer `held` does not say the caller has, each at most `max_bytes` and all together
/// at most `max_total`.
///
/// # Errors
/// An [`OciError`] naming the reference: not a Spin application, too many or unknown layers,
/// or any blob that is not what its descriptor says.
pub async fn pull_spin(
    registry: &Registry,
    reference: &OciRef,
    max_bytes: u64,
    max_total: u64,
    held: impl Fn(&Digest) -> bool,
    progress: &Sink,
) -> Result<SpinArtifact, OciError> {
    let shown = reference.to_string();
    let format = |message: String| OciError::Format {
        reference: shown.clone(),
        message,
    };
    let resolved = resolve(registry, reference).await?;
    let m = &resolved.manifest;
    let locked_desc = m
        .layers
        .iter()
        .find(|l| l.media_type == media::SPIN_APPLICATION)
        .or((m.config.media_type == media::SPIN_APPLICATION).then_some(&m.config))
        .ok_or_else(|| {
            let layers: Vec<_> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
            format(format!(
                "not a Spin application (config {}, layers [{}]); a Spin application has a {} layer (what `spin registry push` makes). A single component is applied as an App's spec.component",
                m.config.media_type,
                layers.join(", "),
                media::SPIN_APPLICATION
            ))
        })?;
    if m.layers.len() > MAX_SPIN_LAYERS {
        return Err(format(format!(
            "{} layers, more than the {MAX_SPIN_LAYERS} a Spin application may have",
            m.layers.len()
        )));
    }
    let locked = fetch_blob(
        registry,
        reference,
        locked_desc,
        MAX_MANIFEST_BYTES as u64,
        progress,
    )
    .await?;
    let mut total = 0u64;
    let mut blobs = BTreeMap::new();
    let mut keep = |digest: Digest, bytes: Vec<u8>| {
        total = total.saturating_add(bytes.len() as u64);
        if total > max_total {
            return Err(OciError::Verification {
                reference: shown.clone(),
                message: format!("the application is over {max_total} bytes in all"),
            });
        }
        blobs.insert(digest, bytes);
        Ok(())
    };
    for layer in &m.layers {
        let kind = layer.media_type.as_str();
        match kind {
            media::SPIN_APPLICATION => continue,
            media::SPIN_WASM | media::WASM_LAYER | media::SPIN_DATA => {
                if let Ok(d) = Digest::parse(&layer.digest)
                    && held(&d)
                {
                    progress.finish(&layer.digest);
                    continue;
                }
                let bytes = fetch_blob(registry, reference, layer, max_bytes, progress).await?;
                keep(Digest::of(&bytes), bytes)?;
            }
            media::SPIN_ARCHIVE => {
                let bytes = fetch_blob(registry, reference, layer, max_bytes, progress).await?;
                for (digest, file) in unpack_archive(&shown, &layer.digest, &bytes, max_bytes)? {
                    keep(digest, file)?;
                }
            }
            other => {
                return Err(format(format!(
                    "layer {} has media type {other}; a Spin application's layers are {}, {}, {} and {}",
                    layer.digest,
                    media::SPIN_APPLICATION,
                    media::SPIN_WASM,
                    media::SPIN_DATA,
                    media::SPIN_ARCHIVE
                )));
            }
        }
    }
    Ok(SpinArtifact {
        digest: resolved.digest,
        locked,
        blobs,
    })
}

/// The regular files of an archive layer, by digest, at most `max_bytes` unpacked.
fn unpack_archive(
    shown: &str,
    layer: &str,
    bytes: &[u8],
    max_bytes: u64,
) -> Result<Vec<(Digest, Vec<u8>)>, OciError> {
    let bad = |message: String| OciError::Format {
        reference: shown.into(),
        message: format!("archive layer {layer}: {message}"),
    };
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(std::io::Read::take(gz, max_bytes.saturating_add(1)));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| {
            bad(format!(
                "not a complete tar.gz within {max_bytes} bytes: {e}"
            ))
        })?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        let mut file = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut file).map_err(|e| bad(e.to_string()))?;
        if file.len() as u64 != size {
            return Err(bad(format!(
                "cut short: more than {max_bytes} bytes unpacked"
            )));
        }
        out.push((Digest::of(&file), file));
    }
    Ok(out)
}

/// One layer of a Spin application to publish.
#[derive(Debug, Clone)]
pub struct SpinLayer {
    /// [`media::SPIN_WASM`] or [`media::SPIN_DATA`].
    pub media_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Publishes a Spin application at `reference` in `spin registry push`'s format: `layers`
/// (each once, in order) and the `locked` app as the last layer, under an OCI image config
/// labelled with the locked app's digest. Returns the manifest digest.
///
/// # Errors
/// An [`OciError`] naming the reference: the registry refused an upload.
pub async fn push_spin(
    registry: &Registry,
    reference: &OciRef,
    locked: Vec<u8>,
    layers: Vec<SpinLayer>,
    progress: &Sink,
) -> Result<Digest, OciError> {
    let mut descriptors: Vec<(Descriptor, Bytes)> = Vec::new();
    for layer in layers {
        let d = Descriptor::of(layer.media_type, &layer.bytes);
        if !descriptors.iter().any(|(seen, _)| seen.digest == d.digest) {
            descriptors.push((d, layer.bytes.into()));
        }
    }
    let locked_desc = Descriptor::of(media::SPIN_APPLICATION, &locked);
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": { "Labels": { "com.fermyon.spin.lockedAppDigest": locked_desc.digest } },
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    let config = serde_json::to_vec(&config).expect("JSON");
    let config = (Descriptor::of(media::OCI_CONFIG, &config), config.into());
    descriptors.push((locked_desc, locked.into()));
    crate::push::push_artifact(registry, reference, config, descriptors, progress).await
}
