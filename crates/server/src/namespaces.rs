//! Namespace endpoints: list, get (with what its objects use), apply, delete (with
//! everything in it). `default` always exists; any other namespace must be created before
//! objects, tokens or routes can be in it.

use crate::auth::Role;
use crate::{ApiError, ApiState, apps, jobs, quota, tokens};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use shoal_api::{
    API_VERSION, App, ApplyResponse, ApplyResult, DEFAULT_NAMESPACE, Job, Namespace, ObjectRef,
};
use shoal_store::Precondition;
use std::sync::Arc;

fn ns_ref(name: &str) -> ObjectRef {
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
    Extension(role): Extension<Role>,
) -> Result<Json<Vec<Namespace>>, ApiError> {
    if let Some(own) = role.namespace() {
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
    let status = if result == ApplyResult::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ApplyResponse {
            result,
            object: stored,
        }),
    ))
}

/// Deletes a namespace and everything in it: its apps and jobs (as `shoal delete` deletes
/// each, their data with them) and its tokens. `default` cannot be deleted.
pub(crate) async fn delete(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let what = ns_ref(&name);
    if name == DEFAULT_NAMESPACE {
        return Err(ApiError::Forbidden(format!(
            "{what} cannot be deleted; delete the objects in it instead"
        )));
    }
    let Some(ns) = state
        .objects
        .get::<Namespace>(DEFAULT_NAMESPACE, &name)
        .await?
    else {
        return Err(ApiError::NotFound(format!("{what} not found")));
    };
    // Its tokens first, so that nothing is created in it while it empties.
    tokens::delete_in(&state, &ns).await?;
    for app in state.objects.list::<App>(Some(&name)).await?.0 {
        let path = Path((name.clone(), app.metadata.name));
        ignore_gone(apps::delete(State(state.clone()), path).await)?;
    }
    for job in state.objects.list::<Job>(Some(&name)).await?.0 {
        let path = Path((name.clone(), job.metadata.name));
        ignore_gone(jobs::delete(State(state.clone()), path).await)?;
    }
    state
        .objects
        .delete::<Namespace>(DEFAULT_NAMESPACE, &name, Precondition::None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An object deleted meanwhile is as good as deleted.
fn ignore_gone(r: Result<StatusCode, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
