//! `GET /v1/namespaces/{ns}/stats`: what each app of a namespace is doing now (requests, their
//! rate and durations lately, instances, memory), summed over the nodes that hold it — the
//! node beside a `shoal up` server, or every node of a cluster that answers in time.

use crate::reach::Nodes;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};
use shoal_api::AppStats;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a node may take to answer before its figures are left out.
const NODE_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) async fn stats(
    State(state): State<Arc<ApiState>>,
    Path(ns): Path<String>,
) -> Result<Json<Vec<AppStats>>, ApiError> {
    of_namespace(&state, &ns).await.map(Json)
}

/// The figures of namespace `ns`'s apps, by name.
pub(crate) async fn of_namespace(state: &ApiState, ns: &str) -> Result<Vec<AppStats>, ApiError> {
    if let Some(node) = &state.node {
        return Ok(node.app_stats(ns));
    }
    if state.join_token.is_none() {
        return Ok(Vec::new());
    }
    let nodes = Nodes::of(state, None).await?;
    let http = nodes.client(NODE_TIMEOUT)?;
    let asks = nodes.nodes.iter().map(|(name, url, credential)| {
        let request = http
            .get(format!("{url}/.shoal/stats"))
            .query(&[("namespace", ns)])
            .bearer_auth(credential);
        async move {
            let answer = async {
                request
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<Vec<AppStats>>()
                    .await
            }
            .await;
            answer
                .inspect_err(|e| tracing::warn!("node/{name}: no app figures: {e}"))
                .unwrap_or_default()
        }
    });
    let mut apps: BTreeMap<String, AppStats> = BTreeMap::new();
    for from_node in futures::future::join_all(asks).await {
        for app in from_node.into_iter().filter(|a| a.namespace == ns) {
            match apps.get_mut(&app.name) {
                Some(sum) => sum.add(&app),
                None => {
                    apps.insert(app.name.clone(), app);
                }
            }
        }
    }
    Ok(apps.into_values().collect())
}
