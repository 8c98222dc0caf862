//! The job controller's policy: [`reconcile`] is the whole of it, a pure function of a Job,
//! the runs this node is executing and the time — which runs to create (one per spec
//! generation, or one per schedule time), which attempts to start, which to stop, which
//! interrupted attempts to retry, what to prune, and when to look again. [`finish`] is the
//! same for the end of an attempt.

use super::runner::RunError;
use chrono::{DateTime, Utc};
use shoal_api::{
    ConcurrencyPolicy, EventReason, Job, JobPhase, JobRun, JobStatus, Schedule, Termination,
};
use shoal_runtime::Exit;
use std::collections::HashSet;
use std::time::Duration;

/// An event to record about a Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Why (it says whether it is routine).
    pub reason: EventReason,
    /// What happened.
    pub message: String,
}

impl Note {
    fn new(reason: EventReason, message: String) -> Self {
        Self { reason, message }
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
                .push(Note::new(EventReason::Interrupted, what.clone()));
            run.ended = Some(Termination::Interrupted);
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
                action.notes.push(Note::new(
                    EventReason::Created,
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
                        action.notes.push(Note::new(EventReason::Skipped,
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
                    action.notes.push(Note::new(
                        EventReason::Created,
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

    action.pruned = prune(&mut status, spec);

    if status != job.status {
        action.status = Some(status);
    }
    action
}

/// Records how attempt `run` ended: the run succeeds, waits for its retry, or fails (and a
/// finished run may push the oldest out of the history: see [`prune`], which the caller runs
/// in the same write).
/// `Err` is a command that cannot run at all (not a command, cannot be read): no retry
/// would change that.
pub fn finish(
    job: &mut Job,
    run: u64,
    result: &Result<Exit, RunError>,
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
            r.ended = Some(Termination::Exited);
            r.message = None;
            r.finish_time = Some(now);
            vec![Note::new(
                EventReason::Succeeded,
                format!("run {run} succeeded on attempt {attempt}"),
            )]
        }
        Ok(exit) => {
            r.exit_code = exit.code();
            r.ended = Some(termination(exit));
            let what = format!("attempt {attempt} of run {run} {exit}");
            let note = Note::new(EventReason::AttemptFailed, what.clone());
            fail_attempt(r, &spec, what, now);
            vec![note]
        }
        Err(error) => {
            let message = error.to_string();
            r.ended = Some(Termination::NotRunnable);
            r.phase = JobPhase::Failed;
            r.message = Some(message.clone());
            r.finish_time = Some(now);
            vec![Note::new(
                EventReason::Failed,
                format!("run {run}: {message}"),
            )]
        }
    }
}

/// Keeps the history within `spec.historyLimit`: every active run, and the newest finished
/// ones; returns the runs dropped (whose logs go too).
pub fn prune(status: &mut JobStatus, spec: &shoal_api::JobSpec) -> Vec<u64> {
    let keep = spec.history_limit();
    let finished = status.runs.iter().filter(|r| r.phase.is_finished()).count();
    let mut excess = finished.saturating_sub(keep);
    let mut pruned = Vec::new();
    status.runs.retain(|r| {
        if excess > 0 && r.phase.is_finished() {
            excess -= 1;
            pruned.push(r.number);
            false
        } else {
            true
        }
    });
    pruned
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

/// How an attempt that ended with `exit` (not a success) ended.
fn termination(exit: &Exit) -> Termination {
    match exit {
        Exit::Code(_) => Termination::Exited,
        Exit::Trapped(_) | Exit::Failed(_) => Termination::Trapped,
        Exit::CpuExceeded(_) => Termination::CpuLimit,
        Exit::TimedOut(_) => Termination::Timeout,
        Exit::OutOfMemory { .. } => Termination::OutOfMemory,
    }
}

fn stop(run: &mut JobRun, why: String, now: DateTime<Utc>) {
    run.ended = Some(Termination::Stopped);
    run.phase = JobPhase::Failed;
    run.message = Some(why);
    run.finish_time = Some(now);
    run.retry_after = None;
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const NODE: &str = "n1";

    pub(crate) fn t(s: &str) -> DateTime<Utc> {
        format!("2026-01-01T{s}Z").parse().unwrap()
    }

    pub(crate) fn job(spec: &str) -> Job {
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

    fn not_a_command() -> RunError {
        RunError::Load {
            component: "sha256:0000".into(),
            error: shoal_runtime::LoadError::NotCommand {
                exports: "none".into(),
                hint: "",
            },
        }
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
        assert_eq!(a.notes[0].reason, EventReason::Interrupted);

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
        assert_eq!(a.notes[0].reason, EventReason::Interrupted);
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
        assert_eq!(forbid.notes[0].reason, EventReason::Skipped);
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
        let ended = |spec: &str, attempts: u32, result: Result<Exit, RunError>| {
            let mut j = job(spec);
            j.status.runs = vec![run(1, JobPhase::Running, attempts)];
            let notes = finish(&mut j, 1, &result, t("10:00:05"));
            (j.status.runs.remove(0), notes)
        };
        let (r, notes) = ended("", 1, Ok(Exit::Code(0)));
        assert_eq!((r.phase, r.exit_code), (JobPhase::Succeeded, Some(0)));
        assert_eq!(notes[0].reason, EventReason::Succeeded);
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
        let (r, notes) = ended("  retries: 5\n", 1, Err(not_a_command()));
        assert_eq!((r.phase, r.attempts), (JobPhase::Failed, 1));
        assert_eq!(notes[0].reason, EventReason::Failed);
        // A run stopped meanwhile keeps that verdict.
        let mut j = job("");
        j.status.runs = vec![run(1, JobPhase::Failed, 1)];
        assert!(finish(&mut j, 1, &Ok(Exit::Code(0)), t("10:00:05")).is_empty());
        assert_eq!(j.status.runs[0].phase, JobPhase::Failed);
    }
}
