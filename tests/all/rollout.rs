//! Revisions: `shoal rollout status|history|undo`, a failed revision leaving the previous one
//! serving, and only the last ten revisions kept.

use crate::support::{Node, app_yaml, repo_path};

const V1: &str = "examples/hello-c/hello.wasm";
const V2: &str = "tests/fixtures/hello-v2.wasm";

fn revisions(history: &str) -> Vec<(u64, bool)> {
    history
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].parse().unwrap(), cols.last() == Some(&"serving"))
        })
        .collect()
}

#[test]
fn revisions_roll_out_roll_back_and_a_failed_one_leaves_the_previous_serving() {
    let node = Node::start(&[]);
    let apply = |component: &str, extra: &str| {
        node.apply(&app_yaml("hello", &repo_path(component), "/hello", extra))
    };
    apply(V1, "");
    assert_eq!(
        node.ok(&["rollout", "status", "app", "hello"]),
        "app/hello ready\n"
    );
    apply(V2, "");
    node.ok(&["rollout", "status", "app", "hello"]);
    assert_eq!(
        node.get("/hello").1,
        "Hello again from C! You asked for /hello\n"
    );
    let history = node.ok(&["rollout", "history", "app", "hello"]);
    assert!(history.starts_with("REVISION"), "{history}");
    assert_eq!(revisions(&history), [(1, false), (2, true)], "{history}");

    // Undo returns to the previous spec, as a new revision.
    assert_eq!(
        node.ok(&["rollout", "undo", "app", "hello"]),
        "app/hello rolled back to revision 1 (as revision 3)\n"
    );
    node.ok(&["rollout", "status", "app", "hello"]);
    assert_eq!(node.get("/hello").1, "Hello from C! You asked for /hello\n");
    assert_eq!(
        node.ok(&["rollout", "undo", "app", "hello", "--to-revision", "2"]),
        "app/hello rolled back to revision 2 (as revision 4)\n"
    );
    node.ok(&["rollout", "status", "app", "hello"]);
    assert_eq!(
        node.get("/hello").1,
        "Hello again from C! You asked for /hello\n"
    );
    let err = node.fails(
        &["rollout", "undo", "app", "hello", "--to-revision", "9"],
        None,
    );
    assert!(err.contains("app/hello has no revision 9"), "{err}");

    // A revision that cannot serve: status says so and exits 1; revision 4 keeps serving.
    apply("tests/fixtures/command-component.wasm", "");
    let err = node.fails(&["rollout", "status", "app", "hello"], None);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: app/hello failed:"), "{err}");
    assert_eq!(
        node.get("/hello").1,
        "Hello again from C! You asked for /hello\n"
    );
    let history = node.ok(&["rollout", "history", "app", "hello"]);
    assert_eq!(revisions(&history).last(), Some(&(5, false)), "{history}");
    assert!(revisions(&history).contains(&(4, true)), "{history}");

    // Only the last ten are kept.
    for i in 0..8 {
        apply(V1, &format!("  env: {{ROUND: \"{i}\"}}\n"));
    }
    node.ok(&["rollout", "status", "app", "hello"]);
    let history = node.ok(&["rollout", "history", "app", "hello"]);
    let numbers: Vec<u64> = revisions(&history).iter().map(|r| r.0).collect();
    assert_eq!(numbers, (4..=13).collect::<Vec<_>>(), "{history}");
    assert_eq!(revisions(&history).last(), Some(&(13, true)), "{history}");

    // Deleting the app deletes its revisions; a new app of that name starts again at 1.
    node.ok(&["delete", "app", "hello"]);
    apply(V1, "");
    node.ok(&["rollout", "status", "app", "hello"]);
    let history = node.ok(&["rollout", "history", "app", "hello"]);
    assert_eq!(revisions(&history), [(1, true)], "{history}");
}

#[test]
fn a_revision_serves_only_once_its_health_check_passes() {
    let node = Node::start(&[]);
    let apply = |check: &str| {
        node.apply(&app_yaml(
            "checked",
            &repo_path("tests/fixtures/misbehave.wasm"),
            "/checked",
            &format!("  healthCheck: {{path: {check}}}\n"),
        ))
    };
    apply("/checked/count");
    node.ok(&["rollout", "status", "app", "checked"]);
    assert_eq!(node.get("/checked/quick").0, 200);

    // Revision 2 answers its check with 500: it never gets traffic, and status says why.
    apply("/checked/trap");
    let err = node.fails(&["rollout", "status", "app", "checked"], None);
    assert!(
        err.contains(
            "health check GET /checked/trap answered 500 Internal Server Error (5 attempts)"
        ),
        "{err}"
    );
    assert!(err.contains("generation 1 keeps serving"), "{err}");
    assert_eq!(node.get("/checked/quick").0, 200);
    let history = node.ok(&["rollout", "history", "app", "checked"]);
    assert_eq!(revisions(&history), [(1, true), (2, false)], "{history}");
    let events = node.ok(&["get", "events"]);
    assert!(events.contains("HealthCheckFailed"), "{events}");
    let described = node.ok(&["describe", "app", "checked"]);
    assert!(described.contains("Status:       Failed"), "{described}");
}

#[test]
fn rollouts_under_continuous_load_lose_no_request() {
    let node = Node::start(&[]);
    let apply =
        |component: &str| node.apply(&app_yaml("hello", &repo_path(component), "/hello", ""));
    apply(V1);
    node.ok(&["rollout", "status", "app", "hello"]);

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU32::new(0));
    let loaders: Vec<_> = (0..2)
        .map(|_| {
            let (url, stop, answered) = (
                format!("{}/hello", node.http),
                stop.clone(),
                answered.clone(),
            );
            std::thread::spawn(move || {
                let client = crate::support::http_client();
                let (mut ok, mut bad) = (0u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let resp = client.get(&url).send().unwrap();
                    let status = resp.status().as_u16();
                    let body = resp.text().unwrap();
                    if status == 200 && body.ends_with("! You asked for /hello\n") {
                        ok += 1;
                        answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        bad.push((status, body));
                    }
                }
                (ok, bad)
            })
        })
        .collect();
    while answered.load(Ordering::Relaxed) < 10 {
        assert!(
            !loaders.iter().any(|l| l.is_finished()),
            "a loader stopped before the rollouts began"
        );
        std::thread::yield_now();
    }
    // A good rollout, a failed one, and a roll back, while requests keep coming.
    apply(V2);
    node.ok(&["rollout", "status", "app", "hello"]);
    apply("tests/fixtures/command-component.wasm");
    node.fails(&["rollout", "status", "app", "hello"], None);
    node.ok(&["rollout", "undo", "app", "hello", "--to-revision", "1"]);
    node.ok(&["rollout", "status", "app", "hello"]);
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        let (ok, bad) = loader.join().unwrap();
        assert!(ok > 0);
        assert!(bad.is_empty(), "failed requests during rollouts: {bad:?}");
    }
    assert_eq!(node.get("/hello").1, "Hello from C! You asked for /hello\n");
}

#[test]
fn a_node_killed_at_any_moment_of_rollouts_converges_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start_in(dir.path(), &[]);
    let check = "  healthCheck: {path: /hello/health}\n";
    // Kill -9 at a different moment of each rollout: right after the apply returned, while it
    // compiles or checks, and once it serves.
    for round in 0..4u32 {
        let component = if round % 2 == 0 { V2 } else { V1 };
        let extra = format!("{check}  env: {{ROUND: \"{round}\"}}\n");
        node.apply(&app_yaml("hello", &repo_path(component), "/hello", &extra));
        if round == 3 {
            node.ok(&["rollout", "status", "app", "hello"]);
        }
        for _ in 0..round * 20 {
            std::thread::yield_now();
        }
        node.kill();
        node = Node::start_in(dir.path(), &[]);
        // No apply was lost: the latest spec is the App's, and it serves.
        node.ok(&["rollout", "status", "app", "hello"]);
        let history = node.ok(&["rollout", "history", "app", "hello"]);
        let numbers: Vec<u64> = revisions(&history).iter().map(|r| r.0).collect();
        let expected: Vec<u64> = (1..=u64::from(round) + 1).collect();
        assert_eq!(numbers, expected, "round {round}: {history}");
        assert_eq!(
            revisions(&history).last(),
            Some(&(expected.len() as u64, true))
        );
        let greeting = if component == V2 {
            "Hello again from C"
        } else {
            "Hello from C"
        };
        assert_eq!(
            node.get("/hello").1,
            format!("{greeting}! You asked for /hello\n"),
            "round {round}"
        );
    }
}
