//! Components named by OCI reference: pulled once, at apply time, into the blob store
//! (replicated to the other servers as uploads are), and the spec rewritten to the pulled
//! component's digest, with the reference and the manifest digest it resolved to kept in
//! `spec.componentSource`. Nodes fetch the blob from the servers as they fetch uploads; a
//! registry that is down later stops nothing already applied, and a rollback names bytes the
//! servers hold.

use crate::{ApiError, ApiState};
use base64::Engine;
use shoal_api::{ComponentRef, Digest, ObjectRef, OciRef};
use shoal_oci::{Credentials, Registry};

/// Pulls `component` (the object's `field`) if it is an OCI reference and points it at the pulled blob; sets
/// `source` to where it came from. Beside a digest (a spec the API returned, applied again)
/// `source` is kept as given: it only informs. With any other component it is cleared.
///
/// # Errors
/// [`ApiError::Invalid`] naming the object, the field and the reference: the registry is
/// unreachable, refuses, or serves bytes or a format that are not a component.
pub(crate) async fn resolve(
    state: &ApiState,
    what: &ObjectRef,
    field: &str,
    headers: &http::HeaderMap,
    component: &mut ComponentRef,
    source: &mut Option<String>,
) -> Result<(), ApiError> {
    let ComponentRef::Oci(reference) = component else {
        if component.digest().is_none() {
            *source = None;
        }
        return Ok(());
    };
    let invalid = |e: String| ApiError::Invalid(format!("{what}: {field}: {e}"));
    let registry = registry(state, headers, reference).map_err(invalid)?;
    // A manifest named by digest never changes: one pulled before needs no request at all.
    if let Some(digest) = state.pinned.get(reference)
        && state.blobs.contains(&digest)
    {
        *source = Some(reference.to_string());
        *component = ComponentRef::Digest(digest);
        return Ok(());
    }
    let blobs = state.blobs.clone();
    let pull = shoal_oci::pull_unless_held(
        &registry,
        reference,
        state.max_upload,
        |d| blobs.contains(d),
        &shoal_oci::progress::none(),
    )
    .await
    .map_err(|e| invalid(e.to_string()))?;
    let (manifest, digest) = match pull {
        // Already here (an earlier pull or upload of the same bytes): only the tag was resolved.
        shoal_oci::Pull::Held { digest, component } => (digest, component),
        shoal_oci::Pull::Pulled(pulled) => (pulled.digest, store(state, pulled.component).await?),
    };
    let mut resolved = reference.clone();
    resolved.digest = Some(manifest);
    state.pinned.insert(&resolved, &digest);
    *source = Some(resolved.to_string());
    *component = ComponentRef::Digest(digest);
    Ok(())
}

/// The registry `reference` names, if the policy lets it be pulled from, with the
/// credentials the request carries.
///
/// # Errors
/// The policy's refusal, malformed credentials, or an unreadable `SSL_CERT_FILE`.
pub(crate) fn registry(
    state: &ApiState,
    headers: &http::HeaderMap,
    reference: &OciRef,
) -> Result<Registry, String> {
    let policy = &state.registry_policy;
    if !policy.allowed.is_empty() && !policy.allowed.contains(&reference.registry) {
        return Err(format!(
            "{reference}: this server pulls only from {} (--allowed-registry)",
            policy.allowed.join(", ")
        ));
    }
    if policy.require_digest && reference.digest.is_none() {
        return Err(format!(
            "{reference}: this server takes only references pinned to a digest (--require-digest); name it as …@sha256:DIGEST (`shoal push` prints it)"
        ));
    }
    let http = shoal_blobs::Fetcher::from_env(state.max_upload).map_err(|e| e.to_string())?;
    let credentials = credentials(headers)?;
    Ok(Registry::new(
        &reference.registry,
        credentials,
        &policy.insecure,
        http,
    ))
}

/// Stores pulled bytes in the blob store and copies them to the other servers.
pub(crate) async fn store(state: &ApiState, bytes: Vec<u8>) -> Result<Digest, ApiError> {
    let blobs = state.blobs.clone();
    let stored = bytes.clone();
    let digest = tokio::task::spawn_blocking(move || blobs.put(&stored))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(format!("cannot store a pulled blob: {e}")))?;
    if let Some(peers) = &state.peers {
        peers.replicate(&digest, bytes.into()).await;
    }
    Ok(digest)
}

/// The registry credentials the client sent with the apply ([`shoal_api::REGISTRY_AUTH_HEADER`],
/// `Basic base64(user:password)`), used for this pull and forgotten.
fn credentials(headers: &http::HeaderMap) -> Result<Credentials, String> {
    let Some(value) = headers.get(shoal_api::REGISTRY_AUTH_HEADER) else {
        return Ok(Credentials::Anonymous);
    };
    let bad = || {
        format!(
            "the {} header is not `Basic base64(user:password)`",
            shoal_api::REGISTRY_AUTH_HEADER
        )
    };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(bad)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(bad)?;
    let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Credentials::Basic {
        username: username.into(),
        password: password.into(),
    })
}

/// Which component each manifest pulled so far holds, by registry, repository and manifest
/// digest (not the digest alone: naming a manifest some other repository holds must not
/// skip this one's credentials): what lets an apply of a pinned reference skip the
/// registry. Bounded; forgetting costs one manifest request.
#[derive(Default)]
pub(crate) struct Pinned(std::sync::Mutex<std::collections::HashMap<String, Digest>>);

/// The most manifests [`Pinned`] remembers.
const MAX_PINNED: usize = 10_000;

impl Pinned {
    /// The key of a pinned reference; none for a tag alone (it may move).
    fn key(reference: &OciRef) -> Option<String> {
        let digest = reference.digest.as_ref()?;
        Some(format!(
            "{}/{}@{digest}",
            reference.registry, reference.repository
        ))
    }

    /// The component the pinned `reference` holds, if it was pulled here.
    pub(crate) fn get(&self, reference: &OciRef) -> Option<Digest> {
        let key = Self::key(reference)?;
        self.0.lock().expect("pinned lock").get(&key).cloned()
    }

    /// Remembers that the pinned `reference` holds `component`.
    pub(crate) fn insert(&self, reference: &OciRef, component: &Digest) {
        let Some(key) = Self::key(reference) else {
            return;
        };
        let mut map = self.0.lock().expect("pinned lock");
        if map.len() >= MAX_PINNED {
            map.clear();
        }
        map.insert(key, component.clone());
    }
}
