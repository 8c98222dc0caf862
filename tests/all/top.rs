//! What apps are doing now, as `shoal top`, `shoal get apps -o wide` and `shoal get --watch`
//! show it (the cluster's sum over its nodes is checked in `cluster.rs`).

use crate::support::Node;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

const HELLO: &str = "examples/hello-c/hello.wasm";
const MISBEHAVE: &str = "tests/fixtures/misbehave.wasm";

/// `shoal top --once -o json`: every app's figures.
pub fn top_json(node: &Node) -> Vec<serde_json::Value> {
    serde_json::from_str(&node.ok(&["top", "--once", "-o", "json"])).unwrap()
}

/// App `name`'s figures in `stats`.
pub fn figures<'a>(stats: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    stats
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no figures of {name} in {stats:?}"))
}

/// The row of `name` in a table, split into cells.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .collect()
}

/// Polls `check` on `top_json` until it holds, for up to a minute.
fn until(node: &Node, what: &str, check: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = top_json(node);
        if check(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}: {stats:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn top_and_wide_show_each_apps_rate_latency_errors_instances_and_memory() {
    let node = Node::start_warm(&[]);
    node.deploy("web", HELLO, "/web", "");
    let limits = "  limits: {concurrency: 1, timeout: 30s}\n";
    node.deploy("bad", MISBEHAVE, "/bad", limits);

    // Requests until a window of the node's has them (it samples every 5 s).
    let (mut served, deadline) = (0u64, Instant::now() + Duration::from_secs(60));
    let top = loop {
        for _ in 0..10 {
            assert_eq!(node.get("/web").0, 200);
            served += 1;
        }
        assert_eq!(node.get("/bad/trap").0, 500);
        let top = node.ok(&["top", "--once"]);
        if row(&top, "web")[1] != "-" && row(&top, "bad")[1] != "-" {
            break top;
        }
        assert!(Instant::now() < deadline, "no rate ever shown:\n{top}");
    };
    let header: Vec<&str> = top.lines().next().unwrap().split("   ").collect();
    assert_eq!(
        header.iter().map(|h| h.trim()).collect::<Vec<_>>(),
        [
            "NAME",
            "REQ/S",
            "P99",
            "ERRORS",
            "IN FLIGHT",
            "INSTANCES",
            "MEMORY"
        ],
        "{top}"
    );
    // By rate, busiest first.
    assert!(top.lines().nth(1).unwrap().starts_with("web "), "{top}");
    let web = row(&top, "web");
    assert!(web[1].parse::<f64>().unwrap() > 0.0, "{top}");
    assert!(web[2].ends_with("ms"), "{top}");
    assert_eq!(web[3], "0.0%", "{top}");
    assert_eq!(row(&top, "bad")[3], "100.0%", "{top}");

    let wide = node.ok(&["get", "apps", "-o", "wide"]);
    assert_eq!(
        wide.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "STATUS",
            "REVISION",
            "ROUTES",
            "AGE",
            "REQ/S",
            "P99",
            "ERRORS",
            "INSTANCES",
            "MEMORY"
        ],
        "{wide}"
    );
    let web = row(&wide, "web");
    assert_eq!(web[1], "Ready", "{wide}");
    assert!(web[5].parse::<f64>().unwrap() > 0.0, "{wide}");
    // Plain `get` keeps its columns.
    assert!(
        node.ok(&["get", "apps"])
            .starts_with("NAME   STATUS   REVISION   ROUTES   AGE\n")
    );

    // An instance in flight is alive and holds memory; once it answered, nothing is left.
    let held = node.hold_only_slot("/bad/sleep?ms=8000", "/bad/quick");
    let stats = top_json(&node);
    let bad = figures(&stats, "bad");
    assert_eq!(
        (bad["inFlight"].as_u64(), bad["instances"].as_u64()),
        (Some(1), Some(1)),
        "{bad}"
    );
    assert!(bad["memory"].as_u64().unwrap() > 0, "{bad}");
    assert_eq!(held.join().unwrap().0, 200);
    until(&node, "let go of the instance", |stats| {
        let bad = figures(stats, "bad");
        bad["inFlight"] == 0 && bad["instances"] == 0 && bad["memory"] == 0
    });
    // Every request counted, by class.
    let web = figures(&top_json(&node), "web").clone();
    assert_eq!(web["requests"][1].as_u64(), Some(served), "{web}");
    assert_eq!(web["requests"][4].as_u64(), Some(0), "{web}");
}

#[test]
fn get_watch_prints_an_object_again_each_time_it_changes() {
    let node = Node::start_warm(&[]);
    node.deploy("one", HELLO, "/one", "");
    let mut watch = node
        .cli()
        .args(["get", "apps", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(60)).expect("a line");
    let words = |line: String| -> Vec<String> {
        line.split_whitespace().take(2).map(String::from).collect()
    };
    assert_eq!(words(next()), ["NAME", "STATUS"]);
    assert_eq!(words(next()), ["one", "Ready"]);
    // A new app appears, and again when it turns Ready; the unchanged one is not repeated.
    node.deploy("two", HELLO, "/two", "");
    let mut seen = Vec::new();
    while !seen
        .last()
        .is_some_and(|l: &String| l.starts_with("two ") && l.contains("Ready"))
    {
        seen.push(next());
        assert!(
            seen.iter().all(|l| l.starts_with("two ")),
            "only the new app is printed: {seen:?}"
        );
    }
    watch.kill().unwrap();
    let _ = watch.wait();
}
