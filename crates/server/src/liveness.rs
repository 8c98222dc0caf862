//! The node liveness controller (run by the leading server): a node whose heartbeats stop
//! for [`GRACE`] is NotReady; one whose heartbeats arrive is Ready.
//!
//! Heartbeats are timed by this server's clock — when it saw the node's heartbeat counter
//! move — never by the node's, so clock skew between machines does not matter.

use shoal_api::{EventType, Node, NodePhase};
use shoal_store::{Objects, node_key};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Silence after which a node is NotReady. With heartbeats every 500 ms and a check every
/// [`CHECK`], a dead node is NotReady within 2.25 s.
pub const GRACE: Duration = Duration::from_millis(2000);
/// How often the controller looks.
pub const CHECK: Duration = Duration::from_millis(250);

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
pub async fn run(objects: Objects, source: String, shutdown: CancellationToken) {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let nodes = match objects.list::<Node>("nodes/").await {
            Ok((nodes, _)) => nodes,
            Err(e) => {
                tracing::warn!("node liveness: cannot list nodes: {e}");
                continue;
            }
        };
        let now = Instant::now();
        seen.retain(|name, _| nodes.iter().any(|n| n.metadata.name == *name));
        for node in nodes {
            let name = node.metadata.name.clone();
            let (phase, now_seen) = judge(&node, seen.get(&name).copied(), now);
            seen.insert(name.clone(), now_seen);
            if phase == node.status.phase {
                continue;
            }
            let message = (phase == NodePhase::NotReady).then(|| {
                format!(
                    "no heartbeat for {:.1}s",
                    now.duration_since(now_seen.at).as_secs_f64()
                )
            });
            let written = objects
                .update::<Node>(&node_key(&name), |n| {
                    n.status.phase = phase;
                    n.status.message = message.clone();
                    true
                })
                .await;
            match written {
                Ok(_) => {
                    let (type_, reason) = match phase {
                        NodePhase::NotReady => (EventType::Warning, "NodeNotReady"),
                        _ => (EventType::Normal, "NodeReady"),
                    };
                    tracing::info!("node/{name} is {phase}");
                    let text = message
                        .clone()
                        .unwrap_or_else(|| "heartbeats arrive".into());
                    if let Err(e) = objects
                        .record_event(&node.object_ref(), type_, reason, &text, &source)
                        .await
                    {
                        tracing::warn!("node/{name}: cannot record event: {e}");
                    }
                }
                Err(e) => tracing::warn!("node/{name}: cannot write its phase: {e}"),
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
