//! Running one attempt: what the job controller asks of the node (a [`Runner`]), and the
//! node's own, [`NodeRunner`], which loads the command and runs it in the runtime.

use crate::workload::ArtifactError;
use futures::future::BoxFuture;
use shoal_api::{Job, JobRun};
use shoal_blobs::Blobs;
use shoal_capabilities::{Capabilities, GrantError};
use shoal_logs::LogDir;
use shoal_runtime::{Exit, LoadError, Runtime};
use std::sync::Arc;

/// Why a command cannot run at all (no retry would change that).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Its component cannot be had.
    #[error("{0}")]
    Component(#[from] ArtifactError),
    /// What it is granted cannot be set up.
    #[error("{0}")]
    Grant(#[from] GrantError),
    /// It does not load as a command.
    #[error("component {component} {error}")]
    Load {
        /// The component, shortened.
        component: String,
        /// Why.
        error: LoadError,
    },
    /// Loading it panicked.
    #[error("loading the command panicked: {0}")]
    Panicked(String),
}

/// Runs one attempt of a run: what the controller asks of the node's runtime.
pub trait Runner: Send + Sync + 'static {
    /// Runs attempt `run.attempts` of `run` of `job` to its end.
    ///
    /// # Errors
    /// The command cannot run at all.
    fn run(&self, job: Job, run: JobRun) -> BoxFuture<'static, Result<Exit, RunError>>;
}

/// The node's [`Runner`]: loads the command (the compile cache makes a repeat a file map) and
/// runs it in the node's runtime, its output in the run's log.
pub struct NodeRunner {
    runtime: Arc<Runtime>,
    blobs: Blobs,
    capabilities: Arc<Capabilities>,
    logs: LogDir,
}

impl NodeRunner {
    /// Runs commands from `blobs` in `runtime`, granted by `capabilities`, logging into `logs`.
    pub fn new(
        runtime: Arc<Runtime>,
        blobs: Blobs,
        capabilities: Arc<Capabilities>,
        logs: LogDir,
    ) -> Self {
        Self {
            runtime,
            blobs,
            capabilities,
            logs,
        }
    }
}

impl Runner for NodeRunner {
    fn run(&self, job: Job, run: JobRun) -> BoxFuture<'static, Result<Exit, RunError>> {
        let (runtime, blobs, capabilities) = (
            self.runtime.clone(),
            self.blobs.clone(),
            self.capabilities.clone(),
        );
        let log = self
            .logs
            .job_run(&job.metadata.namespace, &job.metadata.name, run.number);
        Box::pin(async move {
            let artifact = crate::workload::artifact(&blobs, &job.spec.component).await?;
            let component = artifact.short().to_string();
            let loader = runtime.clone();
            let command = tokio::task::spawn_blocking(move || loader.load_command(&artifact))
                .await
                .map_err(|e| RunError::Panicked(e.to_string()))?
                .map_err(|error| RunError::Load { component, error })?
                .0;
            log.write_line(
                "shoal",
                format!("run {} attempt {} started", run.number, run.attempts).as_bytes(),
            );
            let (workload, invocation) =
                crate::workload::job_attempt(&job, &run, &capabilities, log.clone()).await?;
            let exit = runtime.run_command(&command, workload, invocation).await;
            log.write_line(
                "shoal",
                format!("run {} attempt {} {exit}", run.number, run.attempts).as_bytes(),
            );
            Ok(exit)
        })
    }
}
