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

    // Interrupted attempts: retried by policy, or the run fails saying so.
    for run in status.runs.iter_mut() {
        let ours = run.node.as_deref().is_none_or(|n| n == node);
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
            objects,
            runner,
            logs,
            node,
            clock,
        }
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
            Change::Resync(jobs) => {
                state.jobs = jobs.into_iter().map(|j| (key_of(&j), j)).collect();
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
    blobs: shoal_store::BlobStore,
    logs: LogDir,
}

impl NodeRunner {
    /// Runs commands from `blobs` in `runtime`, logging into `logs`.
    pub fn new(
        runtime: Arc<shoal_runtime::Runtime>,
        blobs: shoal_store::BlobStore,
        logs: LogDir,
    ) -> Self {
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
                .ok_or_else(|| format!("component {digest} is not a valid digest"))?;
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
