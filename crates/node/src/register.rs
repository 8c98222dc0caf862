//! A node's registration: its Node object, created on start and kept alive by heartbeats.

use shoal_api::{API_VERSION, Node, NodeSpec, NodeStatus, ObjectMeta};
use shoal_store::{Objects, Precondition, StoreError, node_key};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a node reports; the leading server calls it NotReady after 2 s without a report.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// Registers node `name` and sends its heartbeats until `shutdown`.
///
/// # Guarantees
/// The node writes its spec, labels and the heartbeat part of its status; never the phase,
/// which is the leading server's judgement. A failed heartbeat (store or servers down) is
/// retried at the next beat; the node keeps serving meanwhile.
pub async fn heartbeat(
    objects: Objects,
    name: String,
    labels: BTreeMap<String, String>,
    spec: NodeSpec,
    serving: Arc<AtomicU32>,
    shutdown: CancellationToken,
) {
    let key = node_key(&name);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let apps = serving.load(Ordering::Relaxed);
        let now = chrono::Utc::now();
        let beat = |n: &mut Node| {
            n.spec = spec.clone();
            n.metadata.labels = labels.clone();
            n.status.heartbeats += 1;
            n.status.last_heartbeat = Some(now);
            n.status.apps = apps;
            true
        };
        let result = match objects.update::<Node>(&key, beat).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let mut metadata = ObjectMeta::named(&name);
                metadata.labels = labels.clone();
                metadata.creation_timestamp = Some(now);
                let node = Node {
                    api_version: API_VERSION.into(),
                    kind: "Node".into(),
                    metadata,
                    spec: spec.clone(),
                    status: NodeStatus {
                        heartbeats: 1,
                        last_heartbeat: Some(now),
                        apps,
                        ..NodeStatus::default()
                    },
                };
                match objects.put(&key, node, Precondition::Absent).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if failing => {
                tracing::info!("node/{name}: heartbeats get through again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!("node/{name}: cannot send a heartbeat (still serving): {e}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
