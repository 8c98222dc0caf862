//! Node endpoints: the cluster's workers, as they registered and as the leader judges them,
//! how one joins (its credential) and is removed, and the liveness lease each node keeps
//! alive through any server.

use crate::apps::find;
use crate::{ApiError, ApiState, Role, auth};
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use http::StatusCode;
use shoal_api::{Node, ObjectRef};
use shoal_store::Precondition;
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

#[derive(serde::Deserialize)]
pub(crate) struct JoinQuery {
    #[serde(default)]
    replace: bool,
}

/// Gives node `name` its credential: to the join token for a name no node has, and to a
/// client (an operator making it for the node, or with `replace=true` a new one that revokes
/// the old).
pub(crate) async fn join(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    Query(q): Query<JoinQuery>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    shoal_api::validate_dns_label(&name)
        .map_err(|m| ApiError::BadRequest(format!("node name: {m}")))?;
    if state.join_token.is_none() {
        return Err(ApiError::NotFound(
            "this server admits no nodes (shoal up is its own node)".into(),
        ));
    }
    if q.replace && !role.is_admin() {
        return Err(ApiError::Forbidden(
            "only the client token may replace a node's credential".into(),
        ));
    }
    let credential = auth::issue(&state, &name, q.replace).await?;
    tracing::info!("node/{name} has a new credential");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "node": name, "credential": credential })),
    ))
}

/// Removes node `name` from the cluster: revokes its credential (every server refuses it
/// from now on), drops its lease and its Node object. Its apps are placed elsewhere, as when
/// a node dies; a node still running under that name can no longer reach the servers.
pub(crate) async fn delete(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    shoal_api::validate_dns_label(&name)
        .map_err(|m| ApiError::BadRequest(format!("node name: {m}")))?;
    let revoked = auth::revoke(&state, &name).await?;
    state
        .objects
        .store()
        .delete(&lease_key(&name), Precondition::None)
        .await?;
    let existed = state
        .objects
        .delete::<Node>(shoal_api::DEFAULT_NAMESPACE, &name, Precondition::None)
        .await?
        .is_some();
    if !revoked && !existed {
        return Err(ApiError::NotFound(format!("node/{name} not found")));
    }
    Ok(Json(serde_json::json!({ "deleted": name })))
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

/// Certifies the key of node `name` (its own request, by its credential) for its TLS name,
/// `NAME.nodes.shoal.internal`, with the cluster's CA: what the node presents to servers and
/// to other nodes reaching it.
pub(crate) async fn certificate(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Json(req): Json<shoal_api::NodeCertificateRequest>,
) -> Result<Json<shoal_api::NodeCertificate>, ApiError> {
    let Some(ca) = &state.cluster_ca else {
        return Err(ApiError::NotFound(
            "this server issues no node certificates (shoal up is its own node)".into(),
        ));
    };
    let names = [shoal_tls::node_server_name(&name)];
    let certificate = ca
        .issue_for(&req.public_key, &names)
        .map_err(|e| ApiError::BadRequest(format!("node/{name}: publicKey: {e}")))?;
    Ok(Json(shoal_api::NodeCertificate {
        certificate,
        ca: ca.cert_pem().to_string(),
    }))
}
