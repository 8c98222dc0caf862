//! A node's registration: its Node object, created on start and kept alive by heartbeats.

use shoal_api::{API_VERSION, Node, NodeSpec, NodeStatus, ObjectMeta};
use shoal_store::{Objects, Precondition, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a node reports; the leading server calls it NotReady after 2 s without a report.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// With a lease, how many beats between two writes of the Node object (its load, for people).
const STATUS_EVERY: u32 = 10;

/// Why a node's lease could not be renewed: what each server said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LeaseError(pub String);

/// Keeps a node's liveness lease alive (in a cluster: through the servers, on etcd).
#[async_trait::async_trait]
pub trait LeaseKeeper: Send + Sync + 'static {
    /// Renews (or re-creates) the lease of node `name`.
    ///
    /// # Errors
    /// No server renewed it.
    async fn keep(&self, name: &str) -> Result<(), LeaseError>;
}

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
    lease: Option<Arc<dyn LeaseKeeper>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let (mut beats, mut reported) = (0u32, None);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let apps = serving.load(Ordering::Relaxed);
        beats = beats.wrapping_add(1);
        if let Some(lease) = &lease {
            let kept = lease.keep(&name).await;
            // The lease is the heartbeat; the Node object is written when the load changed,
            // and now and then for its `lastHeartbeat`.
            if kept.is_ok() && reported == Some(apps) && beats % STATUS_EVERY != 0 {
                failing = false;
                continue;
            }
            if let Err(e) = kept {
                if !failing {
                    tracing::warn!("node/{name}: cannot renew its lease (still serving): {e}");
                }
                failing = true;
                continue;
            }
        }
        let now = chrono::Utc::now();
        let beat = |n: &mut Node| {
            n.spec = spec.clone();
            n.metadata.labels = labels.clone();
            n.status.heartbeats += 1;
            n.status.last_heartbeat = Some(now);
            n.status.apps = apps;
            true
        };
        let result = match objects
            .update::<Node>(shoal_api::DEFAULT_NAMESPACE, &name, beat)
            .await
        {
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
                match objects.put(node, Precondition::Absent).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if result.is_ok() {
            reported = Some(apps);
        }
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
