//! `POST /v1/pull`: an OCI artifact pulled into the blob store ahead of an apply, its
//! progress streamed as JSON lines ([`PullEvent`]) so the CLI can draw bars for bytes the
//! server downloads.
//!
//! A component answers its digest and the reference pinned to the manifest digest; the CLI
//! applies that pinned reference, which resolves (one manifest request) to the blob now
//! held. A Spin application answers its Apps, ready to apply: the locked app read with the
//! CLI's variables, each component's Wasm stored, each component's files packed into one
//! tree. Either way nodes fetch from the servers, never from the registry.

use crate::{ApiError, ApiState, oci};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use shoal_api::pull::{PullEvent, PullRequest, SpinPull};
use shoal_api::{ComponentRef, Digest, FileMount, OciRef, WasmKind};
use shoal_manifest::spin::{Content, SpinFiles, SpinSource, Values};
use shoal_oci::Registry;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// How much bigger than one upload a whole Spin application may be.
const SPIN_TOTAL_UPLOADS: u64 = 4;

/// Starts the pull and streams its events; a request refused up front (not an OCI
/// reference, or one the policy forbids) is a 400 instead.
pub(crate) async fn pull(
    State(state): State<Arc<ApiState>>,
    headers: http::HeaderMap,
    Json(req): Json<PullRequest>,
) -> Result<Response, ApiError> {
    let reference = match ComponentRef::parse(&req.reference) {
        Ok(ComponentRef::Oci(r)) => r,
        Ok(_) => {
            return Err(ApiError::Invalid(format!(
                "reference: '{}' is not oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]",
                req.reference
            )));
        }
        Err(e) => return Err(ApiError::Invalid(format!("reference: {e}"))),
    };
    let registry = oci::registry(&state, &headers, &reference).map_err(ApiError::Invalid)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let progress: shoal_oci::progress::Sink = Arc::new(Stream::new(tx.clone()));
        let end = match req.spin {
            None => component(&state, &registry, &reference, &progress).await,
            Some(spin) => spin_app(&state, &registry, &reference, spin, &progress).await,
        };
        let _ = tx.send(end.unwrap_or_else(|e| PullEvent::Error {
            message: match e {
                ApiError::Invalid(m) | ApiError::Unavailable(m) => m,
                other => other.to_string(),
            },
        }));
    });
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).expect("JSON");
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(line), rx))
    });
    Ok(Response::builder()
        .header(http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(lines))
        .expect("static response"))
}

/// A component: pulled unless held, stored.
async fn component(
    state: &ApiState,
    registry: &Registry,
    reference: &OciRef,
    progress: &shoal_oci::progress::Sink,
) -> Result<PullEvent, ApiError> {
    let blobs = state.blobs.clone();
    let pull = shoal_oci::pull_unless_held(
        registry,
        reference,
        state.max_upload,
        |d| blobs.contains(d),
        progress,
    )
    .await
    .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let (manifest, component) = match pull {
        shoal_oci::Pull::Held { digest, component } => (digest, component),
        shoal_oci::Pull::Pulled(p) => (p.digest, oci::store(state, p.component).await?),
    };
    let mut resolved = reference.clone();
    resolved.digest = Some(manifest);
    state.pinned.insert(&resolved, &component);
    Ok(PullEvent::Component {
        reference: resolved.to_string(),
        component,
    })
}

/// A Spin application: every layer not held pulled, and its Apps made.
async fn spin_app(
    state: &ApiState,
    registry: &Registry,
    reference: &OciRef,
    spin: SpinPull,
    progress: &shoal_oci::progress::Sink,
) -> Result<PullEvent, ApiError> {
    let invalid = |m: String| ApiError::Invalid(format!("{reference}: {m}"));
    let blobs = state.blobs.clone();
    let artifact = shoal_oci::pull_spin(
        registry,
        reference,
        state.max_upload,
        state.max_upload.saturating_mul(SPIN_TOTAL_UPLOADS),
        |d| blobs.contains(d),
        progress,
    )
    .await
    .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let values = Values {
        given: spin.variables,
        env: spin.env,
        names_only: false,
    };
    let app = shoal_manifest::spin::locked::parse_locked(
        &reference.to_string(),
        &artifact.locked,
        &values,
        &spin.namespace,
    )
    .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let source = pinned(reference, artifact.digest.clone());
    // Bytes by digest: pulled now, inline in the locked app, or held from an earlier pull.
    let bytes_of = |digest: &Digest, inline: &Option<Vec<u8>>| -> Result<Vec<u8>, String> {
        if let Some(b) = artifact.blobs.get(digest).or(inline.as_ref()) {
            return Ok(b.clone());
        }
        std::fs::read(state.blobs.path(digest))
            .map_err(|_| format!("the locked app names {digest}, which no layer holds"))
    };
    // A component's bytes (its source, or a dependency's), checked to be one.
    let component_of = |field: &str, content: &Content| -> Result<Vec<u8>, ApiError> {
        let bytes = bytes_of(&content.digest, &content.inline)
            .map_err(|m| invalid(format!("{field}: {m}")))?;
        if WasmKind::of(&bytes) != Some(WasmKind::Component) {
            return Err(invalid(format!(
                "{field}: {} is not a WebAssembly component",
                content.digest
            )));
        }
        Ok(bytes)
    };
    let mut apps = Vec::new();
    for c in app.components {
        let SpinSource::Content(wasm) = &c.source else {
            unreachable!("a locked app names content only");
        };
        let bytes = component_of(&format!("component.{}.source", c.id), wasm)?;
        let digest = keep(state, bytes).await?;
        let mut spec_app = c.app;
        spec_app.spec.component = ComponentRef::Digest(digest);
        spec_app.spec.component_source = Some(source.clone());
        for (name, content) in &c.published_dependencies {
            let field = format!("component.{}.dependencies.\"{name}\".source", c.id);
            keep(state, component_of(&field, content)?).await?;
        }
        let mut files = Vec::new();
        for f in &c.files {
            let SpinFiles::Content { path, content } = f else {
                unreachable!("a locked app names content only");
            };
            let bytes = bytes_of(&content.digest, &content.inline)
                .map_err(|m| invalid(format!("component.{}.files ({path}): {m}", c.id)))?;
            files.push((PathBuf::from(path), bytes));
        }
        for (_, bytes) in &files {
            // Kept (not replicated: nodes need only the tree) so the next pull skips them.
            if !state.blobs.contains(&Digest::of(bytes)) {
                let (blobs, b) = (state.blobs.clone(), bytes.clone());
                let _ = tokio::task::spawn_blocking(move || blobs.put(&b)).await;
            }
        }
        if !files.is_empty() {
            let tree = shoal_blobs::trees::pack_bytes(&files)
                .map_err(|e| invalid(format!("component.{}.files: {e}", c.id)))?;
            spec_app.spec.files = vec![FileMount {
                source: ComponentRef::Digest(keep(state, tree).await?),
                mount: "/".into(),
                mode: None,
            }];
        }
        apps.push(spec_app);
    }
    Ok(PullEvent::Spin {
        reference: source,
        apps,
        notes: app.notes,
    })
}

/// Stores `bytes` and copies them to the other servers, unless they are here already (an
/// earlier pull of the same application).
async fn keep(state: &ApiState, bytes: Vec<u8>) -> Result<Digest, ApiError> {
    let digest = Digest::of(&bytes);
    if state.blobs.contains(&digest) {
        return Ok(digest);
    }
    oci::store(state, bytes).await
}

/// `reference` pinned to `digest`, keeping its tag: `oci://R/REPO:TAG@sha256:…`.
fn pinned(reference: &OciRef, digest: Digest) -> String {
    let mut r = reference.clone();
    r.digest = Some(digest);
    r.to_string()
}

/// A pull's progress as events, at most one `Progress` per blob per [`STEP`] bytes.
struct Stream {
    tx: UnboundedSender<PullEvent>,
    /// Per blob: its size and the bytes so far, and the count last reported.
    blobs: Mutex<std::collections::HashMap<String, (u64, u64)>>,
}

/// Bytes between two progress events of one blob.
const STEP: u64 = 256 << 10;

impl Stream {
    fn new(tx: UnboundedSender<PullEvent>) -> Self {
        Self {
            tx,
            blobs: Mutex::default(),
        }
    }
}

impl shoal_oci::Progress for Stream {
    fn start(&self, digest: &str, total: u64) {
        self.blobs
            .lock()
            .expect("progress lock")
            .insert(digest.into(), (0, 0));
        let _ = self.tx.send(PullEvent::Start {
            digest: digest.into(),
            total,
        });
    }

    fn advance(&self, digest: &str, bytes: u64) {
        let mut blobs = self.blobs.lock().expect("progress lock");
        let Some((done, reported)) = blobs.get_mut(digest) else {
            return;
        };
        *done += bytes;
        if *done - *reported >= STEP {
            *reported = *done;
            let _ = self.tx.send(PullEvent::Progress {
                digest: digest.into(),
                done: *done,
            });
        }
    }

    fn finish(&self, digest: &str) {
        self.blobs.lock().expect("progress lock").remove(digest);
        let _ = self.tx.send(PullEvent::Finish {
            digest: digest.into(),
        });
    }
}
