//! Blob endpoints over the store's content-addressed [`BlobStore`].

use crate::{ApiError, ApiState};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use shoal_api::Digest;

use std::sync::Arc;

pub(crate) async fn upload(
    State(state): State<Arc<ApiState>>,
    headers: http::HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let limit = state.max_upload;
    let too_large = || ApiError::TooLarge(crate::upload_too_large(limit));
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::BadRequest(format!("upload failed: {e}"))
            }
        })?
        .to_bytes();
    let blobs = state.blobs.clone();
    let size = bytes.len();
    let stored = bytes.clone();
    let digest = tokio::task::spawn_blocking(move || blobs.put(&stored))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(format!("cannot store upload: {e}")))?;
    // Every live server has it before the upload is acknowledged.
    if let Some(peers) = &state.peers
        && !headers.contains_key(crate::peers::REPLICA)
    {
        peers.replicate(&digest, bytes).await;
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "digest": digest, "size": size })),
    ))
}

pub(crate) async fn exists(
    State(state): State<Arc<ApiState>>,
    Path(digest): Path<String>,
) -> StatusCode {
    if Digest::parse(&digest).is_ok_and(|d| state.blobs.contains(&d)) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

pub(crate) async fn download(
    State(state): State<Arc<ApiState>>,
    Path(digest): Path<String>,
    headers: http::HeaderMap,
) -> Result<Vec<u8>, ApiError> {
    let not_found = || ApiError::NotFound(format!("blob {digest} not found"));
    let digest = Digest::parse(&digest).map_err(|_| not_found())?;
    let path = state.blobs.path(&digest);
    if let Ok(bytes) = tokio::fs::read(&path).await {
        return Ok(bytes);
    }
    // Uploaded to another server (before this one joined, or while it was away): fetch it,
    // and keep it only if it is what its digest says. A peer's own fetch is answered from
    // here only, so a digest no server has is never chased from server to server.
    if headers.contains_key(crate::peers::REPLICA) {
        return Err(not_found());
    }
    let peers = state.peers.as_ref().ok_or_else(not_found)?;
    let bytes = peers.fetch(&digest).await.ok_or_else(not_found)?;
    let blobs = state.blobs.clone();
    let copy = bytes.clone();
    let stored = tokio::task::spawn_blocking(move || blobs.put(&copy))
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .map_err(|e| ApiError::Unavailable(format!("cannot store blob: {e}")))?;
    if stored != digest {
        return Err(ApiError::Unavailable(format!(
            "a peer sent blob {digest} with digest {stored}"
        )));
    }
    Ok(bytes.to_vec())
}
