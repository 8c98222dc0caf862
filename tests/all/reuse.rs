//! `spec.reuse`: one instance answers several requests (a WASI 0.3 one several at once), and
//! a component that cannot is detected and served fresh instances without failing a request.

use crate::support::{Node, http_client};

const BAD: &str = "tests/fixtures/misbehave.wasm";

/// The instance's own count of the requests it answered, from `/count` or `/once`.
fn served(node: &Node, path: &str) -> u32 {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body.strip_prefix("request ")
        .and_then(|rest| rest.strip_suffix(" of this instance\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{path}: unexpected body {body:?}"))
}

#[test]
fn reused_instances_answer_up_to_max_requests_and_fresh_ones_by_default() {
    let node = Node::start_warm(&[]);
    node.deploy("fresh", BAD, "/fresh", "");
    node.deploy("reused", BAD, "/reused", "  reuse: {maxRequests: 3}\n");

    // By default every request meets a new instance.
    for _ in 0..5 {
        assert_eq!(served(&node, "/fresh/count"), 1);
    }
    // With reuse, instances come back for more, never beyond maxRequests. (An instance returns
    // to the pool just after its response ends, so a request may race it and meet a fresh one.)
    let mut seen = Vec::new();
    while !seen.contains(&3) {
        assert!(
            seen.len() < 200,
            "no instance reached its third request: {seen:?}"
        );
        let n = served(&node, "/reused/count");
        assert!(
            (1..=3).contains(&n),
            "request {n} of an instance with maxRequests 3"
        );
        seen.push(n);
    }
    let log = node.ok(&["logs", "reused"]);
    assert!(!log.contains("spec.reuse is off"), "{log}");
}

#[test]
fn a_component_that_cannot_answer_twice_is_served_fresh_instances_without_failing_requests() {
    let node = Node::start_warm(&[]);
    node.deploy("once", BAD, "/once", "  reuse: {maxRequests: 100}\n");

    // Until reuse has proven itself, only requests that can be replayed harmlessly meet a
    // reused instance: one with a body, or with an unsafe method, gets a fresh one.
    for _ in 0..3 {
        for req in [
            http_client()
                .post(format!("{}/once/once", node.http))
                .body("payload"),
            http_client().delete(format!("{}/once/once", node.http)),
        ] {
            let resp = req.send().unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.text().unwrap(), "request 1 of this instance\n");
        }
    }
    // A reused instance traps on its second request: the request is replayed on a fresh
    // instance, the client sees only the good answer, and reuse is turned off.
    for i in 0.. {
        assert!(i < 200, "reuse was never tried");
        assert_eq!(served(&node, "/once/once"), 1);
        if node.ok(&["logs", "once"]).contains("spec.reuse is off") {
            break;
        }
    }
    for _ in 0..10 {
        assert_eq!(served(&node, "/once/once"), 1);
    }
    let log = node.ok(&["logs", "once"]);
    assert_eq!(log.matches("spec.reuse is off").count(), 1, "{log}");
    assert!(
        log.contains("a reused instance could not answer a second request (it failed"),
        "{log}"
    );
}

#[test]
fn python_reuses_instances_and_javascript_falls_back_to_fresh_ones() {
    let node = Node::start_warm(&[]);
    let reuse = "  reuse: {maxRequests: 1000}\n";
    node.deploy("py", "examples/hello-py/hello-py.wasm", "/py", reuse);
    node.deploy("js", "examples/hello-js/hello-js.wasm", "/js", reuse);
    for i in 0..20 {
        assert_eq!(
            node.get(&format!("/py/{i}")),
            (200, format!("Hello from Python! You asked for /py/{i}\n"))
        );
        assert_eq!(
            node.get(&format!("/js/{i}")),
            (
                200,
                format!("Hello from JavaScript! You asked for /js/{i}\n")
            )
        );
    }
    let py = node.ok(&["logs", "py"]);
    assert!(!py.contains("spec.reuse is off"), "{py}");
    let js = node.ok(&["logs", "js"]);
    assert!(js.contains("spec.reuse is off"), "{js}");
}

const PY3: &str = "examples/hello-py3/hello-py3.wasm";

/// Sends GET `path` from another thread, and returns once app `name`'s log has more than
/// `before` lines saying "together: ": the request's own line has come, it is in flight.
fn together_in_flight(
    node: &Node,
    name: &str,
    path: &str,
    before: usize,
) -> std::thread::JoinHandle<(u16, String)> {
    let url = format!("{}{path}", node.http);
    let in_flight = std::thread::spawn(move || {
        let resp = http_client().get(&url).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    });
    loop {
        let log = node.wait_for_log(name, "together: ");
        if log.matches("together: ").count() > before {
            return in_flight;
        }
        assert!(!in_flight.is_finished(), "{path} ended before it was seen");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_wasi_03_instance_answers_requests_at_once_and_none_fails_because_of_it() {
    let node = Node::start_warm(&[]);
    // The health check (answered on a shared instance too) gates the revision.
    let spec = "  limits: {cpu: 200ms, timeout: 20s}\n  reuse: {maxConcurrent: 16}\n  healthCheck: {path: /py3/hello}\n  scale: {idleAfter: 1s}\n";
    node.deploy("py3", PY3, "/py3", spec);

    // While one request waits on its instance, a second one joins it there.
    let first = together_in_flight(&node, "py3", "/py3/together?ms=8000", 0);
    assert_eq!(node.get("/py3/together?ms=1"), (200, "2 at once\n".into()));
    // One with a body, or with an unsafe method, could not be replayed if its instance failed:
    // it gets a fresh instance of its own.
    let resp = http_client()
        .post(format!("{}/py3/together?ms=1", node.http))
        .body("payload")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().unwrap(), "1 at once\n");
    assert_eq!(first.join().unwrap(), (200, "2 at once\n".into()));

    // A request waits on the shared instance; one that computes forever joins it there and
    // passes the CPU limit, which ends the instance.
    let waiting = together_in_flight(&node, "py3", "/py3/together?ms=5000", 3);
    let (status, body) = node.get("/py3/loop");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("CPU limit"), "{body}");
    // The waiting request is answered all the same, by a fresh instance of its own.
    assert_eq!(waiting.join().unwrap(), (200, "1 at once\n".into()));
    let log = node.ok(&["logs", "py3"]);
    assert!(log.contains("a shared instance ended"), "{log}");
    // No one's fault but the loop's: reuse stays on, on a new shared instance.
    assert!(!log.contains("spec.reuse is off"), "{log}");
    let first = together_in_flight(&node, "py3", "/py3/together?ms=8000", 5);
    assert_eq!(node.get("/py3/together?ms=1"), (200, "2 at once\n".into()));
    assert_eq!(first.join().unwrap(), (200, "2 at once\n".into()));

    // Scaled to zero, the app ends its shared instances: the next request starts a new one.
    let idle = "idle: released the component";
    let before = node.ok(&["logs", "py3"]).matches(idle).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while node.ok(&["logs", "py3"]).matches(idle).count() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the app never went idle"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(node.get("/py3/together?ms=1"), (200, "1 at once\n".into()));
}
