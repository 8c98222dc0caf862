//! `/v1/store/…`: the store, as nodes see it through the server (nodes never reach etcd).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/store/kv?key=K` | one key: `{key, value (base64), modRevision}` or 404 |
//! | GET | `/v1/store/list?prefix=P` | `{items: [...], revision}` |
//! | PUT | `/v1/store/kv?key=K&pre=none\|absent\|N` | write the body; `{revision}`, 409 if `pre` fails |
//! | DELETE | `/v1/store/kv?key=K&pre=…` | `{revision}` (null if there was no key) |
//! | GET | `/v1/store/watch?prefix=P&after=N` | newline-delimited JSON events, streamed |
//!
//! A node token may read objects and write only what a node writes: the `status` of Apps and
//! Jobs (spec and metadata must stay as stored), events, and Node objects. The client token
//! may do anything. Whoever writes, a value under an object kind's prefix is decoded as that
//! kind, must be the object its key names, and is stored as serialised again.

use crate::{ApiError, ApiState, Role};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shoal_api::{App, Event, Job, Node};
use shoal_store::{KeyValue, Precondition, Resource, StoreError, WatchEvent};
use std::sync::Arc;

/// A key-value as JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireKv {
    /// The key.
    pub key: String,
    /// The value, base64.
    pub value: String,
    /// Revision of its last change.
    pub mod_revision: u64,
}

impl From<KeyValue> for WireKv {
    fn from(kv: KeyValue) -> Self {
        Self {
            key: kv.key,
            value: B64.encode(kv.value),
            mod_revision: kv.mod_revision,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct KeyQuery {
    key: String,
    #[serde(default)]
    pre: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct PrefixQuery {
    prefix: String,
    #[serde(default)]
    after: u64,
}

/// Prefixes a node may read.
const NODE_READS: &[&str] = &[App::PREFIX, Job::PREFIX, Event::PREFIX, Node::PREFIX];

fn readable(role: Role, key: &str) -> Result<(), ApiError> {
    match role {
        Role::Client => Ok(()),
        Role::Node if NODE_READS.iter().any(|p| key.starts_with(p)) => Ok(()),
        Role::Node => Err(ApiError::Forbidden(format!(
            "a node token cannot read {key}"
        ))),
    }
}

fn precondition(pre: Option<&str>) -> Result<Precondition, ApiError> {
    match pre {
        None | Some("none") => Ok(Precondition::None),
        Some("absent") => Ok(Precondition::Absent),
        Some(n) => n.parse().map(Precondition::ModRevision).map_err(|_| {
            ApiError::BadRequest(format!(
                "pre: '{n}' is not none, absent or a revision number"
            ))
        }),
    }
}

pub(crate) async fn get(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<WireKv>, ApiError> {
    readable(role, &q.key)?;
    match state.objects.store().get(&q.key).await? {
        Some(kv) => Ok(Json(kv.into())),
        None => Err(ApiError::NotFound(format!("{} not found", q.key))),
    }
}

pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Query(q): Query<PrefixQuery>,
) -> Result<Json<Value>, ApiError> {
    readable(role, &q.prefix)?;
    let (items, revision) = state.objects.store().list(&q.prefix).await?;
    let items: Vec<WireKv> = items.into_iter().map(Into::into).collect();
    Ok(Json(json!({"items": items, "revision": revision})))
}

pub(crate) async fn put(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Query(q): Query<KeyQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let pre = precondition(q.pre.as_deref())?;
    let value = typed(&q.key, &body)?;
    let pre = if role == Role::Node {
        checked_at(
            node_may_write(&state, &q.key, Some(&value)).await?,
            pre,
            &q.key,
        )?
    } else {
        pre
    };
    let revision = state
        .objects
        .store()
        .put(&q.key, value.clone(), pre)
        .await?;
    if q.key.starts_with(Event::PREFIX) {
        prune_events(&state, &value).await;
    }
    Ok(Json(json!({"revision": revision})))
}

/// Keeps the newest [`shoal_store::EVENTS_PER_OBJECT`] events about the object `event` is
/// about, whoever wrote them: a writer that never prunes cannot grow them without bound.
async fn prune_events(state: &ApiState, event: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(event) else {
        return;
    };
    let prefix = shoal_store::resource::events_about(&event.involved_object);
    let Ok((old, _)) = state.objects.store().list(&prefix).await else {
        return;
    };
    for kv in old.iter().rev().skip(shoal_store::EVENTS_PER_OBJECT) {
        let _ = state
            .objects
            .store()
            .delete(&kv.key, Precondition::None)
            .await;
    }
}

/// An event is about the object its name says (`KIND.NAME.STAMP`, as `record_event` names
/// them), in its own namespace, with a bounded message: so pruning by object bounds them all.
fn check_event(key: &str, event: &Event) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::BadRequest(format!("{key}: {m}"));
    let about = &event.involved_object;
    let expected = format!("{}.{}.", about.kind, about.name);
    if !event.metadata.name.starts_with(&expected) || about.namespace != event.metadata.namespace {
        return Err(bad(format!(
            "an event about {}/{} in {} must be named {expected}STAMP in that namespace",
            about.kind, about.name, about.namespace
        )));
    }
    if event.message.len() > shoal_store::MAX_EVENT_MESSAGE {
        return Err(bad(format!(
            "the message is {} bytes, more than {}",
            event.message.len(),
            shoal_store::MAX_EVENT_MESSAGE
        )));
    }
    Ok(())
}

pub(crate) async fn delete(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<Value>, ApiError> {
    let pre = precondition(q.pre.as_deref())?;
    let pre = if role == Role::Node {
        checked_at(node_may_write(&state, &q.key, None).await?, pre, &q.key)?
    } else {
        pre
    };
    let revision = state.objects.store().delete(&q.key, pre).await?;
    Ok(Json(json!({"revision": revision})))
}

/// The value to store at `key`: under an object kind's prefix, the body decoded as that kind
/// (its name and namespace those of the key) and serialised again, so nothing but a well
/// formed object of the right name is ever stored there; elsewhere the body as it is.
///
/// # Errors
/// [`ApiError::BadRequest`] naming the key and what is wrong.
fn typed(key: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    if key.starts_with(App::PREFIX) {
        checked::<App>(key, body, "App")
    } else if key.starts_with(Job::PREFIX) {
        checked::<Job>(key, body, "Job")
    } else if key.starts_with(Node::PREFIX) {
        checked::<Node>(key, body, "Node")
    } else if key.starts_with(Event::PREFIX) {
        let value = checked::<Event>(key, body, "Event")?;
        let event: Event = serde_json::from_slice(&value).expect("just serialised");
        check_event(key, &event)?;
        Ok(value)
    } else {
        Ok(body.to_vec())
    }
}

fn checked<T: Resource>(key: &str, body: &[u8], kind: &str) -> Result<Vec<u8>, ApiError> {
    let bad = |m: String| ApiError::BadRequest(format!("{key}: {m}"));
    let at = T::parse_key(key).ok_or_else(|| bad(format!("not the key of a {kind}")))?;
    let obj: T = serde_json::from_slice(body).map_err(|e| bad(format!("not a {kind}: {e}")))?;
    let meta = obj.metadata();
    if meta.name != at.name || (T::NAMESPACED && meta.namespace != at.namespace) {
        return Err(bad(format!(
            "holds {kind} {}/{}, not the one its key names",
            meta.namespace, meta.name
        )));
    }
    Ok(serde_json::to_vec(&obj).expect("an object serialises"))
}

/// The precondition a node's write is made with: the one it gave, and the revision its check
/// was made against (`checked`), so the check and the write are one compare-and-swap — a
/// concurrent apply or controller write makes the node's write a conflict, never reverts.
fn checked_at(
    checked: Option<Precondition>,
    given: Precondition,
    key: &str,
) -> Result<Precondition, ApiError> {
    match (checked, given) {
        (None, given) => Ok(given),
        (Some(checked), Precondition::None) => Ok(checked),
        (Some(checked), given) if checked == given => Ok(given),
        (Some(_), _) => Err(ApiError::Conflict(format!(
            "{key} changed since the node read it; read it again"
        ))),
    }
}

/// What a node may change: events freely; Node objects and the `status` of Apps and Jobs,
/// but never what the leading server's controllers own (an App's `status.placement`, a Job's
/// `status.node`, a Node's `status.phase` and `status.memoryReserved`). Returns the
/// precondition the check holds under (the stored revision, or absence), if there is one.
async fn node_may_write(
    state: &ApiState,
    key: &str,
    value: Option<&[u8]>,
) -> Result<Option<Precondition>, ApiError> {
    if key.starts_with(Event::PREFIX) {
        return Ok(None);
    }
    let forbidden =
        |what: &str| ApiError::Forbidden(format!("a node may not change {what} of {key}"));
    let parse = |bytes: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("{key}: not a JSON object: {e}")))
    };
    let current = state.objects.store().get(key).await?;
    let owned = |v: &Value, fields: &[&str]| -> Vec<Value> {
        fields
            .iter()
            .map(|f| {
                v.get("status")
                    .and_then(|s| s.get(*f))
                    .cloned()
                    .unwrap_or(Value::Null)
            })
            .collect()
    };
    if key.starts_with(Node::PREFIX) {
        const LEADER_OWNED: &[&str] = &["phase", "memoryReserved"];
        let Some(value) = value else {
            return Err(forbidden("the existence"));
        };
        let next = parse(value)?;
        let (before, pre) = match &current {
            Some(kv) => (
                owned(&parse(&kv.value)?, LEADER_OWNED),
                Precondition::ModRevision(kv.mod_revision),
            ),
            // A node registering itself starts where the leader would start it.
            None => (
                owned(
                    &json!({ "status": shoal_api::NodeStatus::default() }),
                    LEADER_OWNED,
                ),
                Precondition::Absent,
            ),
        };
        if owned(&next, LEADER_OWNED) != before {
            return Err(forbidden(
                "status.phase or status.memoryReserved (the leader's)",
            ));
        }
        return Ok(Some(pre));
    }
    let leader_owned: &[&str] = if key.starts_with(App::PREFIX) {
        &["placement"]
    } else if key.starts_with(Job::PREFIX) {
        &["node"]
    } else {
        return Err(forbidden("anything"));
    };
    let value = value.ok_or_else(|| forbidden("the existence"))?;
    let Some(current) = current else {
        return Err(forbidden("the existence"));
    };
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("status");
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
        }
        v
    };
    let (next, stored) = (parse(value)?, parse(&current.value)?);
    if strip(&next) != strip(&stored) {
        return Err(forbidden("anything but the status"));
    }
    if owned(&next, leader_owned) != owned(&stored, leader_owned) {
        return Err(forbidden(&format!(
            "status.{} (the leader's)",
            leader_owned[0]
        )));
    }
    Ok(Some(Precondition::ModRevision(current.mod_revision)))
}

pub(crate) async fn watch(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Query(q): Query<PrefixQuery>,
) -> Result<Response, ApiError> {
    readable(role, &q.prefix)?;
    let watch = state.objects.store().watch(&q.prefix, q.after).await?;
    let lines = futures::stream::unfold(Some(watch), |watch| async move {
        let mut watch = watch?;
        let (line, more) = match watch.next().await? {
            Ok(WatchEvent::Put(kv)) => (json!({"put": WireKv::from(kv)}), true),
            Ok(WatchEvent::Delete { key, revision }) => {
                (json!({"delete": {"key": key, "revision": revision}}), true)
            }
            Err(StoreError::Compacted { requested }) => (json!({"compacted": requested}), false),
            Err(e) => (json!({"error": e.to_string()}), false),
        };
        let mut text = line.to_string();
        text.push('\n');
        Some((Ok::<_, std::io::Error>(text), more.then_some(watch)))
    });
    Ok(Response::new(Body::from_stream(lines)))
}
