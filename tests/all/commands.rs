//! Jobs behave as under `wasmtime run`: exactly the spec's arguments and environment (the run's
//! identity in `wasi:config`), stdin as text or bytes, exit codes as the program gave them and a
//! trap told apart from an exit, files read-only or as a writable copy per attempt, a working
//! directory — for a
//! wasip1 module, a 0.2 component and a 0.3 one (examples/tool-py3).

use crate::support::{Node, job_yaml};
use shoal_api::{Job, JobPhase, JobRun, Termination};

const MODULE: &str = "tests/fixtures/job-module.wasm";
const COMPONENT: &str = "tests/fixtures/job-component.wasm";
const PY3: &str = "examples/tool-py3/tool-py3.wasm";

fn last_run(node: &Node, name: &str) -> JobRun {
    let job: Job = serde_json::from_str(&node.ok(&["get", "job", name, "-o", "json"])).unwrap();
    job.status.runs.last().cloned().unwrap()
}

/// Applies job `name` and waits until its latest run is over, whether it succeeded or failed
/// (some of these tests want it to fail: its status says how); returns that run's logs.
fn run(node: &Node, yaml: String, name: &str) -> String {
    node.apply(&yaml);
    node.run(
        &[
            "wait",
            "job",
            name,
            "--for",
            "complete",
            "--timeout",
            "120s",
        ],
        None,
    );
    node.ok(&["logs", "job", name])
}

/// What the run's program printed on stdout.
fn stdout(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter_map(|l| l.split_once("stdout ").map(|(_, rest)| rest))
        .collect()
}

fn assert_lines(logs: &str, lines: &[&str]) {
    for line in lines {
        assert!(logs.contains(line), "{line:?} not in:\n{logs}");
    }
}

#[test]
fn a_job_sees_exactly_its_args_and_env_and_finds_its_identity_in_config() {
    let node = Node::start_warm(&[]);
    // A program that checks it has no environment passes, whatever it is built as.
    for (name, component) in [("p1", MODULE), ("p2", COMPONENT), ("p3", PY3)] {
        let logs = run(&node, job_yaml(name, component, &["env"], ""), name);
        assert_lines(&logs, &["stdout env count 0"]);
        assert_eq!(last_run(&node, name).phase, JobPhase::Succeeded, "{name}");
    }
    // A 0.3 command: its arguments, environment and stdin, nothing else.
    let spec = "  env: {GREETING: hi}\n  stdin: |\n    first\n    second\n";
    let logs = run(
        &node,
        job_yaml("echo", PY3, &["echo", "a", "b c"], spec),
        "echo",
    );
    assert_lines(
        &logs,
        &[
            "stdout argv0 echo",
            "stdout arg a",
            "stdout arg b c",
            "stdout env GREETING=hi",
            "stdout stdin first",
            "stdout stdin second",
        ],
    );
    assert_eq!(logs.matches("stdout env ").count(), 1, "{logs}");
    // The run's identity, in wasi:config.
    let logs = run(&node, job_yaml("me", PY3, &["identity"], ""), "me");
    assert_lines(
        &logs,
        &[
            "stdout shoal.job.name=me",
            "stdout shoal.job.run=1",
            "stdout shoal.job.attempt=1",
        ],
    );
    // `identity: env` opts into the environment as well.
    let logs = run(
        &node,
        job_yaml("env-id", MODULE, &["env"], "  identity: env\n"),
        "env-id",
    );
    assert_lines(
        &logs,
        &[
            "stdout env SHOAL_JOB_NAME=env-id",
            "stdout env SHOAL_JOB_RUN=1",
            "stdout env SHOAL_JOB_ATTEMPT=1",
            "stdout env count 3",
        ],
    );
    // Shoal's keys are its own.
    let err = node.fails(
        &["apply", "-f", "-"],
        Some(&job_yaml(
            "mine",
            PY3,
            &["identity"],
            "  config: {shoal.job.run: \"9\"}\n",
        )),
    );
    assert!(
        err.contains("job/mine: spec.config.shoal.job.run: keys beginning with shoal. are Shoal's"),
        "{err}"
    );
}

#[test]
fn exit_codes_are_reported_as_given_and_a_trap_is_not_an_exit() {
    let node = Node::start_warm(&[]);
    for (name, component, code) in [("p1", MODULE, "200"), ("p3", PY3, "7")] {
        run(&node, job_yaml(name, component, &["exit", code], ""), name);
        let run = last_run(&node, name);
        assert_eq!(
            (run.phase, run.exit_code, run.ended),
            (
                JobPhase::Failed,
                Some(code.parse().unwrap()),
                Some(Termination::Exited)
            ),
            "{name}"
        );
    }
    // A 0.2 component built with the preview-1 adapter can only exit 0 or 1: the adapter maps
    // every other code to 1, under `wasmtime run` too.
    run(&node, job_yaml("p2", COMPONENT, &["exit", "7"], ""), "p2");
    assert_eq!(last_run(&node, "p2").exit_code, Some(1));
    for (name, component) in [("trap1", MODULE), ("trap3", PY3)] {
        run(&node, job_yaml(name, component, &["trap"], ""), name);
        let run = last_run(&node, name);
        assert_eq!(
            (run.phase, run.exit_code, run.ended),
            (JobPhase::Failed, None, Some(Termination::Trapped)),
            "{name}"
        );
    }
    let table = node.ok(&["get", "jobs"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not in:\n{table}"))
            .to_string()
    };
    assert!(row("p1").contains(" 200 "), "{table}");
    assert!(row("trap3").contains(" trapped "), "{table}");
    let described = node.ok(&["describe", "job", "trap3"]);
    assert!(described.contains("ENDED"), "{described}");
    assert!(described.contains("trapped"), "{described}");
    let described = node.ok(&["describe", "job", "p3"]);
    assert!(described.contains("exited"), "{described}");
    // Bytes on stdin: 0, 1, 2 and 255, whose sum mod 256 is 2.
    let logs = run(
        &node,
        job_yaml("bytes", MODULE, &["bytes"], "  stdinBase64: AAEC/w==\n"),
        "bytes",
    );
    assert_lines(&logs, &["stdout bytes 4 sum 2"]);
}

#[test]
fn files_are_read_only_unless_rw_and_no_run_sees_another_runs_writes() {
    let node = Node::start_warm(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("seed.txt"), "seed\n").unwrap();
    let source = data.to_str().unwrap();
    let files = |mode: &str| format!("  files: [{{source: {source}, mount: data{mode}}}]\n");

    // Read-only by default.
    let logs = run(
        &node,
        job_yaml("ro", MODULE, &["write", "data/seed.txt", "x"], &files("")),
        "ro",
    );
    assert_lines(&logs, &["stdout cannot write data/seed.txt:"]);
    let logs = run(
        &node,
        job_yaml("ro", MODULE, &["cat", "data/seed.txt"], &files("")),
        "ro",
    );
    assert_lines(&logs, &["stdout seed"]);

    // `rw`: every operation a program does in its preopened directory, as `wasmtime run --dir`
    // gives them (the module, the 0.2 component and the 0.3 one).
    for (name, component) in [("fs1", MODULE), ("fs2", COMPONENT)] {
        let logs = run(
            &node,
            job_yaml(name, component, &["files", "data"], &files(", mode: rw")),
            name,
        );
        assert_eq!(
            stdout(&logs),
            [
                "create ok",
                "write ok",
                "rename ok",
                "truncate ok",
                "stat ok",
                "size 5",
                "link ok",
                "mkdir ok",
                "opendir ok",
                "entries 4",
                "unlink ok",
                "rmdir ok",
                "delete ok"
            ],
            "{name}: {logs}"
        );
        assert_eq!(last_run(&node, name).phase, JobPhase::Succeeded);
    }
    // One run's writes never reach the next run, nor the uploaded tree.
    let rw = files(", mode: rw");
    let logs = run(
        &node,
        job_yaml("scratch", PY3, &["write", "data/new.txt", "hi"], &rw),
        "scratch",
    );
    assert_lines(
        &logs,
        &[
            "stdout wrote data/new.txt",
            "stdout entries new.txt seed.txt",
        ],
    );
    run(
        &node,
        job_yaml(
            "scratch",
            MODULE,
            &["write", "data/seed.txt", "changed"],
            &rw,
        ),
        "scratch",
    );
    assert_eq!(last_run(&node, "scratch").phase, JobPhase::Succeeded);
    let logs = run(
        &node,
        job_yaml("scratch", PY3, &["write", "data/other.txt", "hi"], &rw),
        "scratch",
    );
    assert_lines(&logs, &["stdout entries other.txt seed.txt"]);
    let logs = run(
        &node,
        job_yaml("scratch", MODULE, &["cat", "data/seed.txt"], &rw),
        "scratch",
    );
    assert_eq!(stdout(&logs), ["seed"], "{logs}");
    assert_eq!(last_run(&node, "scratch").number, 4);
    assert_eq!(
        std::fs::read_to_string(data.join("seed.txt")).unwrap(),
        "seed\n"
    );
    assert!(!data.join("new.txt").exists());
}
