//! Job endpoints: list, get, apply, delete, and the logs of a run.

use crate::apps::{
    Accept, applied, check_component, check_identity, check_trees, decode_object, find,
};
use crate::logs::LogQuery;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shoal_api::{ApplyResponse, ApplyResult, EventReason, Job, JobStatus, ObjectRef};
use shoal_store::Precondition;
use std::sync::Arc;

fn job_ref(ns: &str, name: &str) -> ObjectRef {
    ObjectRef::new("job", ns, name)
}

pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    Path(ns): Path<String>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let (jobs, _) = state.objects.list::<Job>(Some(&ns)).await?;
    Ok(Json(jobs))
}

pub(crate) async fn get(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Job>, ApiError> {
    find(&state, &job_ref(&ns, &name)).await.map(Json)
}

/// Creates, updates or leaves a Job unchanged. A changed spec is a new generation: a one-off
/// job runs again with it, a scheduled one uses it from its next run. The status (the runs
/// so far) is the node's and survives every apply.
pub(crate) async fn apply(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ApplyResponse<Job>>), ApiError> {
    let what = job_ref(&ns, &name);
    let mut job: Job = decode_object(&what, &body)?;
    check_identity(&what, &job.metadata, &job.api_version, &ns, &name)?;
    shoal_manifest::validate_job(&job).map_err(|e| ApiError::Invalid(format!("{what}: {e}")))?;
    let namespace = crate::namespaces::existing(&state, &ns).await?;
    let spec = &mut job.spec;
    crate::oci::resolve(
        &state,
        &what,
        "spec.component",
        &headers,
        &mut spec.component,
        &mut spec.component_source,
    )
    .await?;
    check_component(&state, &job.spec.component, Accept::ComponentOrModule)
        .map_err(|m| ApiError::Invalid(format!("{what}: spec.component: {m}")))?;
    check_trees(&state, &what, &job.spec.files)?;

    let _guard = state.apply_lock.lock().await;
    let adds = crate::quota::Footprint::job(&job);
    crate::quota::admit(&state, &namespace, crate::quota::Applying::Job(&name), adds).await?;
    let mut attempts = 0;
    let (result, stored) = loop {
        let written = match state.objects.get::<Job>(&ns, &name).await? {
            None => {
                let mut new = job.clone();
                new.metadata.generation = 1;
                new.metadata.creation_timestamp = Some(chrono::Utc::now());
                new.status = JobStatus::default();
                state
                    .objects
                    .put(new, Precondition::Absent)
                    .await
                    .map(|j| (ApplyResult::Created, j))
            }
            Some(current)
                if current.spec == job.spec && current.metadata.labels == job.metadata.labels =>
            {
                Ok((ApplyResult::Unchanged, current))
            }
            Some(mut current) => {
                let rv = current.metadata.resource_version;
                if current.spec != job.spec {
                    current.metadata.generation += 1;
                    current.spec = job.spec.clone();
                }
                current.metadata.labels = job.metadata.labels.clone();
                state
                    .objects
                    .put(current, Precondition::ModRevision(rv))
                    .await
                    .map(|j| (ApplyResult::Configured, j))
            }
        };
        match written {
            // The node wrote the status meanwhile: read again.
            Err(shoal_store::StoreError::Conflict { .. }) if attempts < 10 => attempts += 1,
            other => break other?,
        }
    };
    let event = match result {
        ApplyResult::Created => Some((EventReason::Created, "generation 1".to_string())),
        ApplyResult::Configured => Some((
            EventReason::Updated,
            format!("generation {}", stored.metadata.generation),
        )),
        ApplyResult::Unchanged => None,
    };
    Ok(applied(&state, &what, event, result, stored).await)
}

/// Deletes a Job; the node stops its running attempts when it sees it gone.
pub(crate) async fn delete(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let what = job_ref(&ns, &name);
    let deleted = state
        .objects
        .delete::<Job>(&ns, &name, Precondition::None)
        .await?;
    if deleted.is_none() {
        return Err(ApiError::NotFound(format!("{what} not found")));
    }
    if let Err(e) = state.objects.delete_events_for(&what).await {
        tracing::warn!("{what}: cannot delete its events: {e}");
    }
    if let Some(logs) = &state.logs {
        logs.remove_job(&ns, &name);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The output of one run (`?run=N`, default the latest): stdout, stderr and the node's lines.
pub(crate) async fn logs(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let job: Job = find(&state, &job_ref(&ns, &name)).await?;
    let what = job.object_ref();
    let run = match q.run {
        Some(n) if job.status.runs.iter().any(|r| r.number == n) => n,
        Some(n) => {
            let kept: Vec<String> = job
                .status
                .runs
                .iter()
                .map(|r| r.number.to_string())
                .collect();
            return Err(ApiError::NotFound(format!(
                "{what} has no run {n}; the runs kept are: {}",
                if kept.is_empty() {
                    "none".into()
                } else {
                    kept.join(", ")
                }
            )));
        }
        None => match job.status.latest() {
            Some(r) => r.number,
            None => {
                return Err(ApiError::NotFound(format!(
                    "{what} has not run yet; see `shoal describe {what}`"
                )));
            }
        },
    };
    let holders: Vec<String> = job.status.node.iter().cloned().collect();
    let source = crate::logs::source(&state, &what.to_string(), &holders).await?;
    let scope = shoal_logs::job_scope(&ns, &name);
    let what = format!("{what} run {run}");
    crate::logs::serve(source, what, scope, run.to_string(), q).await
}
