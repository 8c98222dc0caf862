//! What a node may write through `/v1/store`, as itself (its credential names it):
//!
//! | key | node NAME may |
//! |---|---|
//! | `nodes/NAME` | create and update its own Node object, but not the leader's `status.phase` and `status.memoryReserved`; never delete it |
//! | `apps/NS/APP` | replace its own report, `status.nodes.NAME`, and the observed generation; the server derives the rest of the status from the reports again, and spec, metadata, placement and other nodes' reports stay as stored |
//! | `jobs/NS/JOB` | change the status of a job the leader assigned to it (`status.node` is NAME), but not `status.node` |
//! | `events/…` | write events whose source is `node/NAME`, and delete those |
//!
//! and nothing else. Each check is made against what is stored, and the write is made at the
//! revision checked (one compare-and-swap): a concurrent write makes the node's a conflict,
//! never reverted.

use crate::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shoal_api::{App, Event, Job, Node};
use shoal_store::{KeyValue, Precondition, Resource, Store};

/// A node's write, as it may be made.
pub(crate) struct Allowed {
    /// What to store: the node's value, or what the server derives from it.
    pub value: Option<Vec<u8>>,
    /// The precondition the check holds under (the revision checked, or absence).
    pub pre: Option<Precondition>,
}

/// Checks node `node`'s write of `value` (a delete when `None`; already decoded and
/// re-serialised as its kind) at `key`.
///
/// # Errors
/// [`ApiError::Forbidden`] naming what the node may not change; store errors.
pub(crate) async fn check(
    store: &dyn Store,
    node: &str,
    key: &str,
    value: Option<Vec<u8>>,
) -> Result<Allowed, ApiError> {
    let forbidden =
        |what: String| ApiError::Forbidden(format!("node/{node} may not change {what} of {key}"));
    let current = store.get(key).await?;
    let at = |kv: &KeyValue| Some(Precondition::ModRevision(kv.mod_revision));
    if key.starts_with(Event::PREFIX) {
        let source = format!("node/{node}");
        let pre = match (&value, &current) {
            (Some(v), _) => {
                let event: Event = decode(key, v)?;
                if event.source != source {
                    return Err(forbidden(format!(
                        "events of {} (the source)",
                        event.source
                    )));
                }
                None
            }
            (None, Some(kv)) => {
                let event: Event = decode(key, &kv.value)?;
                if event.source != source {
                    return Err(forbidden(format!("events of {}", event.source)));
                }
                at(kv)
            }
            (None, None) => None,
        };
        return Ok(Allowed { value, pre });
    }
    let Some(next) = value else {
        return Err(forbidden("the existence".into()));
    };
    if key.starts_with(Node::PREFIX) {
        if Node::parse_key(key).is_none_or(|k| k.name != node) {
            return Err(forbidden("anything (another node's Node object)".into()));
        }
        let next_node: Node = decode(key, &next)?;
        let (before, pre) = match &current {
            Some(kv) => (decode::<Node>(key, &kv.value)?.status, at(kv)),
            // A node registering itself starts where the leader would start it.
            None => (shoal_api::NodeStatus::default(), Some(Precondition::Absent)),
        };
        if (next_node.status.phase, next_node.status.memory_reserved)
            != (before.phase, before.memory_reserved)
        {
            return Err(forbidden(
                "status.phase or status.memoryReserved (the leader's)".into(),
            ));
        }
        return Ok(Allowed {
            value: Some(next),
            pre,
        });
    }
    if !key.starts_with(App::PREFIX) && !key.starts_with(Job::PREFIX) {
        return Err(forbidden("anything".into()));
    }
    let Some(current) = current else {
        return Err(forbidden("the existence".into()));
    };
    let (next_v, stored_v): (Value, Value) = (decode(key, &next)?, decode(key, &current.value)?);
    if without_status(&next_v) != without_status(&stored_v) {
        return Err(forbidden("anything but the status".into()));
    }
    let value = if key.starts_with(App::PREFIX) {
        app_status(node, key, typed(key, &stored_v)?, typed(key, &next_v)?)?
    } else {
        let (stored, next_job): (Job, Job) = (typed(key, &stored_v)?, typed(key, &next_v)?);
        if stored.status.node.as_deref() != Some(node) {
            let holder = stored
                .status
                .node
                .map_or_else(|| "no node".to_string(), |n| format!("node/{n}"));
            return Err(forbidden(format!(
                "the status (the job is assigned to {holder})"
            )));
        }
        if next_job.status.node != stored.status.node {
            return Err(forbidden("status.node (the leader's)".into()));
        }
        next
    };
    Ok(Allowed {
        value: Some(value),
        pre: at(&current),
    })
}

/// The App status node `node` may store: `stored`'s, with `next`'s report of `node` and
/// observed generation, summarised again here (so no node can claim what another reports,
/// nor a summary the reports do not make).
fn app_status(node: &str, key: &str, mut stored: App, next: App) -> Result<Vec<u8>, ApiError> {
    let forbidden =
        |what: String| ApiError::Forbidden(format!("node/{node} may not change {what} of {key}"));
    if next.status.placement != stored.status.placement {
        return Err(forbidden("status.placement (the leader's)".into()));
    }
    let others = |s: &shoal_api::AppStatus| -> Vec<(String, shoal_api::NodeAppStatus)> {
        s.nodes
            .iter()
            .filter(|(n, _)| n.as_str() != node)
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect()
    };
    let (theirs, claimed) = (others(&stored.status), others(&next.status));
    if let Some((other, _)) = claimed
        .iter()
        .chain(&theirs)
        .find(|entry| !(claimed.contains(entry) && theirs.contains(entry)))
    {
        return Err(forbidden(format!("status.nodes.{other} (node/{other}'s)")));
    }
    match next.status.nodes.get(node) {
        Some(report) => stored.status.nodes.insert(node.to_string(), report.clone()),
        None => stored.status.nodes.remove(node),
    };
    let generation = stored.metadata.generation;
    stored.status.observed_generation = next.status.observed_generation.min(generation);
    stored.status.summarize(generation, chrono::Utc::now());
    Ok(serde_json::to_vec(&stored).expect("an object serialises"))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))
}

/// `value` as the object it holds.
fn typed<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, ApiError> {
    T::deserialize(value).map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))
}

/// An object as JSON without its status and resource version: what a node must leave as it is.
fn without_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
    }
    v
}
