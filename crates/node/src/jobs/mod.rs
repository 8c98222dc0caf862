//! The job controller: Job objects in, command runs and Job status out.
//!
//! - `policy`: the pure [`reconcile`] and [`finish`], the whole of the policy;
//! - `runner`: running one attempt ([`Runner`], the node's [`NodeRunner`]);
//! - `clock`: the wall clock it judges schedules and backoffs by.
//!
//! [`JobController`] only feeds the policy (watch, timers, attempt results) and carries its
//! decisions out, writing each status by compare-and-swap *before* it acts on it: an attempt
//! is recorded Running before it starts, so a node killed at any moment leaves a run that the
//! next reconcile sees as interrupted and retries by policy — never one silently lost.

mod clock;
mod policy;
mod runner;

pub use clock::Clock;
pub use policy::{Action, Note, finish, prune, reconcile};
pub use runner::{NodeRunner, RunError, Runner};

use crate::controller::{Controller, Work};
use crate::events::Recorder;
use crate::watch::Change;
use shoal_api::Job;
use shoal_logs::LogDir;
use shoal_runtime::Exit;
use shoal_store::{ObjectKey, Objects};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Longest a controller sleeps before looking at a Job again: a wall clock that jumps is
/// noticed within this.
const MAX_SLEEP: Duration = Duration::from_secs(60);

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
    events: Recorder,
    jobs: HashMap<ObjectKey, Job>,
    /// Attempts in progress; dropping a handle stops its attempt.
    tasks: HashMap<(ObjectKey, u64), AbortOnDropHandle<()>>,
    /// When each Job wants to be looked at again.
    wake: HashMap<ObjectKey, Instant>,
}

/// An attempt ended.
pub struct Finished {
    key: ObjectKey,
    run: u64,
    result: Result<Exit, RunError>,
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
            events: Recorder::new(objects.clone(), &node),
            objects,
            runner,
            logs,
            node,
            clock,
            jobs: HashMap::new(),
            tasks: HashMap::new(),
            wake: HashMap::new(),
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
        let objects = self.objects.clone();
        crate::controller::run(objects, self, shutdown).await;
    }

    /// Stops looking after Job `key`, and stops its attempts.
    fn forget(&mut self, key: &ObjectKey) -> bool {
        self.jobs.remove(key);
        self.wake.remove(key);
        let before = self.tasks.len();
        self.tasks.retain(|(k, _), _| k != key);
        self.tasks.len() != before
    }

    /// Keeps the newest copy of a Job (the watch may deliver a copy older than one just
    /// written).
    fn remember(&mut self, job: Job) {
        let key = ObjectKey::of(&job.metadata);
        match self.jobs.get(&key) {
            Some(known) if known.metadata.resource_version > job.metadata.resource_version => {}
            _ => {
                self.jobs.insert(key, job);
            }
        }
    }

    /// Looks at Job `key` again in a second (a store write failed).
    fn retry_soon(&mut self, key: &ObjectKey) {
        self.wake
            .insert(key.clone(), Instant::now() + Duration::from_secs(1));
    }

    async fn record(&self, job: &Job, notes: &[Note]) {
        for note in notes {
            self.events
                .record(&job.object_ref(), note.reason.clone(), &note.message)
                .await;
        }
    }
}

impl Controller for JobController {
    type Object = Job;
    type Report = Finished;

    fn observe(&mut self, change: Change<Job>) -> Vec<ObjectKey> {
        match change {
            Change::Put(job) if !self.is_mine(&job) => {
                // Assigned elsewhere: stop what runs here; its new node takes over.
                self.forget(&ObjectKey::of(&job.metadata));
                vec![]
            }
            Change::Resync(jobs) => {
                self.jobs = jobs
                    .into_iter()
                    .filter(|j| self.is_mine(j))
                    .map(|j| (ObjectKey::of(&j.metadata), j))
                    .collect();
                let jobs = &self.jobs;
                self.tasks.retain(|(k, _), _| jobs.contains_key(k));
                self.wake.retain(|k, _| jobs.contains_key(k));
                self.jobs.keys().cloned().collect()
            }
            Change::Put(job) => {
                let key = ObjectKey::of(&job.metadata);
                self.remember(job);
                vec![key]
            }
            Change::Delete(key) => {
                if self.forget(&key) {
                    tracing::info!(
                        "job/{}: deleted; its running attempts are stopped",
                        key.name
                    );
                }
                if let Some(logs) = &self.logs {
                    logs.remove_job(&key.namespace, &key.name);
                }
                vec![]
            }
        }
    }

    /// Stores what the attempt's end means for its run.
    async fn report(&mut self, done: Finished, _work: &Work<Finished>) -> Vec<ObjectKey> {
        let Finished { key, run, result } = done;
        self.tasks.remove(&(key.clone(), run));
        let now = self.clock.now();
        let (mut notes, mut pruned) = (Vec::new(), Vec::new());
        let stored = self
            .objects
            .write_status::<Job>(&key, |job| {
                let mut next = job.clone();
                notes = finish(&mut next, run, &result, now);
                // In the same write: a reader never sees more finished runs than are kept.
                pruned = prune(&mut next.status, &next.spec);
                (!notes.is_empty()).then_some(next.status)
            })
            .await;
        match stored {
            Ok(Some(job)) => {
                self.record(&job, &notes).await;
                if let Some(logs) = &self.logs {
                    for run in &pruned {
                        logs.remove_job_run(&key.namespace, &key.name, *run);
                    }
                }
                self.remember(job);
            }
            Ok(None) => {}
            Err(e) => {
                // The attempt's end is not recorded: the run stays Running in the store and is
                // found interrupted (and retried by policy) once the store is back.
                tracing::warn!("job/{}: cannot record the end of run {run}: {e}", key.name);
                self.retry_soon(&key);
            }
        }
        vec![key]
    }

    fn next_wake(&self) -> Option<Instant> {
        self.wake.values().min().copied()
    }

    /// The Jobs whose wake-up time has come (no longer waiting).
    async fn wake(&mut self, now: Instant) -> Vec<ObjectKey> {
        let due: Vec<ObjectKey> = self
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

    /// Reconciles one Job against the stored object and carries out the decision.
    async fn reconcile(&mut self, key: &ObjectKey, work: &Work<Finished>) {
        if !self.jobs.contains_key(key) {
            return;
        }
        let running: HashSet<u64> = self
            .tasks
            .keys()
            .filter(|(k, _)| k == key)
            .map(|(_, run)| *run)
            .collect();
        let now = self.clock.now();
        let mut action = Action::default();
        let (assigned_only, node) = (self.assigned_only, &self.node);
        let stored = self
            .objects
            .write_status::<Job>(key, |job| {
                let mine = !assigned_only || job.status.node.as_deref() == Some(node.as_str());
                action = if mine {
                    reconcile(job, &running, node, now)
                } else {
                    Action::default()
                };
                action.status.take()
            })
            .await;
        let job = match stored {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("job/{}: cannot write status, retrying: {e}", key.name);
                self.retry_soon(key);
                return;
            }
        };
        self.record(&job, &action.notes).await;
        for run in &action.stop {
            self.tasks.remove(&(key.clone(), *run));
        }
        if let Some(logs) = &self.logs {
            for run in &action.pruned {
                logs.remove_job_run(&key.namespace, &key.name, *run);
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
                key.name,
                run.attempts
            );
            let attempt = self.runner.run(job.clone(), run);
            let (key2, number) = (key.clone(), *number);
            let task = work.spawn(async move {
                Finished {
                    key: key2,
                    run: number,
                    result: attempt.await,
                }
            });
            self.tasks
                .insert((key.clone(), number), AbortOnDropHandle::new(task));
        }
        match action.requeue_after {
            Some(after) => {
                self.wake
                    .insert(key.clone(), Instant::now() + after.min(MAX_SLEEP));
            }
            None => {
                self.wake.remove(key);
            }
        }
        self.remember(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use policy::tests::{NODE, job, t};
    use shoal_api::{JobPhase, JobRun};

    /// Exits as scripted, attempt by attempt, after `takes` of (tokio) time.
    struct Scripted {
        exits: std::sync::Mutex<Vec<Exit>>,
        takes: Duration,
    }

    impl Runner for Scripted {
        fn run(
            &self,
            _job: Job,
            _run: JobRun,
        ) -> futures::future::BoxFuture<'static, Result<Exit, RunError>> {
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
            .put(j, shoal_store::Precondition::Absent)
            .await
            .unwrap();
    }

    /// Polls the stored Job (in tokio time, which a paused clock advances when idle).
    async fn until(objects: &Objects, done: impl Fn(&Job) -> bool) -> Job {
        loop {
            if let Some(j) = objects.get::<Job>("default", "j").await.unwrap()
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
            .filter(|e| e.reason == shoal_api::EventReason::Skipped)
            .count();
        assert_eq!(skipped, 2);
        shutdown.cancel();
    }
}
