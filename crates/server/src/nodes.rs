//! Node endpoints: the cluster's workers, as they registered and as the leader judges them,
//! and the liveness lease each node keeps alive through any server.

use crate::apps::find;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};
use shoal_api::{Node, ObjectRef};
use std::sync::Arc;

pub(crate) async fn list(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<Node>>, ApiError> {
    Ok(Json(state.objects.list::<Node>(None).await?.0))
}

pub(crate) async fn get(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<Node>, ApiError> {
    let what = ObjectRef::new("node", shoal_api::DEFAULT_NAMESPACE, &name);
    find(&state, &what).await.map(Json)
}

/// The key of node `name`'s liveness lease; its value is the etcd lease id.
pub fn lease_key(name: &str) -> String {
    format!("{}{name}", shoal_store::raw::NODE_LEASES)
}

/// Keeps node `name`'s etcd lease (TTL [`crate::liveness::LEASE_TTL`]) alive, creating it when
/// it is missing or expired. Any server can do it: the lease id lives in etcd.
pub(crate) async fn keep_lease(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    shoal_api::validate_dns_label(&name)
        .map_err(|m| ApiError::BadRequest(format!("node name: {m}")))?;
    let Some(etcd) = &state.leases else {
        return Err(ApiError::NotFound(
            "this server keeps no leases (a single node judges itself by its heartbeats)".into(),
        ));
    };
    let key = lease_key(&name);
    for _ in 0..3 {
        if let Some(kv) = state.objects.store().get(&key).await?
            && let Ok(id) = String::from_utf8_lossy(&kv.value).parse::<i64>()
            && etcd.keep_alive(id).await?
        {
            return Ok(Json(serde_json::json!({"lease": id})));
        }
        let id = etcd.grant_lease(crate::liveness::LEASE_TTL).await?;
        if etcd
            .create_with_lease(&key, id.to_string().as_bytes(), id)
            .await?
            .is_some()
        {
            return Ok(Json(serde_json::json!({"lease": id})));
        }
        // Another server made one meanwhile: drop ours, keep theirs alive.
        let _ = etcd.revoke(id).await;
    }
    Err(ApiError::Conflict(format!(
        "node/{name}: its lease keeps changing hands; retry"
    )))
}
