//! Node endpoints: the cluster's workers, as they registered and as the leader judges them.

use crate::apps::find;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};
use shoal_api::{Node, ObjectRef};
use shoal_store::node_key;
use std::sync::Arc;

pub(crate) async fn list(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<Node>>, ApiError> {
    Ok(Json(state.objects.list::<Node>("nodes/").await?.0))
}

pub(crate) async fn get(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<Node>, ApiError> {
    let what = ObjectRef::new("node", shoal_api::DEFAULT_NAMESPACE, &name);
    find(&state, &what, &node_key(&name)).await.map(Json)
}
