//! Pulling a component: the reference resolved to a manifest digest, the manifest read
//! (bounded) and checked, its format told from its media types, and the one component blob
//! fetched and checked against its descriptor (size, then digest) before it is returned.

use crate::client::{error_detail, read_limited, transport};
use crate::progress::Sink;
use crate::{Descriptor, MAX_MANIFEST_BYTES, Manifest, OciError, Registry, media};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::Bytes;
use shoal_api::{Digest, OciRef};

/// What a pull gave.
#[derive(Debug)]
pub struct Pulled {
    /// The manifest's digest: what the reference resolved to.
    pub digest: Digest,
    /// The component's bytes, checked.
    pub component: Vec<u8>,
    /// What kind of artifact held it.
    pub format: Format,
}

/// The artifact formats Shoal runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A CNCF TAG-Runtime Wasm artifact (`wkg oci push`, `shoal push`).
    WasmArtifact,
    /// A plain image whose one layer holds one `.wasm` file (`docker build` from `scratch`).
    Image,
}

/// Pulls the component `reference` names from `registry`, refusing any blob over `max_bytes`.
///
/// # Errors
/// An [`OciError`] naming the reference: unreachable, refused, a digest or size that does not
/// match, or an artifact that is not a component.
pub async fn pull(
    registry: &Registry,
    reference: &OciRef,
    max_bytes: u64,
) -> Result<Pulled, OciError> {
    pull_showing(registry, reference, max_bytes, &crate::progress::none()).await
}

/// As [`pull`], telling `progress` how the download goes.
///
/// # Errors
/// As [`pull`].
pub async fn pull_showing(
    registry: &Registry,
    reference: &OciRef,
    max_bytes: u64,
    progress: &Sink,
) -> Result<Pulled, OciError> {
    match pull_unless_held(registry, reference, max_bytes, |_| false, progress).await? {
        Pull::Pulled(p) => Ok(p),
        Pull::Held { .. } => unreachable!("nothing is held"),
    }
}

/// What [`pull_unless_held`] did.
#[derive(Debug)]
pub enum Pull {
    /// The component was fetched.
    Pulled(Pulled),
    /// The manifest names a Wasm artifact whose component the caller holds already: only the
    /// manifest was fetched.
    Held {
        /// The manifest's digest.
        digest: Digest,
        /// The component's digest.
        component: Digest,
    },
}

/// As [`pull`], but the component is not downloaded when the manifest names a Wasm artifact
/// whose layer `held` says the caller has (a content-addressed store: same digest, same bytes).
///
/// # Errors
/// As [`pull`].
pub async fn pull_unless_held(
    registry: &Registry,
    reference: &OciRef,
    max_bytes: u64,
    held: impl Fn(&Digest) -> bool,
    progress: &Sink,
) -> Result<Pull, OciError> {
    let shown = reference.to_string();
    let Resolved { digest, manifest } = resolve(registry, reference).await?;
    let (format, layer) = classify(&shown, &manifest)?;
    if format == Format::WasmArtifact
        && let Ok(component) = Digest::parse(&layer.digest)
        && held(&component)
    {
        return Ok(Pull::Held { digest, component });
    }
    let blob = fetch_blob(registry, reference, layer, max_bytes, progress).await?;
    let component = match format {
        Format::WasmArtifact => blob,
        Format::Image if layer.media_type == media::OCI_LAYER_TAR => {
            wasm_in_tar(&shown, &blob[..], max_bytes)?
        }
        Format::Image => wasm_in_tar(&shown, flate2::read::GzDecoder::new(&blob[..]), max_bytes)?,
    };
    Ok(Pull::Pulled(Pulled {
        digest,
        component,
        format,
    }))
}

/// A reference resolved: the digest of what it names, and the image manifest it leads to.
pub(crate) struct Resolved {
    /// The digest of the manifest (or image index) the reference names.
    pub digest: Digest,
    /// The image manifest: the one named, or the Wasm platform's of an index.
    pub manifest: Manifest,
}

/// Fetches the manifest `reference` names, checked against the digest it is pinned to and the
/// one the registry claims. An image index leads to its Wasm platform's manifest (see
/// [`pick_platform`]), fetched by digest and checked against the index's descriptor.
pub(crate) async fn resolve(registry: &Registry, reference: &OciRef) -> Result<Resolved, OciError> {
    let shown = reference.to_string();
    let target = match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".into(),
    };
    let (digest, content_type, body) = get_manifest(registry, reference, &target).await?;
    if let Some(want) = &reference.digest
        && *want != digest
    {
        return Err(verification(
            &shown,
            format!("the registry served a manifest with digest {digest}"),
        ));
    }
    let probe: Probe = serde_json::from_slice(&body).map_err(|e| OciError::Format {
        reference: shown.clone(),
        message: format!("the manifest is not JSON ({content_type}): {e}"),
    })?;
    let kind = probe.media_type.as_deref().unwrap_or(&content_type);
    if !(kind == media::OCI_INDEX || kind == media::DOCKER_LIST || probe.manifests.is_some()) {
        let manifest = parse_manifest(&shown, &content_type, &body)?;
        return Ok(Resolved { digest, manifest });
    }
    let index: Index = serde_json::from_slice(&body).map_err(|e| OciError::Format {
        reference: shown.clone(),
        message: format!("the image index is not well formed: {e}"),
    })?;
    let chosen = pick_platform(&shown, &index)?;
    let (child, child_type, child_body) = get_manifest(registry, reference, &chosen.digest).await?;
    if child.to_string() != chosen.digest || child_body.len() as u64 != chosen.size {
        return Err(verification(
            &shown,
            format!(
                "the index names manifest {} ({} bytes), but the registry served {child} ({} bytes)",
                chosen.digest,
                chosen.size,
                child_body.len()
            ),
        ));
    }
    let manifest = parse_manifest(&shown, &child_type, &child_body)?;
    Ok(Resolved { digest, manifest })
}

/// Fetches one manifest by tag or digest: its digest (of the bytes served), content type and
/// bytes (at most [`MAX_MANIFEST_BYTES`]).
async fn get_manifest(
    registry: &Registry,
    reference: &OciRef,
    target: &str,
) -> Result<(Digest, String, Bytes), OciError> {
    let shown = reference.to_string();
    let repo = &reference.repository;
    let mut headers = HeaderMap::new();
    let accept = [
        media::OCI_MANIFEST,
        media::DOCKER_MANIFEST,
        media::OCI_INDEX,
        media::DOCKER_LIST,
    ]
    .join(", ");
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_str(&accept).expect("static media types"),
    );
    let path = format!("/v2/{repo}/manifests/{target}");
    let response = registry
        .send(
            &shown,
            Method::GET,
            &path,
            &headers,
            Bytes::new(),
            &pull_scope(reference),
        )
        .await?;
    let status = response.status();
    if !status.is_success() {
        return Err(OciError::Status {
            reference: shown,
            what: format!("GET manifest {target}"),
            status,
            detail: error_detail(response).await,
        });
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let claimed = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v).ok());
    let body = read_limited(response, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| verification(&shown, format!("manifest: {e}")))?;
    let digest = Digest::of(&body);
    if let Some(claimed) = claimed
        && claimed != digest
    {
        return Err(verification(
            &shown,
            format!("the registry says the manifest is {claimed}, but its bytes are {digest}"),
        ));
    }
    Ok((digest, content_type, body))
}

fn parse_manifest(shown: &str, content_type: &str, body: &[u8]) -> Result<Manifest, OciError> {
    serde_json::from_slice(body).map_err(|e| OciError::Format {
        reference: shown.into(),
        message: format!("the manifest is not an image manifest ({content_type}): {e}"),
    })
}

/// What tells an index from a manifest.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

/// An image index (or a Docker manifest list): one manifest per platform.
#[derive(serde::Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

/// One manifest of an index.
#[derive(serde::Deserialize)]
struct IndexEntry {
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

/// A manifest's platform.
#[derive(serde::Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// The Wasm platform's manifest of an index: architecture `wasm`, preferring os `wasip2`
/// (components) over `wasip1` and `wasi`. An index without one is refused, naming the
/// platforms it has.
fn pick_platform<'i>(shown: &str, index: &'i Index) -> Result<&'i IndexEntry, OciError> {
    let rank = |os: &str| match os {
        "wasip2" => 0,
        "wasip1" | "wasi" => 1,
        _ => 2,
    };
    index
        .manifests
        .iter()
        .filter_map(|m| {
            let p = m.platform.as_ref()?;
            (p.architecture == "wasm").then(|| (rank(&p.os), m))
        })
        .min_by_key(|(r, _)| *r)
        .map(|(_, m)| m)
        .ok_or_else(|| {
            let found: Vec<String> = index
                .manifests
                .iter()
                .map(|m| match &m.platform {
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => "(no platform)".into(),
                })
                .collect();
            OciError::Format {
                reference: shown.into(),
                message: format!(
                    "an image index without a wasm platform (it has [{}]); Shoal runs the manifest whose platform architecture is wasm",
                    found.join(", ")
                ),
            }
        })
}

/// The token scope of a pull from `reference`'s repository.
pub(crate) fn pull_scope(reference: &OciRef) -> String {
    format!("repository:{}:pull", reference.repository)
}

/// The artifact's format and the layer that holds the component.
fn classify<'m>(shown: &str, m: &'m Manifest) -> Result<(Format, &'m Descriptor), OciError> {
    if m.is_spin_app() {
        return Err(OciError::Format {
            reference: shown.into(),
            message: "this is a Spin application, not one component; apply it with `shoal apply --spin oci://…`".into(),
        });
    }
    match m.config.media_type.as_str() {
        media::WASM_CONFIG => {
            let wasm: Vec<_> = m
                .layers
                .iter()
                .filter(|l| l.media_type == media::WASM_LAYER)
                .collect();
            match (wasm.as_slice(), m.layers.len()) {
                ([one], 1) => Ok((Format::WasmArtifact, one)),
                _ => Err(format_error(
                    shown,
                    &format!(
                        "a Wasm artifact with {} layers, {} of them {}; it must have exactly one",
                        m.layers.len(),
                        wasm.len(),
                        media::WASM_LAYER
                    ),
                    m,
                )),
            }
        }
        media::OCI_CONFIG | media::DOCKER_CONFIG => match m.layers.as_slice() {
            [one]
                if [
                    media::OCI_LAYER_TAR,
                    media::OCI_LAYER_TAR_GZIP,
                    media::DOCKER_LAYER_TAR_GZIP,
                ]
                .contains(&one.media_type.as_str()) =>
            {
                Ok((Format::Image, one))
            }
            _ => Err(format_error(
                shown,
                "an image that is not one tar layer holding a .wasm file",
                m,
            )),
        },
        _ => Err(format_error(shown, "an artifact of an unknown kind", m)),
    }
}

fn format_error(shown: &str, what: &str, m: &Manifest) -> OciError {
    let layers: Vec<_> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    OciError::Format {
        reference: shown.into(),
        message: format!(
            "{what} (config {}, layers [{}]); Shoal runs a Wasm artifact (config {}, one {} layer) or an image of one {}, {} or {} layer holding one .wasm file",
            m.config.media_type,
            layers.join(", "),
            media::WASM_CONFIG,
            media::WASM_LAYER,
            media::OCI_LAYER_TAR,
            media::OCI_LAYER_TAR_GZIP,
            media::DOCKER_LAYER_TAR_GZIP,
        ),
    }
}

fn verification(shown: &str, message: String) -> OciError {
    OciError::Verification {
        reference: shown.into(),
        message,
    }
}

/// The most redirects a blob download follows (registries send blobs from storage).
const MAX_REDIRECTS: usize = 5;
/// How long a blob download may go without a byte before it is given up.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The blob `d` describes, from `reference`'s repository, checked against its size and
/// digest; its bytes reported to `progress` as they arrive.
pub(crate) async fn fetch_blob(
    registry: &Registry,
    reference: &OciRef,
    d: &Descriptor,
    max_bytes: u64,
    progress: &Sink,
) -> Result<Vec<u8>, OciError> {
    let shown = &reference.to_string();
    let scope = &pull_scope(reference);
    let digest = Digest::parse(&d.digest).map_err(|_| {
        verification(
            shown,
            format!("layer digest {:?} is not a sha256 digest", d.digest),
        )
    })?;
    if d.size > max_bytes {
        return Err(verification(
            shown,
            format!(
                "layer {digest} is {} bytes, over the limit of {max_bytes}",
                d.size
            ),
        ));
    }
    let mut url = format!("/v2/{}/blobs/{digest}", reference.repository);
    let no_headers = HeaderMap::new();
    for _ in 0..=MAX_REDIRECTS {
        let response = registry
            .send(shown, Method::GET, &url, &no_headers, Bytes::new(), scope)
            .await?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("");
            let base: http::Uri = if url.starts_with('/') {
                format!("{}{url}", registry.base())
                    .parse()
                    .map_err(|_| transport(shown, format!("bad blob URL {url}")))?
            } else {
                url.parse()
                    .map_err(|_| transport(shown, format!("bad blob URL {url}")))?
            };
            url = shoal_blobs::resolve(&base, location)
                .ok_or_else(|| {
                    transport(shown, format!("blob {digest} redirects to {location:?}"))
                })?
                .to_string();
            continue;
        }
        if status != StatusCode::OK {
            return Err(OciError::Status {
                reference: shown.into(),
                what: format!("GET blob {digest}"),
                status,
                detail: error_detail(response).await,
            });
        }
        progress.start(&d.digest, d.size);
        let bytes = read_counted(response, d, progress)
            .await
            .map_err(|e| verification(shown, format!("layer {digest}: {e}")))?;
        progress.finish(&d.digest);
        if bytes.len() as u64 != d.size {
            return Err(verification(
                shown,
                format!(
                    "layer {digest} is {} bytes, but its descriptor says {} (truncated or altered)",
                    bytes.len(),
                    d.size
                ),
            ));
        }
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(verification(
                shown,
                format!(
                    "the registry served other bytes for layer {digest} (their digest is {actual})"
                ),
            ));
        }
        return Ok(bytes);
    }
    Err(transport(
        shown,
        format!("blob {digest}: more than {MAX_REDIRECTS} redirects"),
    ))
}

/// A blob's body, read frame by frame and reported; one byte more than the descriptor says
/// is read at most (it tells a longer blob from an exact one).
async fn read_counted(
    response: http::Response<hyper::body::Incoming>,
    d: &Descriptor,
    progress: &Sink,
) -> Result<Vec<u8>, String> {
    use http_body_util::BodyExt;
    let limit = usize::try_from(d.size)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut body = response.into_body();
    let mut bytes = Vec::with_capacity(limit.min(64 << 20));
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
            Err(_) => return Err(format!("no byte for {IDLE_TIMEOUT:?}")),
            Ok(None) => return Ok(bytes),
            Ok(Some(frame)) => frame.map_err(|e| e.to_string())?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = limit - bytes.len();
        bytes.extend_from_slice(&data[..data.len().min(room)]);
        progress.advance(&d.digest, data.len().min(room) as u64);
        if bytes.len() >= limit {
            return Ok(bytes);
        }
    }
}

/// The one `.wasm` file in an image layer (a tar stream), at most `max_bytes` unpacked.
fn wasm_in_tar(
    shown: &str,
    layer: impl std::io::Read,
    max_bytes: u64,
) -> Result<Vec<u8>, OciError> {
    let bad = |message: String| OciError::Format {
        reference: shown.into(),
        message,
    };
    // A small compressed layer may unpack to anything: bound what is read from it.
    let bounded = std::io::Read::take(layer, max_bytes.saturating_add(1));
    let mut archive = tar::Archive::new(bounded);
    let mut found: Option<(String, Vec<u8>)> = None;
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("the image layer is not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            bad(format!(
                "the image layer is not a complete tar archive within {max_bytes} bytes: {e}"
            ))
        })?;
        let path = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if !entry.header().entry_type().is_file() || !path.ends_with(".wasm") {
            continue;
        }
        if let Some((first, _)) = &found {
            return Err(bad(format!(
                "the image layer holds more than one .wasm file ({first}, {path}); Shoal runs an image of exactly one"
            )));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)
            .map_err(|e| bad(format!("{path} in the image layer: {e}")))?;
        if bytes.len() as u64 != size {
            return Err(bad(format!(
                "{path} in the image layer is cut short: more than {max_bytes} bytes unpacked, or a truncated layer"
            )));
        }
        found = Some((path, bytes));
    }
    found
        .map(|(_, b)| b)
        .ok_or_else(|| bad("the image layer holds no .wasm file".into()))
}
