//! The node liveness controller (run by the leading server). In a cluster a node keeps an etcd
//! lease alive through any server; when it lapses ([`LEASE_TTL`]) etcd deletes it and the node
//! is NotReady. A single node (`shoal up`) has no etcd: there a node whose heartbeat counter
//! stops for [`GRACE`] is NotReady, timed by this server's clock (never the node's).

use crate::metrics::{Controller, ServerMetrics};
use shoal_api::{EventReason, Node, NodePhase};
use shoal_store::Objects;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Silence after which a node is NotReady. With heartbeats every 500 ms and a check every
/// [`CHECK`], a dead node is NotReady within 2.25 s.
pub const GRACE: Duration = Duration::from_millis(2000);
/// How often the controller looks.
pub const CHECK: Duration = Duration::from_millis(250);
/// TTL, in seconds, of a node's liveness lease in a cluster (kept alive every 500 ms).
pub const LEASE_TTL: u64 = 2;

/// How a node proves it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A cluster: its etcd lease (`leases/nodes/NAME`) exists; etcd deletes it when the node
    /// stops renewing it for [`LEASE_TTL`].
    Lease,
    /// A single node: its heartbeat counter moves.
    Heartbeats,
}

/// The phase of `node` in a cluster, given whether its lease exists.
pub fn judge_lease(node: &Node, has_lease: bool) -> NodePhase {
    match (has_lease, node.status.phase) {
        (true, _) => NodePhase::Ready,
        // Never leased yet: still starting.
        (false, NodePhase::Pending) => NodePhase::Pending,
        (false, _) => NodePhase::NotReady,
    }
}

/// What the controller last saw of a node: its heartbeat counter, and when it last moved.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    heartbeats: u64,
    at: Instant,
}

/// The phase `node` should have, given what was seen of it before (`None`: never, since this
/// server leads), and what to remember now.
pub fn judge(node: &Node, before: Option<Seen>, now: Instant) -> (NodePhase, Seen) {
    let count = node.status.heartbeats;
    let seen = match before {
        Some(b) if b.heartbeats == count => b,
        // A new leader gives every node a full grace period from when it first looks.
        _ => Seen {
            heartbeats: count,
            at: now,
        },
    };
    let moved = before.is_some_and(|b| b.heartbeats != count);
    let phase = if now.duration_since(seen.at) >= GRACE {
        NodePhase::NotReady
    } else if moved || node.status.phase == NodePhase::Ready {
        NodePhase::Ready
    } else {
        node.status.phase
    };
    (phase, seen)
}

/// Runs until `shutdown` (when this server stops leading).
/// Each pass is counted in `metrics`.
pub async fn run(
    objects: Objects,
    proof: Proof,
    source: String,
    metrics: Arc<ServerMetrics>,
    shutdown: CancellationToken,
) {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut pass = metrics.pass(Controller::Liveness);
        let nodes = match objects.list::<Node>(None).await {
            Ok((nodes, _)) => nodes,
            Err(e) => {
                pass.failed();
                tracing::warn!("node liveness: cannot list nodes: {e}");
                continue;
            }
        };
        let leased: Vec<String> = match proof {
            Proof::Heartbeats => Vec::new(),
            Proof::Lease => match objects.store().list(shoal_store::raw::NODE_LEASES).await {
                Ok((kvs, _)) => kvs
                    .into_iter()
                    .filter_map(|kv| {
                        kv.key
                            .strip_prefix(shoal_store::raw::NODE_LEASES)
                            .map(str::to_string)
                    })
                    .collect(),
                Err(e) => {
                    pass.failed();
                    tracing::warn!("node liveness: cannot list leases: {e}");
                    continue;
                }
            },
        };
        let now = Instant::now();
        seen.retain(|name, _| nodes.iter().any(|n| n.metadata.name == *name));
        for node in nodes {
            let name = node.metadata.name.clone();
            let (phase, message) = match proof {
                Proof::Lease => (
                    judge_lease(&node, leased.contains(&name)),
                    format!("its lease expired: no heartbeat reached a server for {LEASE_TTL}s"),
                ),
                Proof::Heartbeats => {
                    let (phase, now_seen) = judge(&node, seen.get(&name).copied(), now);
                    seen.insert(name.clone(), now_seen);
                    let silent = now.duration_since(now_seen.at).as_secs_f64();
                    (phase, format!("no heartbeat for {silent:.1}s"))
                }
            };
            if phase == node.status.phase {
                continue;
            }
            let message = (phase == NodePhase::NotReady).then_some(message);
            let written = objects
                .update::<Node>(shoal_api::DEFAULT_NAMESPACE, &name, |n| {
                    n.status.phase = phase;
                    n.status.message = message.clone();
                    true
                })
                .await;
            match written {
                Ok(_) => {
                    let reason = match phase {
                        NodePhase::NotReady => EventReason::NodeNotReady,
                        _ => EventReason::NodeReady,
                    };
                    tracing::info!("node/{name} is {phase}");
                    let text = message
                        .clone()
                        .unwrap_or_else(|| "heartbeats arrive".into());
                    if let Err(e) = objects
                        .record_event(&node.object_ref(), reason, &text, &source)
                        .await
                    {
                        tracing::warn!("node/{name}: cannot record event: {e}");
                    }
                }
                Err(e) => {
                    pass.failed();
                    tracing::warn!("node/{name}: cannot write its phase: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(heartbeats: u64, phase: NodePhase) -> Node {
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "shoal/v1alpha1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"address": "http://127.0.0.1:1", "capacityMemory": 1, "maxInstances": 1}
        }))
        .unwrap();
        n.status.heartbeats = heartbeats;
        n.status.phase = phase;
        n
    }

    #[test]
    fn a_node_is_ready_while_it_holds_its_lease() {
        assert_eq!(
            judge_lease(&node(0, NodePhase::Pending), false),
            NodePhase::Pending
        );
        assert_eq!(
            judge_lease(&node(0, NodePhase::Pending), true),
            NodePhase::Ready
        );
        assert_eq!(
            judge_lease(&node(0, NodePhase::Ready), false),
            NodePhase::NotReady
        );
        assert_eq!(
            judge_lease(&node(0, NodePhase::NotReady), true),
            NodePhase::Ready
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_is_ready_while_its_heartbeats_move_and_not_ready_after_the_grace() {
        let t0 = Instant::now();
        let (phase, seen) = judge(&node(1, NodePhase::Pending), None, t0);
        assert_eq!(phase, NodePhase::Pending, "one look proves nothing");
        let t1 = t0 + Duration::from_millis(500);
        let (phase, seen) = judge(&node(2, NodePhase::Pending), Some(seen), t1);
        assert_eq!(phase, NodePhase::Ready);
        let (phase, seen) = judge(&node(2, NodePhase::Ready), Some(seen), t1 + GRACE / 2);
        assert_eq!(phase, NodePhase::Ready);
        let (phase, seen) = judge(&node(2, NodePhase::Ready), Some(seen), t1 + GRACE);
        assert_eq!(phase, NodePhase::NotReady);
        let (phase, _) = judge(&node(3, NodePhase::NotReady), Some(seen), t1 + GRACE * 2);
        assert_eq!(
            phase,
            NodePhase::Ready,
            "a node that comes back is Ready again"
        );
        // A new leader waits a full grace before it calls a silent node NotReady.
        let (phase, _) = judge(&node(9, NodePhase::Ready), None, t1 + GRACE * 9);
        assert_eq!(phase, NodePhase::Ready);
    }
}
