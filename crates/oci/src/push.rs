//! Publishing a component as a CNCF TAG-Runtime Wasm artifact: a config
//! (`application/vnd.wasm.config.v0+json`, filled from the component's imports and exports),
//! one `application/wasm` layer, and an OCI image manifest naming both. Blobs the registry
//! already has are not sent again. [`push_artifact`] publishes any config and layers (a Spin
//! application's too).

use crate::client::{error_detail, transport};
use crate::progress::{Sink, Upload};
use crate::{Descriptor, Manifest, OciError, Registry, media};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::Bytes;
use shoal_api::{Digest, OciRef};

/// Publishes `component` at `reference` (its tag, or `latest`); returns the manifest digest.
///
/// # Errors
/// An [`OciError`] naming the reference: the bytes are not a component, or the registry
/// refused an upload.
pub async fn push(
    registry: &Registry,
    reference: &OciRef,
    component: &[u8],
    progress: &Sink,
) -> Result<Digest, OciError> {
    let shown = reference.to_string();
    let (imports, exports) = interface(component).map_err(|e| OciError::Format {
        reference: shown.clone(),
        message: format!("not a Wasm component: {e}"),
    })?;
    let layer = Descriptor::of(media::WASM_LAYER, component);
    let config = serde_json::json!({
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer.digest],
        "component": { "imports": imports, "exports": exports },
    });
    let config = serde_json::to_vec(&config).expect("JSON");
    let config = (Descriptor::of(media::WASM_CONFIG, &config), config.into());
    let layers = vec![(layer, Bytes::copy_from_slice(component))];
    push_artifact(registry, reference, config, layers, progress).await
}

/// Publishes an image manifest of `config` and `layers` at `reference` (its tag, or
/// `latest`), uploading each blob the registry lacks; returns the manifest digest.
pub(crate) async fn push_artifact(
    registry: &Registry,
    reference: &OciRef,
    config: (Descriptor, Bytes),
    layers: Vec<(Descriptor, Bytes)>,
    progress: &Sink,
) -> Result<Digest, OciError> {
    let shown = reference.to_string();
    let repo = &reference.repository;
    let scope = format!("repository:{repo}:pull,push");
    upload(
        registry, &shown, repo, &scope, &config.0, config.1, progress,
    )
    .await?;
    for (d, bytes) in &layers {
        upload(registry, &shown, repo, &scope, d, bytes.clone(), progress).await?;
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: config.0,
        layers: layers.into_iter().map(|(d, _)| d).collect(),
        annotations: Default::default(),
    };
    let body = serde_json::to_vec(&manifest).expect("JSON");
    let digest = Digest::of(&body);
    let target = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media::OCI_MANIFEST),
    );
    let path = format!("/v2/{repo}/manifests/{target}");
    let response = registry
        .send(&shown, Method::PUT, &path, &headers, body.into(), &scope)
        .await?;
    if response.status() != StatusCode::CREATED {
        let status = response.status();
        return Err(OciError::Status {
            reference: shown,
            what: format!("PUT manifest {target}"),
            status,
            detail: error_detail(response).await,
        });
    }
    Ok(digest)
}

/// Uploads one blob unless the registry has it (a monolithic upload: POST, then PUT).
async fn upload(
    registry: &Registry,
    shown: &str,
    repo: &str,
    scope: &str,
    d: &Descriptor,
    bytes: Bytes,
    progress: &Sink,
) -> Result<(), OciError> {
    let none = HeaderMap::new();
    let blob = format!("/v2/{repo}/blobs/{}", d.digest);
    let head = registry
        .send(shown, Method::HEAD, &blob, &none, Bytes::new(), scope)
        .await?;
    if head.status() == StatusCode::OK {
        progress.finish(&d.digest);
        return Ok(());
    }
    let start = format!("/v2/{repo}/blobs/uploads/");
    let response = registry
        .send(shown, Method::POST, &start, &none, Bytes::new(), scope)
        .await?;
    if response.status() != StatusCode::ACCEPTED {
        let status = response.status();
        return Err(OciError::Status {
            reference: shown.into(),
            what: "POST blob upload".into(),
            status,
            detail: error_detail(response).await,
        });
    }
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| {
            transport(
                shown,
                "the registry started an upload without a Location".into(),
            )
        })?;
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{sep}digest={}", d.digest.replace(':', "%3A"));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    progress.start(&d.digest, d.size);
    let response = registry
        .send_with(shown, Method::PUT, &put, &headers, scope, || {
            Upload::reported(bytes.clone(), progress.clone(), d.digest.clone())
        })
        .await?;
    progress.finish(&d.digest);
    if response.status() != StatusCode::CREATED {
        let status = response.status();
        return Err(OciError::Status {
            reference: shown.into(),
            what: format!("PUT blob {}", d.digest),
            status,
            detail: error_detail(response).await,
        });
    }
    Ok(())
}

/// The names a component imports and exports (its own, not those of components nested in it).
fn interface(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    let mut is_component = false;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::Version { encoding, .. } if depth == 0 => {
                is_component = encoding == wasmparser::Encoding::Component;
            }
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => {
                depth += 1;
            }
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    if !is_component {
        return Err("a core module; publish a component".into());
    }
    Ok((imports, exports))
}
