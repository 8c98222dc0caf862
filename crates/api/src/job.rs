//! The Job kind: a `wasi:cli` command run to completion, once or on a cron schedule.

use crate::{ComponentRef, DurationSpec, InvalidValue, ObjectMeta, ObjectRef, Quantity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A batch task: a `wasi:cli` command component (or a wasip1 core module with `_start`) run to
/// completion with its arguments, environment and stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    /// Always `shoal/v1alpha1`.
    pub api_version: String,
    /// Always `Job`.
    pub kind: String,
    /// Name, namespace and bookkeeping.
    pub metadata: ObjectMeta,
    /// What the user asked for.
    pub spec: JobSpec,
    /// What the system observed; never written by users.
    #[serde(default)]
    pub status: JobStatus,
}

impl Job {
    /// The `job/NAME` reference used in messages.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: "job".into(),
            namespace: self.metadata.namespace.clone(),
            name: self.metadata.name.clone(),
        }
    }
}

/// The user's description of a Job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// A path relative to the manifest (the CLI uploads it), `sha256:<hex>` of an uploaded
    /// blob, or an `oci://` image (the server pulls it at apply time and stores its digest
    /// here).
    pub component: ComponentRef,
    /// Where the component came from, set by the server when `component` named an OCI
    /// reference: that reference with the manifest digest it resolved to
    /// (`oci://REGISTRY/REPO:TAG@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_source: Option<String>,
    /// Arguments after the program name (`argv[1..]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables visible to the command.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Text the command reads on stdin; empty when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Bytes the command reads on stdin, base64 (instead of `stdin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_base64: Option<String>,
    /// Values for the `wasi:config/store` interface (the run's identity is there too, under
    /// `shoal.job.name`, `shoal.job.run` and `shoal.job.attempt`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Where the command also finds its run's identity: `config` (only in `wasi:config`, the
    /// default: the environment is exactly `env`) or `env` (also as `SHOAL_JOB_NAME`,
    /// `SHOAL_JOB_RUN` and `SHOAL_JOB_ATTEMPT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Directory trees shipped with the job and mounted for each attempt: read-only, or
    /// (`mode: rw`) a writable copy that each attempt starts afresh and that is discarded after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::FileMount>,
    /// The command's initial working directory (`wasi:cli/environment.initial-cwd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Memory and CPU per attempt.
    #[serde(default, skip_serializing_if = "JobLimits::is_empty")]
    pub limits: JobLimits,
    /// Wall-clock time one attempt may take; default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Attempts after the first one that fails; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Wait before the first retry, doubled for each later one (at most 1h); default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<DurationSpec>,
    /// Cron schedule (UTC) that makes this a recurring job, e.g. `*/5 * * * *`; a leading sixth
    /// field gives seconds. Without it the job runs once per spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Whether a scheduled run may start while an earlier one is active; default `Forbid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Finished runs kept in the status (and their logs); default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<u32>,
}

impl JobSpec {
    /// Default wall-clock time per attempt.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Default wait before the first retry.
    pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
    /// Longest wait between two attempts.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
    /// Default number of finished runs kept.
    pub const DEFAULT_HISTORY: u32 = 3;
    /// Most finished runs that may be kept.
    pub const MAX_HISTORY: u32 = 100;
    /// Most retries a spec may ask for.
    pub const MAX_RETRIES: u32 = 100;
    /// Largest `stdin` a spec may carry (it is stored with the object).
    pub const MAX_STDIN: usize = 64 << 10;

    /// The bytes on stdin: `stdin`, or `stdinBase64` decoded (empty when neither, or when the
    /// base64 is invalid, which validation refuses).
    pub fn stdin_bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        match (&self.stdin, &self.stdin_base64) {
            (Some(text), _) => text.clone().into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    /// Where the run's identity goes, defaulted.
    pub fn identity(&self) -> Identity {
        self.identity.unwrap_or_default()
    }

    /// Wall-clock time one attempt may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(Self::DEFAULT_TIMEOUT, DurationSpec::get)
    }

    /// Attempts a run gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.retries.unwrap_or(0).saturating_add(1)
    }

    /// The wait after failed attempt number `attempt` (1-based) before the next one.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let first = self
            .backoff
            .as_ref()
            .map_or(Self::DEFAULT_BACKOFF, DurationSpec::get);
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        first.saturating_mul(factor).min(Self::MAX_BACKOFF)
    }

    /// Finished runs kept.
    pub fn history_limit(&self) -> usize {
        self.history_limit.unwrap_or(Self::DEFAULT_HISTORY) as usize
    }

    /// The concurrency policy, defaulted.
    pub fn concurrency_policy(&self) -> ConcurrencyPolicy {
        self.concurrency_policy.unwrap_or_default()
    }
}

/// Where a job's command finds its run's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// In `wasi:config/store` only.
    #[default]
    Config,
    /// Also in the environment.
    Env,
}

/// What a scheduled run does when an earlier run is still active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConcurrencyPolicy {
    /// Skip this run.
    #[default]
    Forbid,
    /// Start it beside the active ones.
    Allow,
    /// Stop the active runs and start this one.
    Replace,
}

/// Limits of one attempt of a Job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobLimits {
    /// Linear memory (each memory of the instance); default 128Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Guest CPU time per attempt (the thread CPU it really used); default: bounded only by
    /// the timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<DurationSpec>,
}

impl JobLimits {
    fn is_empty(&self) -> bool {
        *self == JobLimits::default()
    }

    /// Memory per linear memory, defaulted.
    pub fn memory(&self) -> u64 {
        self.memory
            .as_ref()
            .map_or(crate::Limits::DEFAULT_MEMORY, Quantity::bytes)
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobPhase {
    /// Waiting for its first attempt, or for a retry after a failed one.
    #[default]
    Pending,
    /// An attempt is executing.
    Running,
    /// An attempt exited with code 0.
    Succeeded,
    /// Every attempt failed, or the run was stopped; `message` says why.
    Failed,
}

impl JobPhase {
    /// Succeeded or Failed: the run will not change again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobPhase::Succeeded | JobPhase::Failed)
    }
}

impl std::fmt::Display for JobPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the system observed about a Job: its runs, newest last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default)]
    pub observed_generation: u64,
    /// Number of the last run created (runs are numbered from 1 and never reused).
    #[serde(default)]
    pub last_run: u64,
    /// The schedule time of the last scheduled run considered (started or skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// In a cluster: the node that runs the job (chosen by the leading server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why the job cannot run at all (e.g. its component is not a command), when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The active runs and the last finished ones, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<JobRun>,
}

impl JobStatus {
    /// The newest run.
    pub fn latest(&self) -> Option<&JobRun> {
        self.runs.last()
    }

    /// Run number `number`.
    pub fn run_mut(&mut self, number: u64) -> Option<&mut JobRun> {
        self.runs.iter_mut().find(|r| r.number == number)
    }
}

/// One run of a Job: its attempts until one succeeds or they are used up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    /// 1, 2, … in the order runs were created.
    pub number: u64,
    /// The spec generation it runs.
    pub generation: u64,
    /// Pending, Running, Succeeded or Failed.
    pub phase: JobPhase,
    /// Attempts started so far.
    #[serde(default)]
    pub attempts: u32,
    /// Exit code of the last attempt that exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// How the last attempt ended, when it did not exit with 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the last attempt ended: exited (see `exitCode`), trapped, or was ended by a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Termination>,
    /// The node that runs (or ran) its current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// For a scheduled run: the schedule time it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_time: DateTime<Utc>,
    /// When its first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<DateTime<Utc>>,
    /// A Pending run after a failed attempt: not before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<DateTime<Utc>>,
}

impl JobRun {
    /// A new Pending run.
    pub fn new(
        number: u64,
        generation: u64,
        created: DateTime<Utc>,
        scheduled: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            number,
            generation,
            phase: JobPhase::Pending,
            attempts: 0,
            exit_code: None,
            message: None,
            ended: None,
            node: None,
            scheduled_time: scheduled,
            created_time: created,
            start_time: None,
            finish_time: None,
            retry_after: None,
        }
    }
}

/// How a job's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Termination {
    /// The command exited, with the run's `exitCode`.
    Exited,
    /// The command trapped (or its host failed it).
    Trapped,
    /// It failed after its memory limit refused growth.
    OutOfMemory,
    /// Its CPU limit ended it.
    CpuLimit,
    /// Its timeout ended it.
    Timeout,
    /// Its node stopped while it ran.
    Interrupted,
    /// It was stopped: superseded, replaced, or its job deleted.
    Stopped,
    /// It could not run at all (not a command, or its component cannot be had).
    NotRunnable,
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Termination::Exited => "exited",
            Termination::Trapped => "trapped",
            Termination::OutOfMemory => "out of memory",
            Termination::CpuLimit => "CPU limit",
            Termination::Timeout => "timeout",
            Termination::Interrupted => "interrupted",
            Termination::Stopped => "stopped",
            Termination::NotRunnable => "not runnable",
        })
    }
}

/// A parsed cron schedule (UTC): five fields (minute hour day-of-month month day-of-week), or
/// six with a leading seconds field; `@hourly`-style nicknames too.
#[derive(Debug, Clone)]
pub struct Schedule(croner::Cron);

impl Schedule {
    /// Parses `text`; the error says what a schedule looks like.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::parse_text(text).map_err(InvalidValue::from)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        text.parse::<croner::Cron>().map(Self).map_err(|e| {
            format!("'{text}' is not a cron schedule ({e}); use e.g. '*/5 * * * *' (every 5 minutes, UTC)")
        })
    }

    /// The first schedule time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_next_occurrence(&t, false).ok()
    }

    /// The last schedule time at or before `t`.
    pub fn latest_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_previous_occurrence(&t, true).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_step() {
        let t: DateTime<Utc> = "2026-01-01T10:07:30Z".parse().unwrap();
        let every5 = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            every5.next_after(t).unwrap(),
            "2026-01-01T10:10:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let seconds = Schedule::parse("*/2 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(t).unwrap(),
            "2026-01-01T10:07:32Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            every5.latest_until(t).unwrap(),
            "2026-01-01T10:05:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(Schedule::parse("@hourly").is_ok());
        let err = Schedule::parse("every day").unwrap_err();
        assert!(err.contains("*/5 * * * *"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let spec: JobSpec =
            serde_json::from_str(r#"{"component":"x","backoff":"1s","retries":30}"#).unwrap();
        assert_eq!(spec.max_attempts(), 31);
        assert_eq!(spec.backoff_after(1), Duration::from_secs(1));
        assert_eq!(spec.backoff_after(3), Duration::from_secs(4));
        assert_eq!(spec.backoff_after(30), JobSpec::MAX_BACKOFF);
    }
}
