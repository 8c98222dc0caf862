//! Namespace endpoints: list, get (with what its objects use), apply; deleting one with
//! everything in it is `namespace_delete`. `default` always exists; any other namespace must
//! be created before objects or tokens can be in it.

use crate::tokens::Access;
use crate::{ApiError, ApiState, apps, quota};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use shoal_api::{API_VERSION, ApplyResponse, ApplyResult, DEFAULT_NAMESPACE, Namespace, ObjectRef};
use shoal_store::Precondition;
use std::sync::Arc;

pub(crate) fn ns_ref(name: &str) -> ObjectRef {
    ObjectRef::new("namespace", DEFAULT_NAMESPACE, name)
}

/// Namespace `name`, or 404 saying how to create it; `default` exists without being stored.
pub(crate) async fn existing(state: &ApiState, name: &str) -> Result<Namespace, ApiError> {
    match state
        .objects
        .get::<Namespace>(DEFAULT_NAMESPACE, name)
        .await?
    {
        Some(ns) => Ok(ns),
        None if name == DEFAULT_NAMESPACE => Ok(Namespace::named(DEFAULT_NAMESPACE)),
        None => Err(ApiError::NotFound(format!(
            "namespace/{name} not found; an admin creates it with `shoal create namespace {name}`"
        ))),
    }
}

/// Every namespace (`default` first); a `view` or `edit` token sees only its own.
pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    access: Option<Extension<Access>>,
) -> Result<Json<Vec<Namespace>>, ApiError> {
    if let Some(own) = access.as_ref().and_then(|Extension(a)| a.only_namespace()) {
        return Ok(Json(vec![existing(&state, own).await?]));
    }
    let (mut stored, _) = state.objects.list::<Namespace>(None).await?;
    if !stored.iter().any(|n| n.metadata.name == DEFAULT_NAMESPACE) {
        stored.insert(0, Namespace::named(DEFAULT_NAMESPACE));
    }
    Ok(Json(stored))
}

/// One namespace, with what its objects use now (`status`).
pub(crate) async fn get(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<Namespace>, ApiError> {
    let mut ns = existing(&state, &name).await?;
    ns.status = Some(quota::usage(&state, &name).await?);
    Ok(Json(ns))
}

/// Creates, updates (its labels and quota) or leaves a namespace unchanged. A quota lowered
/// below what is used refuses the applies that would use more, and takes nothing away.
pub(crate) async fn apply(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ApplyResponse<Namespace>>), ApiError> {
    let what = ns_ref(&name);
    let mut ns: Namespace = apps::decode_object(&what, &body)?;
    if ns.metadata.name != name {
        return Err(ApiError::BadRequest(format!(
            "{what}: metadata.name says {}, but the request path says {name}",
            ns.metadata.name
        )));
    }
    if ns.api_version != API_VERSION {
        return Err(ApiError::Invalid(format!(
            "{what}: apiVersion: '{}' is not supported; use {API_VERSION}",
            ns.api_version
        )));
    }
    shoal_api::validate_dns_label(&name)
        .map_err(|e| ApiError::Invalid(format!("{what}: metadata.name: {e}")))?;
    if ns.metadata.namespace != DEFAULT_NAMESPACE {
        return Err(ApiError::Invalid(format!(
            "{what}: metadata.namespace: a namespace is in no namespace; leave it out"
        )));
    }
    ns.status = None;
    let _guard = state.apply_lock.lock().await;
    let (result, stored) = match state
        .objects
        .get::<Namespace>(DEFAULT_NAMESPACE, &name)
        .await?
    {
        None => {
            ns.metadata.generation = 1;
            ns.metadata.creation_timestamp = Some(chrono::Utc::now());
            let stored = state.objects.put(ns, Precondition::Absent).await?;
            (ApplyResult::Created, stored)
        }
        Some(current)
            if current.spec == ns.spec && current.metadata.labels == ns.metadata.labels =>
        {
            (ApplyResult::Unchanged, current)
        }
        Some(mut current) => {
            let rv = current.metadata.resource_version;
            if current.spec != ns.spec {
                current.metadata.generation += 1;
                current.spec = ns.spec;
            }
            current.metadata.labels = ns.metadata.labels;
            let stored = state
                .objects
                .put(current, Precondition::ModRevision(rv))
                .await?;
            (ApplyResult::Configured, stored)
        }
    };
    Ok(apps::applied(&state, &what, None, result, stored).await)
}
