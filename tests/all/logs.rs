//! `shoal logs`: guest output and runtime events per app, bounded on disk.

use crate::support::Node;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const BAD: &str = "tests/fixtures/misbehave.wasm";

#[test]
fn guest_output_and_runtime_events_are_kept_per_app() {
    let node = Node::start(&["--log-budget", "1Mi"]);
    node.deploy("bad", BAD, "/bad", "  limits: {cpu: 100ms}\n");
    node.deploy("quiet", BAD, "/quiet", "");
    assert_eq!(node.get("/bad/say?x=1"), (200, "said\n".into()));
    assert_eq!(node.get("/bad/loop").0, 500);

    let log = node.ok(&["logs", "bad"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    // Each line: an RFC 3339 timestamp, the stream, the text.
    let fields = |l: &str| l.splitn(3, ' ').map(str::to_string).collect::<Vec<_>>();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&fields(lines[0])[0]).is_ok(),
        "{log}"
    );
    assert_eq!(
        fields(lines[0])[1..],
        ["stdout".to_string(), "said: /bad/say?x=1".to_string()]
    );
    assert_eq!(
        fields(lines[1])[1..],
        ["stderr".to_string(), "warned".to_string()]
    );
    assert_eq!(
        fields(lines[2])[1..],
        [
            "shoal".to_string(),
            "request exceeded its CPU limit (100ms)".to_string()
        ]
    );
    assert_eq!(node.ok(&["logs", "bad", "--tail", "1"]).lines().count(), 1);
    assert_eq!(
        node.ok(&["logs", "app/bad", "--since", "1h"])
            .lines()
            .count(),
        3
    );
    assert_eq!(node.ok(&["logs", "quiet"]), "");
    assert_eq!(
        node.fails(&["logs", "nobody"], None),
        "error: app/nobody not found\n"
    );

    // 100 MB of output: the log stays within its budget on disk.
    node.deploy(
        "loud",
        BAD,
        "/loud",
        "  limits: {cpu: 60s, timeout: 120s}\n",
    );
    assert_eq!(
        node.get("/loud/stdout?mb=100"),
        (200, "wrote 102400 KiB to stdout\n".into())
    );
    let dir = node.data_dir.join("logs").join("default");
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("loud.log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        on_disk > 0 && on_disk <= 1 << 20,
        "{on_disk} bytes of log on disk for a 1 MiB budget"
    );
    assert_eq!(
        node.ok(&["logs", "bad"]).lines().count(),
        3,
        "another app's output stays out of this log"
    );
}

#[test]
fn logs_can_be_followed() {
    let node = Node::start(&[]);
    node.deploy("bad", BAD, "/bad", "");
    assert_eq!(node.get("/bad/say?first").0, 200);
    let mut follower = node
        .cli()
        .args(["logs", "bad", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .ends_with("stdout said: /bad/say?first")
    );
    assert!(lines.next().unwrap().unwrap().ends_with("stderr warned"));
    assert_eq!(node.get("/bad/say?second").0, 200);
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .ends_with("stdout said: /bad/say?second")
    );
    let _ = follower.kill();
    let _ = follower.wait();
}
