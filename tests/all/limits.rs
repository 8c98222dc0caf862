//! Limits and misbehaving guests: the right status, and the node keeps serving.

use crate::support::{Node, app_yaml, http_client, repo_path};
use std::sync::{Arc, Barrier};

#[test]
fn misbehaving_handlers_fail_alone() {
    let node = Node::start(&[]);
    node.apply(&app_yaml(
        "hello",
        &repo_path("examples/hello-c/hello.wasm"),
        "/hello",
        "",
    ));
    // The timeout is far above the CPU limit: a busy guest runs at low priority, and on a
    // loaded machine its 100 ms of CPU may take much longer than that in wall time.
    let limits = "  limits: {cpu: 100ms, timeout: 5s, memory: 8Mi}\n";
    node.apply(&app_yaml(
        "bad",
        &repo_path("tests/fixtures/misbehave.wasm"),
        "/bad",
        limits,
    ));
    node.wait_ready("hello");
    node.wait_ready("bad");

    let (status, body) = node.get("/bad/trap");
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "app/bad: the component trapped: wasm `unreachable` instruction executed\n"
    );
    assert_eq!(
        node.get("/bad/loop"),
        (
            500,
            "app/bad exceeded its CPU limit (100ms) for this request; raise spec.limits.cpu\n"
                .into()
        )
    );
    assert_eq!(
        node.get("/bad/sleep?ms=60000"),
        (
            504,
            "app/bad did not respond within its timeout (5s); raise spec.limits.timeout\n".into()
        )
    );
    assert_eq!(
        node.get("/bad/noreply"),
        (500, "app/bad returned without a response\n".into())
    );
    let (status, body) = node.get("/bad/oom");
    assert_eq!(status, 200);
    let mib: u32 = body.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(mib < 8, "grew past the 8Mi limit: {body}");

    // The node and the neighbour are unaffected, and the bad app still serves good requests.
    assert_eq!(node.get("/hello").0, 200);
    assert_eq!(node.get("/bad/fine"), (200, "ok /bad/fine\n".into()));
    node.stderr.wait_for("request exceeded its CPU limit");
    node.stderr.wait_for("request exceeded its timeout");
}

#[test]
fn over_the_concurrency_limit_requests_get_503_not_a_queue() {
    let node = Node::start(&[]);
    let limits = "  limits: {concurrency: 2}\n";
    node.deploy("slow", "tests/fixtures/misbehave.wasm", "/slow", limits);
    let clients = 10;
    let barrier = Arc::new(Barrier::new(clients));
    let url = format!("{}/slow/sleep?ms=1500", node.http);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                let client = http_client();
                barrier.wait();
                let resp = client.get(&url).send().unwrap();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (resp.status().as_u16(), retry_after, resp.text().unwrap())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.len(), clients, "every request was answered");
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let shed: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok + shed.len(), clients, "only 200 or 503: {results:?}");
    assert!(ok >= 1, "{results:?}");
    assert!(
        !shed.is_empty(),
        "10 simultaneous 1.5 s requests against a limit of 2 shed none: {results:?}"
    );
    for (_, retry_after, body) in &shed {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(
            body,
            "app/slow is at its concurrency limit (2); retry shortly\n"
        );
    }
    // Once the burst is over, the app answers again.
    assert_eq!(node.get("/slow/sleep?ms=1").0, 200);
}

#[test]
fn a_full_instance_pool_answers_503_with_retry_after_not_500() {
    // One instance slot for the whole node: a request in flight to one app fills it.
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "up",
        "--api",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--max-instances",
        "1",
    ];
    let node = Node::spawn(&args, tmp.path(), &[], &["API:", "ingress:"]);
    node.deploy("slow", "tests/fixtures/misbehave.wasm", "/slow", "");
    node.deploy("other", "examples/hello-c/hello.wasm", "/other", "");
    // The slow request is admitted once no probe holds the slot (a probe may, for an instant,
    // and then the slow one is the one shed).
    let in_flight = node.hold_only_slot("/slow/sleep?ms=3000", "/other");
    let r = http_client()
        .get(format!("{}/other", node.http))
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().unwrap().contains("at its instance limit"));
    assert_eq!(in_flight.join().unwrap().0, 200);
    assert_eq!(node.get("/other").0, 200);
}

#[test]
fn a_compile_past_the_nodes_bounds_fails_its_revision_and_the_node_serves_on() {
    for (flag, value, said) in [
        (
            "--compile-timeout",
            "1ms",
            "was not compiled: compiling took longer than this node's limit of 1ms (--compile-timeout)",
        ),
        (
            "--compile-memory",
            "1Mi",
            "was not compiled: compiling needed more memory than this node's limit of 1 MiB (--compile-memory)",
        ),
    ] {
        let node = Node::start(&[flag, value]);
        node.apply(&app_yaml(
            "big",
            &repo_path("examples/hello-c/hello.wasm"),
            "/big",
            "",
        ));
        let err = node.fails(&["wait", "app", "big", "--timeout", "120s"], None);
        assert!(err.contains(said), "{flag}: {err}");
        let described = node.ok(&["describe", "app", "big"]);
        assert!(described.contains("CompileFailed"), "{described}");
        // The node is up and answers; the app is not served.
        assert_eq!(node.get("/big").0, 404);
        assert!(node.ok(&["get", "apps"]).contains("big"));
    }
}

/// A loaded app keeps its compiled file open (its code and memory images are mapped from it),
/// so a node started under a small soft limit on open files raises it to the hard limit, as a
/// user running many apps from a login shell's 1,024 needs.
#[test]
fn a_node_raises_its_open_files_limit_to_the_hard_one() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::spawn_under(
        &["prlimit", "--nofile=256:", "--"],
        &["up", "--api", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        tmp.path(),
        &[],
        &["API:", "ingress:"],
    );
    let limits = node.proc_file("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    let (soft, hard) = (numbers[0], numbers[1]);
    assert_eq!(soft, hard, "{line}");
    assert_ne!(soft, "256", "{line}");
}
