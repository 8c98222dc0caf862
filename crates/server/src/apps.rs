//! App endpoints: list, get, apply (create / configure / unchanged), delete, events.

use crate::{ApiError, ApiState, quota, revisions, routes};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shoal_api::{
    API_VERSION, App, AppStatus, ApplyResponse, ApplyResult, ComponentRef, Event, EventReason,
    ObjectRef, Route, WasmKind,
};
use shoal_store::{Precondition, Resource};
use std::sync::Arc;

fn app_ref(ns: &str, name: &str) -> ObjectRef {
    ObjectRef::new("app", ns, name)
}

pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    Path(ns): Path<String>,
) -> Result<Json<Vec<App>>, ApiError> {
    let (apps, _) = state.objects.list::<App>(Some(&ns)).await?;
    Ok(Json(apps.into_iter().map(App::redacted).collect()))
}

pub(crate) async fn get(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<App>, ApiError> {
    find::<App>(&state, &app_ref(&ns, &name))
        .await
        .map(|app| Json(app.redacted()))
}

/// The object `what` names, or 404 naming it.
pub(crate) async fn find<T: Resource>(state: &ApiState, what: &ObjectRef) -> Result<T, ApiError> {
    state
        .objects
        .get::<T>(&what.namespace, &what.name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{what} not found")))
}

/// What an apply is for, when it is more than an edit.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplyQuery {
    /// The revision whose spec this apply restores (`shoal rollout undo`).
    rollback_to: Option<u64>,
}

/// `PUT .../apps/{name}`, traced (under the caller's `traceparent`, if it sent one) when the
/// server traces: the span's context goes into the new generation's `status.trace`, and
/// the nodes trace its deploy under it.
pub(crate) async fn apply(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(query): Query<ApplyQuery>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ApplyResponse>), ApiError> {
    let mut span = crate::traced(&headers, format!("apply app/{ns}/{name}"));
    span.set("shoal.namespace", &ns);
    span.set("shoal.app", &name);
    let trace = span.context().map(|c| c.traceparent());
    let answer = apply_app(&state, ns, name, query, &headers, body, trace).await;
    match &answer {
        Ok((_, Json(response))) => span.set("shoal.apply", &format!("{:?}", response.result)),
        Err(e) => span.fail(&e.to_string()),
    }
    answer
}

async fn apply_app(
    state: &ApiState,
    ns: String,
    name: String,
    query: ApplyQuery,
    headers: &http::HeaderMap,
    body: Bytes,
    trace: Option<String>,
) -> Result<(StatusCode, Json<ApplyResponse>), ApiError> {
    let what = app_ref(&ns, &name);
    let mut app: App = decode_object(&what, &body)?;
    check_identity(&what, &app.metadata, &app.api_version, &ns, &name)?;
    shoal_manifest::validate_app(&app).map_err(|e| ApiError::Invalid(format!("{what}: {e}")))?;
    let namespace = crate::namespaces::existing(state, &ns).await?;
    let spec = &mut app.spec;
    crate::oci::resolve(
        state,
        &what,
        "spec.component",
        headers,
        &mut spec.component,
        &mut spec.component_source,
    )
    .await?;
    check_component(state, &app.spec.component, Accept::Component)
        .map_err(|m| ApiError::Invalid(format!("{what}: spec.component: {m}")))?;
    check_trees(state, &what, &app.spec.files)?;
    crate::dependencies::resolve(state, &what, headers, &mut app).await?;
    for (name, d) in &app.spec.dependencies {
        if let Some(c) = &d.component {
            check_component(state, c, Accept::Component).map_err(|m| {
                let field = shoal_compose::field(name);
                ApiError::Invalid(format!("{what}: {field}.component: {m}"))
            })?;
        }
    }
    crate::dependencies::compose(state, &what, &app).await?;

    let _guard = state.apply_lock.lock().await;
    state
        .routes_indexed
        .get_or_try_init(|| routes::index_existing(&state.objects))
        .await?;
    let nodes = quota::node_count(state).await?;
    let adds = quota::Footprint::app(&app, nodes);
    quota::admit(state, &namespace, quota::Applying::App(&name), adds).await?;
    let existing = state.objects.get::<App>(&ns, &name).await?;
    // A spec this API returned shows its secrets as `(secret)`: applied again (an edit of
    // `get -o yaml`, or `rollout undo` with the revision's spec), it keeps their values.
    if let Some(current) = &existing {
        match query.rollback_to {
            Some(n) => {
                let revisions = revisions::list(&state.objects, current).await?;
                if let Some(r) = revisions.iter().find(|r| r.revision == n) {
                    app.spec.restore_secrets(&r.spec);
                }
            }
            None => app.spec.restore_secrets(&current.spec),
        }
    }
    // Routes compare as the node matches them: `/a` and `/a/` are one route.
    let released: Vec<Route> = existing.as_ref().map_or_else(Vec::new, |current| {
        current
            .spec
            .routes
            .iter()
            .filter(|r| !routes::lists(&app, r))
            .cloned()
            .collect()
    });
    if let Err(e) = routes::claim(&state.objects, &app).await {
        // Give back what this apply claimed beyond the routes the app already serves.
        let claimed: Vec<Route> = app
            .spec
            .routes
            .iter()
            .filter(|r| existing.as_ref().is_none_or(|c| !routes::lists(c, r)))
            .cloned()
            .collect();
        routes::release(&state.objects, &app, &claimed).await;
        return Err(e);
    }

    // A node may write the App's status between our read and our write: re-read and retry
    // (other applies are held off by the lock, so the spec we compare against is stable).
    let prior_generation = existing.as_ref().map_or(0, |a| a.metadata.generation);
    let mut existing = existing;
    let mut attempts = 0;
    let (result, stored) = loop {
        match write_app(state, app.clone(), existing, trace.clone()).await {
            Err(ApiError::Conflict(_)) if attempts < 10 => {
                attempts += 1;
                existing = state.objects.get::<App>(&ns, &name).await?;
            }
            other => break other?,
        }
    };
    routes::release(&state.objects, &stored, &released).await;
    if result != ApplyResult::Unchanged {
        revisions::prune(&state.objects, &stored).await;
    }
    let generation = stored.metadata.generation;
    let component = stored.spec.component.to_string();
    let component = shoal_api::short_digest(&component);
    let event = match (result, query.rollback_to) {
        (ApplyResult::Created, _) => {
            Some((EventReason::Created, format!("revision 1: {component}")))
        }
        (ApplyResult::Configured, Some(to)) if generation != prior_generation => Some((
            EventReason::RolledBack,
            format!("revision {generation} restores revision {to}'s spec ({component})"),
        )),
        (ApplyResult::Configured, None) if generation != prior_generation => Some((
            EventReason::Updated,
            format!("revision {generation}: {component}"),
        )),
        _ => None,
    };
    Ok(applied(state, &what, event, result, stored.redacted()).await)
}

/// The answer to an apply: records its event (if any), then 201 for a creation, 200 otherwise.
pub(crate) async fn applied<T>(
    state: &ApiState,
    what: &ObjectRef,
    event: Option<(EventReason, String)>,
    result: ApplyResult,
    stored: T,
) -> (StatusCode, Json<ApplyResponse<T>>) {
    if let Some((reason, message)) = event
        && let Err(e) = state
            .objects
            .record_event(what, reason.clone(), &message, "server")
            .await
    {
        tracing::warn!("{what}: cannot record event {reason}: {e}");
    }
    let status = if result == ApplyResult::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(ApplyResponse {
            result,
            object: stored,
        }),
    )
}

/// Creates or updates the stored App from `app` given what is stored now (`existing`),
/// recording a revision first when the spec changed.
async fn write_app(
    state: &ApiState,
    mut app: App,
    existing: Option<App>,
    trace: Option<String>,
) -> Result<(ApplyResult, App), ApiError> {
    let (ns, name) = (&app.metadata.namespace, &app.metadata.name);
    Ok(match existing {
        None => {
            app.metadata.generation = 1;
            app.metadata.creation_timestamp = Some(chrono::Utc::now());
            app.metadata.uid = Some(hex::encode(rand::random::<[u8; 16]>()));
            app.status = AppStatus {
                trace,
                ..AppStatus::default()
            };
            // Revisions left by an earlier app of this name (a delete cut short) are not its.
            revisions::delete_all(&state.objects, ns, name).await?;
            revisions::record(&state.objects, &app).await?;
            (
                ApplyResult::Created,
                state.objects.put(app, Precondition::Absent).await?,
            )
        }
        Some(current)
            if current.spec == app.spec && current.metadata.labels == app.metadata.labels =>
        {
            (ApplyResult::Unchanged, current)
        }
        Some(mut current) => {
            let rv = current.metadata.resource_version;
            // An App stored before uids existed gets one on its next change.
            if current.metadata.uid.is_none() {
                current.metadata.uid = Some(hex::encode(rand::random::<[u8; 16]>()));
            }
            if current.spec != app.spec {
                current.metadata.generation += 1;
                current.spec = app.spec;
                current.status.trace = trace;
                // Before the App: a generation never exists without its revision.
                revisions::record(&state.objects, &current).await?;
            }
            current.metadata.labels = app.metadata.labels;
            (
                ApplyResult::Configured,
                state
                    .objects
                    .put(current, Precondition::ModRevision(rv))
                    .await?,
            )
        }
    })
}

/// Decodes an object from a request body, naming the failing field.
pub(crate) fn decode_object<T: serde::de::DeserializeOwned>(
    what: &ObjectRef,
    body: &[u8],
) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ApiError::BadRequest(format!("{what}: {}: {}", e.path(), e.inner())))
}

/// The object's metadata must name the request path's object, in this API version.
pub(crate) fn check_identity(
    what: &ObjectRef,
    meta: &shoal_api::ObjectMeta,
    api_version: &str,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    if meta.name != name || meta.namespace != ns {
        return Err(ApiError::BadRequest(format!(
            "{what}: metadata says {}/{}, but the request path says {ns}/{name}",
            meta.namespace, meta.name
        )));
    }
    if api_version != API_VERSION {
        return Err(ApiError::Invalid(format!(
            "{what}: apiVersion: '{api_version}' is not supported; use {API_VERSION}"
        )));
    }
    Ok(())
}

/// Every file tree must be an uploaded blob; the CLI packs and uploads directories.
pub(crate) fn check_trees(
    state: &ApiState,
    what: &ObjectRef,
    files: &[shoal_api::FileMount],
) -> Result<(), ApiError> {
    for (i, f) in files.iter().enumerate() {
        if !f.source.digest().is_some_and(|d| state.blobs.contains(d)) {
            return Err(ApiError::Invalid(format!(
                "{what}: spec.files[{i}].source: '{}' is not an uploaded tree; apply the manifest with `shoal apply -f`, which packs and uploads directories",
                f.source
            )));
        }
    }
    Ok(())
}

/// What an object's `spec.component` may be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// A component (an App's `wasi:http` handler).
    Component,
    /// A component or a core module (a Job's command).
    ComponentOrModule,
}

/// The component must be an uploaded WebAssembly file of the kind `accept` names: where a
/// component source is turned into what a node runs (the CLI uploads local paths).
pub(crate) fn check_component(
    state: &ApiState,
    c: &ComponentRef,
    accept: Accept,
) -> Result<(), String> {
    let digest = match c {
        ComponentRef::Digest(d) => d,
        // `oci::resolve` has pulled it and named its digest by now.
        ComponentRef::Oci(r) => return Err(format!("'{r}' was not pulled")),
        ComponentRef::Path(p) => {
            return Err(format!(
                "'{p}' is a local path; apply the manifest with `shoal apply -f`, which uploads local files"
            ));
        }
    };
    let path = state.blobs.path(digest);
    if !path.is_file() {
        return Err(format!(
            "blob {digest} was never uploaded; upload it first (shoal apply does)"
        ));
    }
    let mut head = [0u8; WasmKind::HEAD];
    let n = std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| format!("blob {digest} cannot be read: {e}"))?;
    match WasmKind::of(&head[..n]) {
        None => Err(format!("blob {digest} is not a WebAssembly file")),
        Some(WasmKind::Module) if accept == Accept::Component => Err(format!(
            "blob {digest} is a core WebAssembly module, not a component; an App needs a wasi:http component"
        )),
        Some(_) => Ok(()),
    }
}

pub(crate) async fn delete(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let what = app_ref(&ns, &name);
    let _guard = state.apply_lock.lock().await;
    let Some(app) = state.objects.get::<App>(&ns, &name).await? else {
        return Err(ApiError::NotFound(format!("{what} not found")));
    };
    match state
        .objects
        .delete::<App>(&ns, &name, Precondition::None)
        .await?
    {
        Some(_) => {
            routes::release(&state.objects, &app, &app.spec.routes).await;
            if let Err(e) = revisions::delete_all(&state.objects, &ns, &name).await {
                tracing::warn!("{what}: cannot delete its revisions: {e}");
            }
            if let Err(e) = state.objects.delete_events_for(&what).await {
                tracing::warn!("{what}: cannot delete its events: {e}");
            }
            if let Some(logs) = &state.logs {
                logs.remove(&ns, &name);
            }
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::NotFound(format!("{what} not found"))),
    }
}

#[derive(Deserialize)]
pub(crate) struct EventQuery {
    kind: Option<String>,
    name: Option<String>,
}

/// Events about one object (`?kind=app&name=NAME`), or every event in the namespace; oldest
/// first either way.
pub(crate) async fn events(
    State(state): State<Arc<ApiState>>,
    Path(ns): Path<String>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<Event>>, ApiError> {
    match (q.kind, q.name) {
        (Some(kind), Some(name)) => {
            let about = ObjectRef {
                kind,
                namespace: ns,
                name,
            };
            Ok(Json(state.objects.events_for(&about).await?))
        }
        (None, None) => {
            let mut events = state.objects.events_in(&ns).await?;
            events.sort_by_key(|e| e.timestamp);
            Ok(Json(events))
        }
        _ => Err(ApiError::BadRequest(
            "give both kind and name to select one object's events, or neither for all".into(),
        )),
    }
}

/// The App's revisions, oldest first.
pub(crate) async fn revisions(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Vec<shoal_api::Revision>>, ApiError> {
    let app: App = find(&state, &app_ref(&ns, &name)).await?;
    let mut revisions = revisions::list(&state.objects, &app).await?;
    for r in &mut revisions {
        r.spec.redact();
    }
    Ok(Json(revisions))
}
