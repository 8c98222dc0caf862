//! Access token endpoints (admin only, see `auth`): list, create (shown once), delete.

use crate::tokens::{self, Access};
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use shoal_api::{CreatedToken, TokenInfo, TokenRequest, TokenRole};
use std::sync::Arc;

/// `GET /v1/tokens`.
pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(tokens::all(&state).await?))
}

/// `POST /v1/tokens`: a new token, shown this once.
pub(crate) async fn create(
    State(state): State<Arc<ApiState>>,
    Json(req): Json<TokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let namespace = match (req.role, req.namespace) {
        (TokenRole::Admin, Some(ns)) => {
            return Err(ApiError::Invalid(format!(
                "token: namespace: an admin token reaches every namespace, not only {ns}; leave the namespace out, or choose role view or edit"
            )));
        }
        (TokenRole::Admin, None) => None,
        (_, None) => {
            return Err(ApiError::Invalid(format!(
                "token: namespace: a {} token reaches one namespace; name it",
                req.role
            )));
        }
        (_, Some(ns)) => {
            crate::namespaces::existing(&state, &ns).await?;
            Some(ns)
        }
    };
    let created = tokens::issue(&state, namespace, req.role).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /v1/tokens/{id}`: the token is refused from the next request on.
pub(crate) async fn delete(
    State(state): State<Arc<ApiState>>,
    access: Option<Extension<Access>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if access.is_some_and(|Extension(a)| a.id == id) {
        return Err(ApiError::Conflict(format!(
            "token {id} is the one this request carries; delete it with another admin token"
        )));
    }
    if tokens::revoke(&state, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("token {id} not found")))
    }
}
