//! From API objects to what the runtime runs: the one place the node translates an App or a
//! Job into an [`Artifact`], a [`Workload`] and its serving or invocation settings.

use shoal_api::capabilities::config::RESERVED;
use shoal_api::{App, Identity, Job, JobRun, WorkloadSpec};
use shoal_blobs::Blobs;
use shoal_capabilities::{Capabilities, GrantError};
use shoal_logs::AppLog;
use shoal_metrics::AppMetrics;
use shoal_runtime::{Artifact, Invocation, Limits, Serving, Workload};
use std::sync::Arc;

/// Why an object's component cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// `spec.component` is not a digest (the server stores only digests).
    #[error("spec.component: '{0}' is not an uploaded component")]
    NotUploaded(String),
    /// The blob cannot be had.
    #[error("component: {0}")]
    Blob(#[from] shoal_blobs::BlobError),
}

/// The file of `component`, fetched if this node does not have it.
///
/// # Errors
/// The component is not a digest, or its blob cannot be had.
pub async fn artifact(
    blobs: &Blobs,
    component: &shoal_api::ComponentRef,
) -> Result<Artifact, ArtifactError> {
    let digest = component
        .digest()
        .ok_or_else(|| ArtifactError::NotUploaded(component.to_string()))?;
    let path = blobs.path(digest).await?;
    Ok(Artifact {
        digest: digest.to_string(),
        path,
        snapshot: false,
    })
}

/// How `app` is served: its limits with defaults, reuse and idleness, and the limit on
/// instances it shares with its namespace's other apps (`shared`).
pub fn serving(app: &App, shared: Option<Arc<shoal_runtime::SharedLimit>>) -> Serving {
    let l = app.spec.limits.resolve();
    Serving {
        limits: Limits {
            memory: l.memory,
            cpu: l.cpu,
            timeout: l.timeout,
            concurrency: l.concurrency,
        },
        reuse: app.spec.reuse.map(|r| shoal_runtime::Reuse {
            max_requests: r.max_requests(),
            max_concurrent: r.max_concurrent(),
        }),
        idle_after: shoal_api::Scale::idle_after(app.spec.scale.as_ref()),
        shared,
    }
}

/// `app` as the runtime runs it: its name, log, grants and measures.
///
/// # Errors
/// A grant cannot be built.
pub async fn http(
    app: &App,
    capabilities: &Capabilities,
    log: Arc<AppLog>,
    metrics: Arc<AppMetrics>,
) -> Result<Workload, GrantError> {
    let owner = app.object_ref();
    let grants = capabilities
        .grant(&owner, WorkloadSpec::App(&app.spec))
        .await?;
    Ok(Workload::new(owner.to_string(), log, grants, metrics))
}

/// Attempt `run.attempts` of `run` of `job`: the workload and its invocation. The command
/// sees exactly the spec's arguments and environment, as under `wasmtime run`; what it may
/// want to know about itself (e.g. for idempotent retries) is in `wasi:config` as
/// `shoal.job.name`, `shoal.job.run` and `shoal.job.attempt`, and with `identity: env` also
/// as `SHOAL_JOB_NAME`, `SHOAL_JOB_RUN` and `SHOAL_JOB_ATTEMPT`.
///
/// # Errors
/// A grant cannot be built.
pub async fn job_attempt(
    job: &Job,
    run: &JobRun,
    capabilities: &Capabilities,
    log: Arc<AppLog>,
) -> Result<(Workload, Invocation), GrantError> {
    let name = job.metadata.name.clone();
    let mut spec = job.spec.clone();
    for (key, value) in [
        ("name", name.clone()),
        ("run", run.number.to_string()),
        ("attempt", run.attempts.to_string()),
    ] {
        if spec.identity() == Identity::Env {
            let var = format!("SHOAL_JOB_{}", key.to_ascii_uppercase());
            spec.env.insert(var, value.clone());
        }
        spec.config.insert(format!("{RESERVED}job.{key}"), value);
    }
    let owner = job.object_ref();
    let grants = capabilities.grant(&owner, WorkloadSpec::Job(&spec)).await?;
    let invocation = Invocation {
        args: std::iter::once(name)
            .chain(spec.args.iter().cloned())
            .collect(),
        stdin: spec.stdin_bytes().into(),
        memory: spec.limits.memory(),
        cpu: spec.limits.cpu.as_ref().map(shoal_api::DurationSpec::get),
        timeout: spec.timeout(),
    };
    let metrics = AppMetrics::unlisted(&owner.to_string());
    let workload = Workload::new(owner.to_string(), log, grants, metrics);
    Ok((workload, invocation))
}
