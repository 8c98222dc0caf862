//! API errors: an HTTP status and a message for the user, as JSON `{"error": "..."}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use shoal_store::StoreError;

/// An error the API reports to its client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or wrong token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such object or blob.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with another object or a concurrent write.
    #[error("{0}")]
    Conflict(String),
    /// 413: an upload over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 422: well-formed but invalid object.
    #[error("{0}")]
    Invalid(String),
    /// 503: the store is unavailable.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            _ => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
