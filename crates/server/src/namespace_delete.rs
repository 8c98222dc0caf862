//! Deleting a namespace with everything in it: its apps and jobs (as `shoal delete` deletes
//! each, their data with them) and its tokens. `default` cannot be deleted.

use crate::namespaces::ns_ref;
use crate::{ApiError, ApiState, apps, jobs, tokens};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shoal_api::{App, DEFAULT_NAMESPACE, Job, Namespace};
use shoal_store::Precondition;
use std::sync::Arc;

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
