//! Placement: which nodes hold each app, and which node runs each job (the leading server's
//! controller around the pure [`place`]).
//!
//! An app **reserves its memory limit** (`spec.limits.memory`, default 128Mi) on every node
//! that holds it: room for one instance at any time. Further instances share what the node
//! has beyond the reservations, within its `--max-instances`. A node fits an app when it is
//! Ready, has every label of `nodeSelector`, and its capacity minus the reservations of the
//! apps already on it covers the app's.

use crate::metrics::{Controller, ServerMetrics};
use shoal_api::{App, EventReason, Job, Node, NodePhase, PlacementStatus, Replicas};
use shoal_store::{ObjectKey, Objects};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its name.
    pub name: String,
    /// Ready now.
    pub ready: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Memory it offers, in bytes.
    pub capacity: u64,
    /// Memory already reserved on it by other apps, in bytes.
    pub reserved: u64,
}

/// What an app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask<'a> {
    /// Nodes wanted.
    pub replicas: Replicas,
    /// Labels a node must have.
    pub selector: &'a BTreeMap<String, String>,
    /// Label whose values the replicas spread across.
    pub spread_by: Option<&'a str>,
    /// Memory reserved on each node.
    pub reservation: u64,
    /// Where it is now (kept where still possible: no needless moves).
    pub current: &'a [String],
}

/// The nodes for an app, or why there are none. Deterministic; keeps current nodes that still
/// fit, then adds the least-reserved fitting nodes, preferring label values (of `spread_by`)
/// that hold the fewest replicas.
///
/// # Errors
/// No node fits; the message says why, for the app's status.
pub fn place(ask: &Ask<'_>, nodes: &[Candidate]) -> Result<Vec<String>, String> {
    let fits = |n: &Candidate| {
        n.ready
            && ask.selector.iter().all(|(k, v)| n.labels.get(k) == Some(v))
            && n.capacity.saturating_sub(n.reserved) >= ask.reservation
    };
    let mut eligible: Vec<&Candidate> = nodes.iter().filter(|n| fits(n)).collect();
    // One candidate per name (two objects claiming one name count once, never twice).
    let mut seen = std::collections::HashSet::new();
    eligible.retain(|n| seen.insert(n.name.as_str()));
    if eligible.is_empty() {
        return Err(why_none(ask, nodes));
    }
    let want = match ask.replicas {
        Replicas::All => eligible.len(),
        Replicas::Count(n) => (n as usize).min(eligible.len()),
    };
    // Current nodes first, then the least reserved, then by name.
    eligible.sort_by(|a, b| {
        let current = |n: &Candidate| !ask.current.contains(&n.name);
        (current(a), a.reserved, &a.name).cmp(&(current(b), b.reserved, &b.name))
    });
    let mut chosen: Vec<&Candidate> = Vec::new();
    let mut per_value: HashMap<Option<&String>, usize> = HashMap::new();
    fn spread_of<'n>(key: Option<&str>, n: &'n Candidate) -> Option<&'n String> {
        key.and_then(|k| n.labels.get(k))
    }
    while chosen.len() < want {
        // The first (in the order above) among those whose spread value holds the fewest.
        let next = eligible
            .iter()
            .filter(|n| !chosen.iter().any(|c| c.name == n.name))
            .min_by_key(|n| {
                let load = if ask.spread_by.is_some() {
                    per_value
                        .get(&spread_of(ask.spread_by, n))
                        .copied()
                        .unwrap_or(0)
                } else {
                    0
                };
                let rank = eligible.iter().position(|e| e.name == n.name);
                (load, rank)
            })
            .copied()
            .expect("want ≤ eligible");
        *per_value.entry(spread_of(ask.spread_by, next)).or_default() += 1;
        chosen.push(next);
    }
    let mut names: Vec<String> = chosen.into_iter().map(|n| n.name.clone()).collect();
    names.sort();
    Ok(names)
}

fn why_none(ask: &Ask<'_>, nodes: &[Candidate]) -> String {
    if nodes.is_empty() {
        return "no node has joined the cluster".into();
    }
    let ready: Vec<&Candidate> = nodes.iter().filter(|n| n.ready).collect();
    if ready.is_empty() {
        return format!("none of the {} nodes is Ready", nodes.len());
    }
    let selected: Vec<&&Candidate> = ready
        .iter()
        .filter(|n| ask.selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
        .collect();
    if selected.is_empty() {
        let want: Vec<String> = ask
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        return format!(
            "no Ready node has the labels {} (spec.placement.nodeSelector)",
            want.join(",")
        );
    }
    format!(
        "no Ready node that matches has {} MiB of memory free to reserve (spec.limits.memory); the most free is {} MiB",
        ask.reservation >> 20,
        selected
            .iter()
            .map(|n| n.capacity.saturating_sub(n.reserved))
            .max()
            .unwrap_or(0)
            >> 20
    )
}

/// How often the controller places everything again (it also reacts within this to changes).
pub const EVERY: Duration = Duration::from_millis(250);

/// Runs the placement controller until `shutdown` (when this server stops leading).
/// Each pass is counted in `metrics`.
pub async fn run(
    objects: Objects,
    source: String,
    metrics: Arc<ServerMetrics>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut pass = metrics.pass(Controller::Placement);
        if let Err(e) = place_all(&objects, &source).await {
            pass.failed();
            tracing::warn!("placement: {e}");
        }
    }
}

/// One pass: every app's nodes, every job's node, and each node's reservations.
async fn place_all(objects: &Objects, source: &str) -> Result<(), shoal_store::StoreError> {
    let (nodes, _) = objects.list::<Node>(None).await?;
    let (mut apps, _) = objects.list::<App>(None).await?;
    apps.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut candidates: Vec<Candidate> = nodes
        .iter()
        .map(|n| Candidate {
            name: n.metadata.name.clone(),
            ready: n.status.phase == NodePhase::Ready,
            labels: n.metadata.labels.clone(),
            capacity: n.spec.capacity_memory,
            reserved: 0,
        })
        .collect();
    for app in &apps {
        let spec = app.spec.placement.clone().unwrap_or_default();
        let reservation = app.spec.limits.resolve().memory;
        let current = app
            .status
            .placement
            .as_ref()
            .map(|p| p.nodes.clone())
            .unwrap_or_default();
        let ask = Ask {
            replicas: spec.replicas.unwrap_or(Replicas::Count(1)),
            selector: &spec.node_selector,
            spread_by: spec.spread_by.as_deref(),
            reservation,
            current: &current,
        };
        let wanted = match ask.replicas {
            Replicas::All => None,
            Replicas::Count(n) => Some(n as usize),
        };
        let status = match place(&ask, &candidates) {
            Ok(chosen) => {
                for c in candidates.iter_mut().filter(|c| chosen.contains(&c.name)) {
                    c.reserved += reservation;
                }
                let message = wanted
                    .filter(|w| chosen.len() < *w)
                    .map(|w| format!("placed on {} of {w} nodes: no more fit", chosen.len()));
                PlacementStatus {
                    nodes: chosen,
                    message,
                }
            }
            Err(reason) => PlacementStatus {
                nodes: Vec::new(),
                message: Some(format!("Unschedulable: {reason}")),
            },
        };
        if app.status.placement.as_ref() == Some(&status) {
            continue;
        }
        let now = chrono::Utc::now();
        let written = objects
            .write_status::<App>(&ObjectKey::of(&app.metadata), |a| {
                let mut s = a.status.clone();
                s.placement = Some(status.clone());
                // Reports of nodes that no longer hold it no longer count, and the summary
                // says so at once (one function for it, the node's too).
                s.nodes.retain(|n, _| status.nodes.contains(n));
                s.summarize(a.metadata.generation, now);
                Some(s)
            })
            .await;
        if let Err(e) = written {
            tracing::warn!("{}: cannot write its placement: {e}", app.object_ref());
            continue;
        }
        let (reason, message) = match &status.message {
            Some(m) if status.nodes.is_empty() => (EventReason::Unschedulable, m.clone()),
            _ => (
                EventReason::Placed,
                format!("on {}", status.nodes.join(", ")),
            ),
        };
        let _ = objects
            .record_event(&app.object_ref(), reason, &message, source)
            .await;
    }
    // Reservations, as `get nodes` shows them.
    for c in &candidates {
        let node = nodes.iter().find(|n| n.metadata.name == c.name);
        if node.is_some_and(|n| n.status.memory_reserved != c.reserved) {
            let _ = objects
                .update::<Node>(shoal_api::DEFAULT_NAMESPACE, &c.name, |n| {
                    n.status.memory_reserved = c.reserved;
                    true
                })
                .await;
        }
    }
    // Jobs: each runs on one Ready node; a job on a node that stopped moves.
    let ready: Vec<&Candidate> = candidates.iter().filter(|c| c.ready).collect();
    let (jobs, _) = objects.list::<Job>(None).await?;
    for (i, job) in jobs.iter().enumerate() {
        let stays = job
            .status
            .node
            .as_ref()
            .is_some_and(|n| ready.iter().any(|c| &c.name == n));
        if stays || ready.is_empty() {
            continue;
        }
        // Round-robin over the Ready nodes, by the job's place in the list.
        let node = ready[i % ready.len()].name.clone();
        let _ = objects
            .update::<Job>(&job.metadata.namespace, &job.metadata.name, |j| {
                j.status.node = Some(node.clone());
                true
            })
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: bool, labels: &[(&str, &str)], free_mib: u64) -> Candidate {
        Candidate {
            name: name.into(),
            ready,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            capacity: 1 << 30,
            reserved: (1 << 30) - (free_mib << 20),
        }
    }

    #[test]
    fn placement_table() {
        let none = BTreeMap::new();
        let ssd: BTreeMap<String, String> = [("disk".to_string(), "ssd".to_string())].into();
        let gpu: BTreeMap<String, String> = [("gpu".to_string(), "yes".to_string())].into();
        let nodes = vec![
            node("a", true, &[("zone", "1"), ("disk", "ssd")], 512),
            node("b", true, &[("zone", "1")], 900),
            node("c", true, &[("zone", "2"), ("disk", "ssd")], 300),
            node("d", false, &[("zone", "2")], 1000),
        ];
        let ask = |replicas, selector, spread_by, mib: u64, current: &'static [&str]| {
            let current: Vec<String> = current.iter().map(|s| s.to_string()).collect();
            (replicas, selector, spread_by, mib << 20, current)
        };
        let cases: Vec<(_, Result<Vec<&str>, &str>)> = vec![
            // The least reserved Ready node.
            (
                ask(Replicas::Count(1), &none, None, 128, &[]),
                Ok(vec!["b"]),
            ),
            // Current nodes stay while they fit.
            (
                ask(Replicas::Count(1), &none, None, 128, &["c"]),
                Ok(vec!["c"]),
            ),
            // A NotReady current node is left.
            (
                ask(Replicas::Count(1), &none, None, 128, &["d"]),
                Ok(vec!["b"]),
            ),
            (
                ask(Replicas::All, &none, None, 128, &[]),
                Ok(vec!["a", "b", "c"]),
            ),
            (
                ask(Replicas::Count(2), &ssd, None, 128, &[]),
                Ok(vec!["a", "c"]),
            ),
            // Spread across zones: b (zone 1, most free), then zone 2's c.
            (
                ask(Replicas::Count(2), &none, Some("zone"), 128, &[]),
                Ok(vec!["b", "c"]),
            ),
            // Capacity: only b has 600 MiB free.
            (
                ask(Replicas::Count(3), &none, None, 600, &[]),
                Ok(vec!["b"]),
            ),
            (
                ask(Replicas::Count(1), &none, None, 2000, &[]),
                Err("no Ready node that matches has 2000 MiB"),
            ),
            (
                ask(Replicas::Count(1), &gpu, None, 1, &[]),
                Err("no Ready node has the labels gpu=yes"),
            ),
        ];
        for ((replicas, selector, spread_by, reservation, current), expected) in cases {
            let got = place(
                &Ask {
                    replicas,
                    selector,
                    spread_by,
                    reservation,
                    current: &current,
                },
                &nodes,
            );
            match (&got, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(g, e, "{replicas:?} {selector:?} {spread_by:?}"),
                (Err(g), Err(e)) => assert!(g.contains(e), "{g}"),
                _ => panic!("{got:?} vs {expected:?}"),
            }
        }
        assert_eq!(
            place(
                &Ask {
                    replicas: Replicas::Count(1),
                    selector: &none,
                    spread_by: None,
                    reservation: 1,
                    current: &[],
                },
                &[]
            ),
            Err("no node has joined the cluster".into())
        );
        // Two candidates with one name are one node: no panic, one replica there.
        let twins = vec![node("a", true, &[], 512), node("a", true, &[], 512)];
        assert_eq!(
            place(
                &Ask {
                    replicas: Replicas::All,
                    selector: &none,
                    spread_by: None,
                    reservation: 1,
                    current: &[],
                },
                &twins
            ),
            Ok(vec!["a".to_string()])
        );
    }
}
