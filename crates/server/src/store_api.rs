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
//! A node's credential reads objects and writes only what is that node's (see
//! `node_writes`); the client token may do anything. Whoever writes, a value under an object
//! kind's prefix is decoded as that kind, must be the object its key names, and is stored as
//! serialised again.

use crate::{ApiError, ApiState, Role, node_writes};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shoal_api::{App, Event, Job, Namespace, Node};
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
const NODE_READS: &[&str] = &[
    App::PREFIX,
    Job::PREFIX,
    Event::PREFIX,
    Node::PREFIX,
    Namespace::PREFIX,
];

fn readable(role: &Role, key: &str) -> Result<(), ApiError> {
    match role {
        r if r.is_admin() => Ok(()),
        Role::Node(_) if NODE_READS.iter().any(|p| key.starts_with(p)) => Ok(()),
        Role::Node(name) => Err(ApiError::Forbidden(format!(
            "node/{name} cannot read {key}"
        ))),
        _ => Err(ApiError::Forbidden(format!(
            "only nodes and admins can read {key}"
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
    readable(&role, &q.key)?;
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
    readable(&role, &q.prefix)?;
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
    let (value, pre) = match &role {
        r if r.is_admin() => (value, pre),
        Role::Node(node) => {
            let store = state.objects.store().as_ref();
            let allowed = node_writes::check(store, node, &q.key, Some(value)).await?;
            let value = allowed.value.expect("a put stays a put");
            (value, checked_at(allowed.pre, pre, &q.key)?)
        }
        _ => return Err(join_may_not(&q.key)),
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

/// Keeps the newest [`shoal_store::EVENTS_PER_OBJECT`] events of `event`'s writer (its
/// source) about the object it is about: a writer that never prunes cannot grow them without
/// bound, nor push out another writer's.
async fn prune_events(state: &ApiState, event: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(event) else {
        return;
    };
    let prefix = shoal_store::resource::events_about(&event.involved_object);
    let Ok((old, _)) = state.objects.store().list(&prefix).await else {
        return;
    };
    for kv in shoal_store::surplus_events(&old, &event.source) {
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
    let pre = match &role {
        r if r.is_admin() => pre,
        Role::Node(node) => {
            let store = state.objects.store().as_ref();
            let allowed = node_writes::check(store, node, &q.key, None).await?;
            checked_at(allowed.pre, pre, &q.key)?
        }
        _ => return Err(join_may_not(&q.key)),
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
pub(crate) fn typed(key: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
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

fn join_may_not(key: &str) -> ApiError {
    ApiError::Forbidden(format!("the join token cannot write {key}"))
}

pub(crate) async fn watch(
    State(state): State<Arc<ApiState>>,
    Extension(role): Extension<Role>,
    Query(q): Query<PrefixQuery>,
) -> Result<Response, ApiError> {
    readable(&role, &q.prefix)?;
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
