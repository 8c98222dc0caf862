//! The job controller: Job objects in, command runs and Job status out.
//!
//! [`reconcile`] is the whole policy, a pure function of a Job, the runs this node is executing
//! and the time: which runs to create (one per spec generation, or one per schedule time), which
//! attempts to start, which to stop, which interrupted attempts to retry, what to prune, and
//! when to look again. [`finish`] is the same for the end of an attempt. [`JobController`] only
//! feeds them (watch, timers, attempt results) and carries their decisions out, writing each
//! status by compare-and-swap *before* it acts on it: an attempt is recorded Running before it
//! starts, so a node killed at any moment leaves a run that the next reconcile sees as
//! interrupted and retries by policy — never one silently lost.

use crate::watch::{Change, Key, watch};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use shoal_api::{ConcurrencyPolicy, EventType, Job, JobPhase, JobRun, JobStatus, Schedule};
use shoal_runtime::Exit;
use shoal_store::{LogDir, Objects, job_key};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Longest a controller sleeps before looking at a Job again: a wall clock that jumps is
/// noticed within this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// An event to record about a Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
}

impl Note {
    fn normal(reason: &'static str, message: String) -> Self {
        Self {
            type_: EventType::Normal,
            reason,
            message,
        }
    }

    fn warning(reason: &'static str, message: String) -> Self {
        Self {
            type_: EventType::Warning,
            reason,
            message,
        }
    }
}

/// What [`reconcile`] decided for one Job.
#[derive(Debug, Default, PartialEq)]
pub struct Action {
    /// The status to store, when it changed.
    pub status: Option<JobStatus>,
    /// Runs whose next attempt starts now (already recorded Running in `status`).
    pub start: Vec<u64>,
    /// Runs to stop (already recorded Failed in `status`).
    pub stop: Vec<u64>,
    /// Runs dropped from the history, whose logs go too.
    pub pruned: Vec<u64>,
    /// Events to record.
    pub notes: Vec<Note>,
    /// Look at the Job again after this long, even if nothing changes.
    pub requeue_after: Option<Duration>,
}

/// Brings a Job's runs towards its spec; level-triggered and idempotent.
///
/// `running` are the runs whose attempts this node (`node`) is executing right now; a run
/// recorded Running on this node but not among them was interrupted (the node restarted).
pub fn reconcile(job: &Job, running: &HashSet<u64>, node: &str, now: DateTime<Utc>) -> Action {
    let mut action = Action::default();
    let mut status = job.status.clone();
    let spec = &job.spec;
    let generation = job.metadata.generation;
    status.observed_generation = generation;

    // Interrupted attempts: retried by policy, or the run fails saying so. A run is this
    // node's to judge if it ran here, or if the job was moved here from its node.
    let moved_here = job.status.node.as_deref() == Some(node);
    for run in status.runs.iter_mut() {
        let ours = moved_here || run.node.as_deref().is_none_or(|n| n == node);
        if run.phase == JobPhase::Running && ours && !running.contains(&run.number) {
            let what = format!(
                "attempt {} of run {} was interrupted (the node stopped while it ran)",
                run.attempts, run.number
            );
            action
                .notes
                .push(Note::warning("Interrupted", what.clone()));
            fail_attempt(run, spec, what, now);
        }
    }

    // Runs to create.
    match spec.schedule.as_deref().map(Schedule::parse) {
        None => {
            // A one-off job runs once per spec: a new generation supersedes older runs.
            for run in status.runs.iter_mut() {
                if !run.phase.is_finished() && run.generation < generation {
                    stop(run, format!("superseded by generation {generation}"), now);
                    action.stop.push(run.number);
                }
            }
            if !status.runs.iter().any(|r| r.generation == generation) {
                status.last_run += 1;
                status
                    .runs
                    .push(JobRun::new(status.last_run, generation, now, None));
                action.notes.push(Note::normal(
                    "Created",
                    format!("run {} (generation {generation})", status.last_run),
                ));
            }
        }
        Some(Err(message)) => {
            // The server validates schedules, so this is a newer syntax or a bug; say so.
            status.message = Some(format!("spec.schedule: {message}"));
        }
        Some(Ok(schedule)) => {
            status.message = None;
            let since = status
                .last_schedule_time
                .or(job.metadata.creation_timestamp)
                .unwrap_or(now);
            // Only the latest missed time counts: a node that was down does not catch up on
            // every run it missed.
            if let Some(due) = schedule.latest_until(now).filter(|t| *t > since) {
                status.last_schedule_time = Some(due);
                let active: Vec<u64> = status
                    .runs
                    .iter()
                    .filter(|r| !r.phase.is_finished())
                    .map(|r| r.number)
                    .collect();
                let policy = spec.concurrency_policy();
                let number = status.last_run + 1;
                let create = match policy {
                    _ if active.is_empty() => true,
                    ConcurrencyPolicy::Allow => true,
                    ConcurrencyPolicy::Forbid => {
                        action.notes.push(Note::normal(
                            "Skipped",
                            format!(
                                "the run due at {due} was skipped: run {} is still active (concurrencyPolicy Forbid)",
                                active[0]
                            ),
                        ));
                        false
                    }
                    ConcurrencyPolicy::Replace => {
                        for run in status
                            .runs
                            .iter_mut()
                            .filter(|r| active.contains(&r.number))
                        {
                            stop(run, format!("replaced by run {number}"), now);
                            action.stop.push(run.number);
                        }
                        true
                    }
                };
                if create {
                    status.last_run = number;
                    status
                        .runs
                        .push(JobRun::new(number, generation, now, Some(due)));
                    action.notes.push(Note::normal(
                        "Created",
                        format!("run {number} for the schedule time {due}"),
                    ));
                }
            }
            let after = status.last_schedule_time.map_or(now, |t| t.max(now));
            if let Some(next) = schedule.next_after(after) {
                action.requeue_after = Some(until(now, next));
            }
        }
    }

    // Attempts to start, now or after their backoff.
    for run in status
        .runs
        .iter_mut()
        .filter(|r| r.phase == JobPhase::Pending)
    {
        match run.retry_after {
            Some(at) if at > now => {
                let wait = until(now, at);
                action.requeue_after = Some(action.requeue_after.map_or(wait, |w| w.min(wait)));
            }
            _ => {
                run.phase = JobPhase::Running;
                run.attempts += 1;
                run.start_time.get_or_insert(now);
                run.node = Some(node.to_string());
                run.retry_after = None;
                action.start.push(run.number);
            }
        }
    }

    // History: every active run, and the newest finished ones.
    let keep = spec.history_limit();
    let finished = status.runs.iter().filter(|r| r.phase.is_finished()).count();
    let mut excess = finished.saturating_sub(keep);
    status.runs.retain(|r| {
        if excess > 0 && r.phase.is_finished() {
            excess -= 1;
            action.pruned.push(r.number);
            false
        } else {
            true
        }
    });

    if status != job.status {
        action.status = Some(status);
    }
    action
}

/// Records how attempt `run` ended: the run succeeds, waits for its retry, or fails.
/// `Err` is a command that cannot run at all (not a command, cannot be read): no retry
/// would change that.
pub fn finish(
    job: &mut Job,
    run: u64,
    result: &Result<Exit, String>,
    now: DateTime<Utc>,
) -> Vec<Note> {
    let spec = job.spec.clone();
    let Some(r) = job.status.run_mut(run) else {
        return Vec::new();
    };
    if r.phase != JobPhase::Running {
        // Stopped or replaced meanwhile: that verdict stands.
        return Vec::new();
    }
    let attempt = r.attempts;
    match result {
        Ok(exit) if exit.succeeded() => {
            r.phase = JobPhase::Succeeded;
            r.exit_code = Some(0);
            r.message = None;
            r.finish_time = Some(now);
            vec![Note::normal(
                "Succeeded",
                format!("run {run} succeeded on attempt {attempt}"),
            )]
        }
        Ok(exit) => {
            r.exit_code = exit.code();
            let what = format!("attempt {attempt} of run {run} {exit}");
            let note = Note::warning("AttemptFailed", what.clone());
            fail_attempt(r, &spec, what, now);
            vec![note]
        }
        Err(message) => {
            r.phase = JobPhase::Failed;
            r.message = Some(message.clone());
            r.finish_time = Some(now);
            vec![Note::warning("Failed", format!("run {run}: {message}"))]
        }
    }
}

/// The attempt of `run` failed with `why`: retry after the backoff, or fail the run.
fn fail_attempt(run: &mut JobRun, spec: &shoal_api::JobSpec, why: String, now: DateTime<Utc>) {
    if run.attempts < spec.max_attempts() {
        let wait = spec.backoff_after(run.attempts);
        run.phase = JobPhase::Pending;
        run.retry_after = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
        run.message = Some(format!("{why}; retrying in {wait:?}"));
    } else {
        run.phase = JobPhase::Failed;
        run.finish_time = Some(now);
        run.message = Some(if spec.max_attempts() > 1 {
            format!("{why}; all {} attempts failed", spec.max_attempts())
        } else {
            why
        });
    }
}

fn stop(run: &mut JobRun, why: String, now: DateTime<Utc>) {
    run.phase = JobPhase::Failed;
    run.message = Some(why);
    run.finish_time = Some(now);
    run.retry_after = None;
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}

/// Wall-clock time for the controller: the system's, or one that follows tokio's clock (so
/// that tests can drive schedules and backoffs with `tokio::time::pause()`).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Option<(Instant, DateTime<Utc>)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { base: None }
    }

    /// `start` now, then advancing with `tokio::time`.
    pub fn following_tokio(start: DateTime<Utc>) -> Self {
        Self {
            base: Some((Instant::now(), start)),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self.base {
            None => Utc::now(),
            Some((at, start)) => {
                start + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }
}

/// Runs one attempt of a run: what the controller asks of the node's runtime.
pub trait Runner: Send + Sync + 'static {
    /// Runs attempt `run.attempts` of `run` of `job` to its end; `Err` when the command cannot
    /// run at all.
    fn run(&self, job: Job, run: JobRun) -> BoxFuture<'static, Result<Exit, String>>;
}

enum Msg {
    Jobs(Box<Change<Job>>),
    Finished {
        key: Key,
        run: u64,
        result: Result<Exit, String>,
    },
}

/// Watches Jobs and runs them on this node, writing their status.
///
/// # Guarantees
/// Level-triggered: every change, attempt end and timer leads to [`reconcile`] on the Job as
/// stored, inside a compare-and-swap, and the controller acts only on what it stored.
pub struct JobController {
    /// Run only the jobs the cluster assigned to this node (`status.node`); false: every job.
    assigned_only: bool,
    objects: Objects,
    runner: Arc<dyn Runner>,
    logs: Option<LogDir>,
    node: String,
    clock: Clock,
}

struct State {
    jobs: HashMap<Key, Job>,
    /// Attempts in progress; dropping a handle stops its attempt.
    tasks: HashMap<(Key, u64), AbortOnDropHandle<()>>,
    /// When each Job wants to be looked at again.
    wake: HashMap<Key, Instant>,
}

impl JobController {
    /// A controller for node `node`, running attempts with `runner` and removing the logs
    /// of pruned runs from `logs`.
    pub fn new(
        objects: Objects,
        runner: Arc<dyn Runner>,
        logs: Option<LogDir>,
        node: String,
        clock: Clock,
    ) -> Self {
        Self {
            assigned_only: false,
            objects,
            runner,
            logs,
            node,
            clock,
        }
    }

    /// Runs only the jobs assigned to this node (in a cluster).
    pub fn assigned_only(mut self) -> Self {
        self.assigned_only = true;
        self
    }

    fn is_mine(&self, job: &Job) -> bool {
        !self.assigned_only || job.status.node.as_deref() == Some(self.node.as_str())
    }

    /// Runs until `shutdown` is cancelled; attempts in progress are stopped then (and found
    /// interrupted by the next start).
    pub async fn run(self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel(1024);
        let watcher = tokio::spawn(watch(
            self.objects.clone(),
            "jobs/",
            tx.clone(),
            |change| Msg::Jobs(Box::new(change)),
            shutdown.clone(),
        ));
        let mut state = State {
            jobs: HashMap::new(),
            tasks: HashMap::new(),
            wake: HashMap::new(),
        };
        loop {
            let next_wake = state.wake.values().min().copied();
            let msg = tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg { Some(m) => Some(m), None => break },
                _ = sleep_until(next_wake) => None,
            };
            let touched: Vec<Key> = match msg {
                None => state.due(Instant::now()),
                Some(Msg::Jobs(change)) => self.on_change(&mut state, *change),
                Some(Msg::Finished { key, run, result }) => {
                    state.tasks.remove(&(key.clone(), run));
                    self.record_finish(&mut state, &key, run, &result).await;
                    vec![key]
                }
            };
            for key in touched {
                self.reconcile(&mut state, &key, &tx).await;
            }
        }
        watcher.abort();
    }

    /// Takes in a change from the watch; returns the Jobs to reconcile.
    fn on_change(&self, state: &mut State, change: Change<Job>) -> Vec<Key> {
        match change {
            Change::Put(job) if !self.is_mine(&job) => {
                // Assigned elsewhere: stop what runs here; its new node takes over.
                let key = key_of(&job);
                state.jobs.remove(&key);
                state.wake.remove(&key);
                state.tasks.retain(|(k, _), _| *k != key);
                vec![]
            }
            Change::Resync(jobs) => {
                state.jobs = jobs
                    .into_iter()
                    .filter(|j| self.is_mine(j))
                    .map(|j| (key_of(&j), j))
                    .collect();
                let jobs = &state.jobs;
                state.tasks.retain(|(k, _), _| jobs.contains_key(k));
                state.wake.retain(|k, _| jobs.contains_key(k));
                state.jobs.keys().cloned().collect()
            }
            Change::Put(job) => {
                let key = key_of(&job);
                remember(state, job);
                vec![key]
            }
            Change::Delete(key) => {
                state.jobs.remove(&key);
                state.wake.remove(&key);
                let before = state.tasks.len();
                state.tasks.retain(|(k, _), _| *k != key);
                if state.tasks.len() != before {
                    tracing::info!("job/{}: deleted; its running attempts are stopped", key.1);
                }
                if let Some(logs) = &self.logs {
                    logs.remove_job(&key.0, &key.1);
                }
                vec![]
            }
        }
    }

    /// Stores what the attempt's end means for its run.
    async fn record_finish(
        &self,
        state: &mut State,
        key: &Key,
        run: u64,
        result: &Result<Exit, String>,
    ) {
        let now = self.clock.now();
        let mut notes = Vec::new();
        let stored = self
            .objects
            .update::<Job>(&job_key(&key.0, &key.1), |job| {
                notes = finish(job, run, result, now);
                !notes.is_empty()
            })
            .await;
        match stored {
            Ok(Some(job)) => {
                self.record(&job, &notes).await;
                remember(state, job);
            }
            Ok(None) => {}
            Err(e) => {
                // The attempt's end is not recorded: the run stays Running in the store and is
                // found interrupted (and retried by policy) once the store is back.
                tracing::warn!("job/{}: cannot record the end of run {run}: {e}", key.1);
                state
                    .wake
                    .insert(key.clone(), Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Reconciles one Job against the stored object and carries out the decision.
    async fn reconcile(&self, state: &mut State, key: &Key, tx: &mpsc::Sender<Msg>) {
        if !state.jobs.contains_key(key) {
            return;
        }
        let running: HashSet<u64> = state
            .tasks
            .keys()
            .filter(|(k, _)| k == key)
            .map(|(_, run)| *run)
            .collect();
        let now = self.clock.now();
        let mut action = Action::default();
        let stored = self
            .objects
            .update::<Job>(&job_key(&key.0, &key.1), |job| {
                if !self.is_mine(job) {
                    action = Action::default();
                    return false;
                }
                action = reconcile(job, &running, &self.node, now);
                match action.status.take() {
                    Some(status) => {
                        job.status = status;
                        true
                    }
                    None => false,
                }
            })
            .await;
        let job = match stored {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("job/{}: cannot write status, retrying: {e}", key.1);
                state
                    .wake
                    .insert(key.clone(), Instant::now() + Duration::from_secs(1));
                return;
            }
        };
        self.record(&job, &action.notes).await;
        for run in &action.stop {
            state.tasks.remove(&(key.clone(), *run));
        }
        if let Some(logs) = &self.logs {
            for run in &action.pruned {
                logs.remove_job_run(&key.0, &key.1, *run);
            }
        }
        for number in &action.start {
            let Some(run) = job
                .status
                .runs
                .iter()
                .find(|r| r.number == *number)
                .cloned()
            else {
                continue;
            };
            tracing::info!(
                "job/{}: run {number}, attempt {} starts",
                key.1,
                run.attempts
            );
            let (runner, tx, key2, number) =
                (self.runner.clone(), tx.clone(), key.clone(), *number);
            let attempt = runner.run(job.clone(), run);
            let task = tokio::spawn(async move {
                let result = attempt.await;
                let _ = tx
                    .send(Msg::Finished {
                        key: key2,
                        run: number,
                        result,
                    })
                    .await;
            });
            state
                .tasks
                .insert((key.clone(), number), AbortOnDropHandle::new(task));
        }
        match action.requeue_after {
            Some(after) => {
                state
                    .wake
                    .insert(key.clone(), Instant::now() + after.min(MAX_SLEEP));
            }
            None => {
                state.wake.remove(key);
            }
        }
        remember(state, job);
    }

    async fn record(&self, job: &Job, notes: &[Note]) {
        let source = format!("node/{}", self.node);
        for note in notes {
            if note.type_ == EventType::Warning {
                tracing::warn!("job/{}: {}", job.metadata.name, note.message);
            }
            if let Err(e) = self
                .objects
                .record_event(
                    &job.object_ref(),
                    note.type_,
                    note.reason,
                    &note.message,
                    &source,
                )
                .await
            {
                tracing::warn!("job/{}: cannot record event: {e}", job.metadata.name);
            }
        }
    }
}

impl State {
    /// The Jobs whose wake-up time has come (no longer waiting).
    fn due(&mut self, now: Instant) -> Vec<Key> {
        let due: Vec<Key> = self
            .wake
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &due {
            self.wake.remove(k);
        }
        due
    }
}

/// Keeps the newest copy of a Job (the watch may deliver a copy older than one just written).
fn remember(state: &mut State, job: Job) {
    let key = key_of(&job);
    match state.jobs.get(&key) {
        Some(known) if known.metadata.resource_version > job.metadata.resource_version => {}
        _ => {
            state.jobs.insert(key, job);
        }
    }
}

fn key_of(job: &Job) -> Key {
    (job.metadata.namespace.clone(), job.metadata.name.clone())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The node's [`Runner`]: loads the command (the compile cache makes a repeat a file map) and
/// runs it in the node's runtime, its output in the run's log.
pub struct NodeRunner {
    runtime: Arc<shoal_runtime::Runtime>,
    blobs: crate::Blobs,
    logs: LogDir,
}

impl NodeRunner {
    /// Runs commands from `blobs` in `runtime`, logging into `logs`.
    pub fn new(runtime: Arc<shoal_runtime::Runtime>, blobs: crate::Blobs, logs: LogDir) -> Self {
        Self {
            runtime,
            blobs,
            logs,
        }
    }
}

impl Runner for NodeRunner {
    fn run(&self, mut job: Job, run: JobRun) -> BoxFuture<'static, Result<Exit, String>> {
        let (runtime, blobs) = (self.runtime.clone(), self.blobs.clone());
        let (ns, name) = (job.metadata.namespace.clone(), job.metadata.name.clone());
        let log = self.logs.job_run(&ns, &name, run.number);
        Box::pin(async move {
            let digest = job.spec.component.clone();
            let path = blobs
                .path(&digest)
                .await
                .map_err(|m| format!("component: {m}"))?;
            let loader = runtime.clone();
            let command = tokio::task::spawn_blocking(move || loader.load_command(&digest, &path))
                .await
                .map_err(|e| format!("loading the command panicked: {e}"))?
                .map_err(|e| {
                    format!(
                        "component {} {e}",
                        shoal_api::short_digest(&job.spec.component)
                    )
                })?
                .0;
            log.write_line(
                "shoal",
                format!("run {} attempt {} started", run.number, run.attempts).as_bytes(),
            );
            // What the command may want to know about itself (e.g. for idempotent retries).
            for (k, v) in [
                ("SHOAL_JOB_NAME", name.clone()),
                ("SHOAL_JOB_RUN", run.number.to_string()),
                ("SHOAL_JOB_ATTEMPT", run.attempts.to_string()),
            ] {
                job.spec.env.insert(k.into(), v);
            }
            let inv = shoal_runtime::Invocation {
                args: std::iter::once(name)
                    .chain(job.spec.args.iter().cloned())
                    .collect(),
                stdin: job.spec.stdin.clone().unwrap_or_default().into(),
                memory: job.spec.limits.memory(),
                cpu: job
                    .spec
                    .limits
                    .cpu
                    .as_ref()
                    .map(shoal_api::DurationSpec::get),
                timeout: job.spec.timeout(),
            };
            let exit = runtime.run_command(&command, &job, log.clone(), inv).await;
            log.write_line(
                "shoal",
                format!("run {} attempt {} {exit}", run.number, run.attempts).as_bytes(),
            );
            Ok(exit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "n1";

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-01-01T{s}Z").parse().unwrap()
    }

    fn job(spec: &str) -> Job {
        let yaml = format!(
            "apiVersion: shoal/v1alpha1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  component: sha256:{}\n{spec}",
            "0".repeat(64)
        );
        let mut job: Job = serde_yaml::from_str(&yaml).unwrap();
        job.metadata.generation = 1;
        job.metadata.creation_timestamp = Some(t("10:00:00"));
        job.status.observed_generation = 1;
        job
    }

    fn run(number: u64, phase: JobPhase, attempts: u32) -> JobRun {
        let mut r = JobRun::new(number, 1, t("10:00:00"), None);
        r.phase = phase;
        r.attempts = attempts;
        r.node = Some(NODE.into());
        r
    }

    fn none() -> HashSet<u64> {
        HashSet::new()
    }

    #[test]
    fn a_new_one_off_job_gets_one_run_whose_attempt_starts() {
        let j = job("");
        let a = reconcile(&j, &none(), NODE, t("10:00:01"));
        let status = a.status.unwrap();
        assert_eq!(a.start, [1]);
        assert_eq!(status.last_run, 1);
        let r = &status.runs[0];
        assert_eq!(
            (r.phase, r.attempts, r.node.as_deref()),
            (JobPhase::Running, 1, Some(NODE))
        );
        assert_eq!(r.start_time, Some(t("10:00:01")));
        // Idempotent: with the attempt running, nothing more happens.
        let mut j = j;
        j.status = status;
        let again = reconcile(&j, &HashSet::from([1]), NODE, t("10:00:02"));
        assert_eq!(again, Action::default());
    }

    #[test]
    fn an_interrupted_attempt_is_retried_after_its_backoff_or_fails_the_run() {
        let mut j = job("  retries: 1\n  backoff: 10s\n");
        j.status.last_run = 1;
        j.status.runs = vec![run(1, JobPhase::Running, 1)];
        let a = reconcile(&j, &none(), NODE, t("10:01:00"));
        let r = &a.status.as_ref().unwrap().runs[0];
        assert_eq!(r.phase, JobPhase::Pending);
        assert_eq!(r.retry_after, Some(t("10:01:10")));
        assert_eq!(a.requeue_after, Some(Duration::from_secs(10)));
        assert!(a.start.is_empty());
        assert_eq!(a.notes[0].reason, "Interrupted");

        // At the retry time the second attempt starts.
        j.status = a.status.unwrap();
        let a = reconcile(&j, &none(), NODE, t("10:01:10"));
        assert_eq!(a.start, [1]);
        j.status = a.status.unwrap();
        assert_eq!(j.status.runs[0].attempts, 2);

        // Interrupted again, with no attempt left: the run fails and says why.
        let a = reconcile(&j, &none(), NODE, t("10:02:00"));
        let r = &a.status.unwrap().runs[0];
        assert_eq!(r.phase, JobPhase::Failed);
        assert_eq!(
            r.message.as_deref(),
            Some(
                "attempt 2 of run 1 was interrupted (the node stopped while it ran); all 2 attempts failed"
            )
        );
    }

    #[test]
    fn another_nodes_attempt_is_not_this_nodes_to_judge() {
        let mut j = job("");
        j.status.last_run = 1;
        let mut r = run(1, JobPhase::Running, 1);
        r.node = Some("n2".into());
        j.status.runs = vec![r];
        assert_eq!(
            reconcile(&j, &none(), NODE, t("10:01:00")),
            Action::default()
        );
    }

    #[test]
    fn a_job_moved_here_from_a_dead_node_retries_the_attempt_it_was_running() {
        let mut j = job("  retries: 1\n  backoff: 1s\n");
        j.status.last_run = 1;
        let mut r = run(1, JobPhase::Running, 1);
        r.node = Some("n2".into());
        j.status.runs = vec![r];
        j.status.node = Some(NODE.into());
        let a = reconcile(&j, &none(), NODE, t("10:01:00"));
        let r = &a.status.unwrap().runs[0];
        assert_eq!(
            (r.phase, r.retry_after),
            (JobPhase::Pending, Some(t("10:01:01")))
        );
        assert_eq!(a.notes[0].reason, "Interrupted");
    }

    #[test]
    fn a_new_generation_supersedes_the_active_run_of_a_one_off_job() {
        let mut j = job("");
        j.status.last_run = 1;
        j.status.runs = vec![run(1, JobPhase::Running, 1)];
        j.metadata.generation = 2;
        let a = reconcile(&j, &HashSet::from([1]), NODE, t("10:01:00"));
        assert_eq!(a.stop, [1]);
        assert_eq!(a.start, [2]);
        let status = a.status.unwrap();
        assert_eq!(
            status.runs[0].message.as_deref(),
            Some("superseded by generation 2")
        );
        assert_eq!((status.runs[1].number, status.runs[1].generation), (2, 2));
    }

    #[test]
    fn a_schedule_creates_one_run_for_the_latest_due_time_and_sleeps_until_the_next() {
        let j = job("  schedule: \"*/5 * * * *\"\n");
        let a = reconcile(&j, &none(), NODE, t("10:03:00"));
        assert_eq!(a.status, None);
        assert_eq!(a.requeue_after, Some(Duration::from_secs(120)));
        // Down from 10:00 to 10:17: one run, for 10:15, not three.
        let a = reconcile(&j, &none(), NODE, t("10:17:00"));
        let status = a.status.unwrap();
        assert_eq!(status.runs.len(), 1);
        assert_eq!(status.runs[0].scheduled_time, Some(t("10:15:00")));
        assert_eq!(status.last_schedule_time, Some(t("10:15:00")));
        assert_eq!(a.requeue_after, Some(Duration::from_secs(180)));
    }

    #[test]
    fn concurrency_policies_decide_what_an_overlapping_schedule_time_does() {
        let active = |policy: &str| {
            let mut j = job(&format!(
                "  schedule: \"*/5 * * * *\"\n  concurrencyPolicy: {policy}\n"
            ));
            j.status.last_run = 1;
            j.status.last_schedule_time = Some(t("10:00:00"));
            j.status.runs = vec![run(1, JobPhase::Running, 1)];
            reconcile(&j, &HashSet::from([1]), NODE, t("10:05:00"))
        };
        let forbid = active("Forbid");
        assert!(forbid.start.is_empty() && forbid.stop.is_empty());
        assert_eq!(forbid.notes[0].reason, "Skipped");
        assert_eq!(
            forbid.status.unwrap().last_schedule_time,
            Some(t("10:05:00"))
        );
        let allow = active("Allow");
        assert_eq!((allow.start, allow.stop), (vec![2], vec![]));
        let replace = active("Replace");
        assert_eq!((replace.start, replace.stop), (vec![2], vec![1]));
        let status = replace.status.unwrap();
        assert_eq!(status.runs[0].message.as_deref(), Some("replaced by run 2"));
    }

    #[test]
    fn history_keeps_the_newest_finished_runs_and_every_active_one() {
        let mut j = job("  schedule: \"@yearly\"\n  historyLimit: 2\n");
        j.status.last_run = 5;
        j.status.last_schedule_time = Some(t("10:00:00"));
        j.status.runs = vec![
            run(1, JobPhase::Succeeded, 1),
            run(2, JobPhase::Running, 1),
            run(3, JobPhase::Failed, 1),
            run(4, JobPhase::Succeeded, 1),
            run(5, JobPhase::Succeeded, 1),
        ];
        let a = reconcile(&j, &HashSet::from([2]), NODE, t("10:00:01"));
        assert_eq!(a.pruned, [1, 3]);
        let kept: Vec<u64> = a.status.unwrap().runs.iter().map(|r| r.number).collect();
        assert_eq!(kept, [2, 4, 5]);
    }

    #[test]
    fn an_attempt_ends_in_success_a_retry_a_failure_or_a_final_error() {
        let ended = |spec: &str, attempts: u32, result: Result<Exit, String>| {
            let mut j = job(spec);
            j.status.runs = vec![run(1, JobPhase::Running, attempts)];
            let notes = finish(&mut j, 1, &result, t("10:00:05"));
            (j.status.runs.remove(0), notes)
        };
        let (r, notes) = ended("", 1, Ok(Exit::Code(0)));
        assert_eq!((r.phase, r.exit_code), (JobPhase::Succeeded, Some(0)));
        assert_eq!(notes[0].reason, "Succeeded");
        let (r, _) = ended("  retries: 1\n  backoff: 2s\n", 1, Ok(Exit::Code(4)));
        assert_eq!((r.phase, r.exit_code), (JobPhase::Pending, Some(4)));
        assert_eq!(r.retry_after, Some(t("10:00:07")));
        let (r, _) = ended(
            "  retries: 1\n",
            2,
            Ok(Exit::TimedOut(Duration::from_secs(1))),
        );
        assert_eq!((r.phase, r.exit_code), (JobPhase::Failed, None));
        assert_eq!(r.finish_time, Some(t("10:00:05")));
        let (r, notes) = ended("  retries: 5\n", 1, Err("is not a wasi:cli command".into()));
        assert_eq!((r.phase, r.attempts), (JobPhase::Failed, 1));
        assert_eq!(notes[0].reason, "Failed");
        // A run stopped meanwhile keeps that verdict.
        let mut j = job("");
        j.status.runs = vec![run(1, JobPhase::Failed, 1)];
        assert!(finish(&mut j, 1, &Ok(Exit::Code(0)), t("10:00:05")).is_empty());
        assert_eq!(j.status.runs[0].phase, JobPhase::Failed);
    }

    /// Exits as scripted, attempt by attempt, after `takes` of (tokio) time.
    struct Scripted {
        exits: std::sync::Mutex<Vec<Exit>>,
        takes: Duration,
    }

    impl Runner for Scripted {
        fn run(&self, _job: Job, _run: JobRun) -> BoxFuture<'static, Result<Exit, String>> {
            let exit = self.exits.lock().unwrap().remove(0);
            let takes = self.takes;
            Box::pin(async move {
                tokio::time::sleep(takes).await;
                Ok(exit)
            })
        }
    }

    async fn controller(
        exits: Vec<Exit>,
        takes: Duration,
    ) -> (Objects, CancellationToken, tempfile::TempDir, Clock) {
        let dir = tempfile::tempdir().unwrap();
        let store = shoal_store::Embedded::open(&dir.path().join("store.redb")).unwrap();
        let objects = Objects::new(Arc::new(store));
        let clock = Clock::following_tokio(t("10:00:00"));
        let runner = Arc::new(Scripted {
            exits: std::sync::Mutex::new(exits),
            takes,
        });
        let c = JobController::new(objects.clone(), runner, None, NODE.into(), clock);
        let shutdown = CancellationToken::new();
        tokio::spawn(c.run(shutdown.clone()));
        (objects, shutdown, dir, clock)
    }

    async fn put(objects: &Objects, mut j: Job) {
        j.metadata.creation_timestamp = Some(t("10:00:00"));
        objects
            .put(
                &job_key("default", "j"),
                j,
                shoal_store::Precondition::Absent,
            )
            .await
            .unwrap();
    }

    /// Polls the stored Job (in tokio time, which a paused clock advances when idle).
    async fn until(objects: &Objects, done: impl Fn(&Job) -> bool) -> Job {
        loop {
            if let Some(j) = objects.get::<Job>(&job_key("default", "j")).await.unwrap()
                && done(&j)
            {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_controller_waits_out_each_backoff_before_the_next_attempt() {
        let exits = vec![Exit::Code(1), Exit::Code(1), Exit::Code(0)];
        let (objects, shutdown, _dir, _clock) = controller(exits, Duration::from_secs(1)).await;
        put(&objects, job("  retries: 2\n  backoff: 1m\n")).await;
        let j = until(&objects, |j| {
            j.status
                .latest()
                .is_some_and(|r| r.phase == JobPhase::Succeeded)
        })
        .await;
        let r = j.status.latest().unwrap();
        assert_eq!(r.attempts, 3);
        // 1 s per attempt, then 1 min and 2 min of backoff between them.
        let took = r.finish_time.unwrap() - r.start_time.unwrap();
        assert!(
            took >= chrono::Duration::seconds(183) && took < chrono::Duration::seconds(190),
            "{took}"
        );
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn the_controller_runs_a_schedule_and_skips_times_that_would_overlap() {
        // Runs last 90 s; one is due every minute.
        let exits = vec![Exit::Code(0); 10];
        let (objects, shutdown, _dir, clock) = controller(exits, Duration::from_secs(90)).await;
        put(&objects, job("  schedule: \"* * * * *\"\n")).await;
        let j = until(&objects, |j| j.status.last_run >= 3).await;
        let times: Vec<DateTime<Utc>> = j
            .status
            .runs
            .iter()
            .filter_map(|r| r.scheduled_time)
            .collect();
        // 10:01 runs until 10:02:30, so 10:02 is skipped; 10:03 runs, 10:04 skipped, 10:05.
        assert_eq!(times[..3], [t("10:01:00"), t("10:03:00"), t("10:05:00")]);
        assert!(clock.now() >= t("10:05:00"));
        let skipped = objects
            .events_for(&j.object_ref())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.reason == "Skipped")
            .count();
        assert_eq!(skipped, 2);
        shutdown.cancel();
    }
}
