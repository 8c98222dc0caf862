//! Jobs: commands run to completion with their arguments, environment and stdin; retries,
//! limits, bounded output, schedules, deletion, and a node killed in the middle of a run.

use crate::support::{Node, job_yaml};
use shoal_api::{Job, JobPhase};

const MODULE: &str = "tests/fixtures/job-module.wasm";
const COMPONENT: &str = "tests/fixtures/job-component.wasm";

fn job(node: &Node, name: &str) -> Job {
    serde_json::from_str(&node.ok(&["get", "job", name, "-o", "json"])).unwrap()
}

fn wait(node: &Node, name: &str, until: &str) -> String {
    node.ok(&["wait", "job", name, "--for", until, "--timeout", "120s"])
}

#[test]
fn a_module_and_a_component_run_with_args_env_and_stdin() {
    let node = Node::start(&[]);
    // `identity: env`: the run's identity in the environment too (the fixture prints it).
    let spec = "  env: {GREETING: hi}\n  identity: env\n  stdin: |\n    first\n    second\n";
    for (name, component) in [("p1", MODULE), ("p2", COMPONENT)] {
        let applied = node.apply(&job_yaml(name, component, &["echo", "a", "b c"], spec));
        assert_eq!(applied, format!("job/{name} created\n"));
        assert_eq!(
            wait(&node, name, "complete"),
            format!("job/{name} complete\n")
        );
        let logs = node.ok(&["logs", "job", name]);
        for line in [
            format!("stdout argv0 {name}"),
            "stdout arg a".into(),
            "stdout arg b c".into(),
            "stdout GREETING=hi run=1 attempt=1".into(),
            "stdout stdin first".into(),
            "stdout second".into(),
            "stderr to stderr".into(),
            "shoal run 1 attempt 1 exited with code 0".into(),
        ] {
            assert!(logs.contains(&line), "{line:?} not in:\n{logs}");
        }
        let run = job(&node, name).status.runs.pop().unwrap();
        assert_eq!(
            (run.number, run.phase, run.exit_code, run.attempts),
            (1, JobPhase::Succeeded, Some(0), 1)
        );
        assert!(run.finish_time >= run.start_time && run.start_time.is_some());
    }
    let table = node.ok(&["get", "jobs"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.lines().filter(|l| l.contains("Succeeded")).count() == 2,
        "{table}"
    );
    // Applying the same spec again runs nothing new; a changed spec runs again.
    assert_eq!(
        node.apply(&job_yaml("p1", MODULE, &["echo", "a", "b c"], spec)),
        "job/p1 unchanged\n"
    );
    node.apply(&job_yaml("p1", MODULE, &["hello"], ""));
    wait(&node, "p1", "complete");
    assert_eq!(job(&node, "p1").status.latest().unwrap().number, 2);
    assert!(
        node.ok(&["logs", "job/p1"])
            .contains("stdout hello from a job")
    );
    assert!(
        node.ok(&["logs", "job", "p1", "--run", "1"])
            .contains("stdout arg a")
    );
    let describe = node.ok(&["describe", "job", "p1"]);
    for needle in [
        "Runs:",
        "Succeeded",
        "Created",
        "run 2 succeeded on attempt 1",
    ] {
        assert!(describe.contains(needle), "{needle:?} not in:\n{describe}");
    }
}

#[test]
fn failed_attempts_are_retried_with_backoff_then_the_run_fails_with_its_exit_code() {
    let node = Node::start(&[]);
    let spec = "  retries: 2\n  backoff: 100ms\n  identity: env\n";
    node.apply(&job_yaml("flaky", MODULE, &["fail-first", "2"], spec));
    node.apply(&job_yaml("broken", MODULE, &["exit", "7"], spec));
    wait(&node, "flaky", "complete");
    let run = job(&node, "flaky").status.runs.pop().unwrap();
    assert_eq!((run.phase, run.attempts), (JobPhase::Succeeded, 3));
    assert_eq!(wait(&node, "broken", "failed"), "job/broken failed\n");
    let run = job(&node, "broken").status.runs.pop().unwrap();
    assert_eq!(
        (run.phase, run.attempts, run.exit_code),
        (JobPhase::Failed, 3, Some(7))
    );
    let message = run.message.unwrap();
    assert!(
        message.contains("exited with code 7") && message.contains("all 3 attempts failed"),
        "{message}"
    );
    let err = node.fails(
        &[
            "wait",
            "job",
            "broken",
            "--for",
            "complete",
            "--timeout",
            "10s",
        ],
        None,
    );
    assert!(
        err.contains("job/broken run 1 failed: attempt 3 of run 1 exited with code 7"),
        "{err}"
    );
    let events = node.ok(&["get", "events"]);
    assert_eq!(events.matches("AttemptFailed").count(), 5, "{events}");
}

#[test]
fn a_job_over_its_limits_fails_with_the_reason() {
    let node = Node::start(&[]);
    node.apply(&job_yaml(
        "oom",
        MODULE,
        &["oom"],
        "  limits: {memory: 4Mi}\n",
    ));
    node.apply(&job_yaml(
        "spin",
        COMPONENT,
        &["spin"],
        "  limits: {cpu: 100ms}\n",
    ));
    node.apply(&job_yaml(
        "slow",
        MODULE,
        &["sleep", "600"],
        "  timeout: 200ms\n",
    ));
    node.apply(&job_yaml("trap", MODULE, &["trap"], ""));
    for (name, reason) in [
        (
            "oom",
            "ran out of memory: growing past its limit of 4Mi was refused, then it exited with code 3; raise spec.limits.memory",
        ),
        (
            "spin",
            "exceeded its CPU limit (100ms); raise spec.limits.cpu",
        ),
        (
            "slow",
            "did not finish within its timeout (200ms); raise spec.timeout",
        ),
        ("trap", "trapped: wasm `unreachable` instruction executed"),
    ] {
        wait(&node, name, "failed");
        let message = job(&node, name).status.runs.pop().unwrap().message.unwrap();
        assert!(message.ends_with(reason), "{name}: {message}");
    }
    assert!(
        node.ok(&["logs", "job", "oom"])
            .contains("stderr malloc failed")
    );
}

#[test]
fn a_flood_on_stdout_does_not_fill_the_disk() {
    // 256 MiB of output through a 1 MiB log budget: what is kept stays within the budget.
    let node = Node::start(&["--log-budget", "1Mi"]);
    node.apply(&job_yaml("flood", MODULE, &["flood", "256"], ""));
    wait(&node, "flood", "complete");
    let dir = node.data_dir.join("logs/default/flood");
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 1 << 20, "{on_disk} bytes of log on disk");
    let tail = node.ok(&["logs", "job", "flood", "--tail", "2"]);
    assert!(tail.contains("stdout xxxx"), "{tail}");
    assert!(
        tail.ends_with("shoal run 1 attempt 1 exited with code 0\n"),
        "{tail}"
    );
}

#[test]
fn a_schedule_creates_numbered_runs_keeps_the_last_ones_and_forbids_overlap() {
    let node = Node::start(&[]);
    node.apply(&job_yaml(
        "tick",
        MODULE,
        &["hello"],
        "  schedule: \"* * * * * *\"\n  historyLimit: 2\n",
    ));
    // Every second a run; a run that lasts three seconds makes the next ones overlap.
    node.apply(&job_yaml(
        "long",
        MODULE,
        &["sleep", "3"],
        "  schedule: \"* * * * * *\"\n",
    ));
    let mut tick = job(&node, "tick");
    while tick.status.last_run < 4 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        tick = job(&node, "tick");
        let finished = tick
            .status
            .runs
            .iter()
            .filter(|r| r.phase.is_finished())
            .count();
        assert!(finished <= 2, "{:?}", tick.status.runs);
    }
    let numbers: Vec<u64> = tick.status.runs.iter().map(|r| r.number).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert!(tick.status.runs.iter().all(|r| r.scheduled_time.is_some()));
    let kept: Vec<String> = std::fs::read_dir(node.data_dir.join("logs/default/tick"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.len() <= 3, "logs of pruned runs remain: {kept:?}");
    let err = node.fails(&["logs", "job", "tick", "--run", "1"], None);
    assert!(
        err.contains("job/tick has no run 1; the runs kept are:"),
        "{err}"
    );

    let mut long = job(&node, "long");
    while !node.ok(&["describe", "job", "long"]).contains("Skipped") {
        let active = long
            .status
            .runs
            .iter()
            .filter(|r| !r.phase.is_finished())
            .count();
        assert!(active <= 1, "{:?}", long.status.runs);
        std::thread::sleep(std::time::Duration::from_millis(200));
        long = job(&node, "long");
    }
    let describe = node.ok(&["describe", "job", "long"]);
    assert!(
        describe.contains("is still active (concurrencyPolicy Forbid)"),
        "{describe}"
    );
}

#[test]
fn deleting_a_job_stops_its_run_and_removes_its_logs() {
    let node = Node::start(&[]);
    node.apply(&job_yaml("sleeper", MODULE, &["sleep", "600"], ""));
    while job(&node, "sleeper").status.latest().map(|r| r.phase) != Some(JobPhase::Running) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        node.ok(&["delete", "job", "sleeper"]),
        "job/sleeper deleted\n"
    );
    let err = node.fails(&["get", "job", "sleeper"], None);
    assert!(err.contains("job/sleeper not found"), "{err}");
    node.stderr
        .wait_for("job/sleeper: deleted; its running attempts are stopped");
    assert!(!node.data_dir.join("logs/default/sleeper").exists());
}

#[test]
fn a_node_killed_during_a_run_retries_the_interrupted_attempt_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_in(dir.path(), &[]);
    node.apply(&job_yaml(
        "resumable",
        MODULE,
        &["sleep-first", "600"],
        "  retries: 1\n  backoff: 100ms\n  identity: env\n",
    ));
    node.apply(&job_yaml("once", MODULE, &["sleep", "600"], ""));
    for name in ["resumable", "once"] {
        while job(&node, name).status.latest().map(|r| r.phase) != Some(JobPhase::Running) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    node.kill();

    let node = Node::start_in(dir.path(), &[]);
    wait(&node, "resumable", "complete");
    let run = job(&node, "resumable").status.runs.pop().unwrap();
    assert_eq!(
        (run.number, run.attempts, run.phase),
        (1, 2, JobPhase::Succeeded)
    );
    // Without retries left, the interrupted run fails and says why.
    wait(&node, "once", "failed");
    let run = job(&node, "once").status.runs.pop().unwrap();
    assert_eq!(
        run.message.as_deref(),
        Some("attempt 1 of run 1 was interrupted (the node stopped while it ran)")
    );
    let events = node.ok(&["get", "events"]);
    assert_eq!(events.matches("Interrupted").count(), 2, "{events}");
}

#[test]
fn a_job_whose_component_is_not_a_command_fails_without_retrying() {
    let node = Node::start(&[]);
    let spec = "  retries: 3\n";
    node.apply(&job_yaml("web", "examples/hello-c/hello.wasm", &[], spec));
    wait(&node, "web", "failed");
    let run = job(&node, "web").status.runs.pop().unwrap();
    assert_eq!(run.attempts, 1);
    let message = run.message.unwrap();
    assert!(
        message.contains("is not a wasi:cli command")
            && message.contains("this is a wasi:http component, which runs as an App, not a Job"),
        "{message}"
    );
}
