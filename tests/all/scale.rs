//! Scale to zero: an app without requests for `spec.scale.idleAfter` goes Idle (its compiled
//! component released), and the next request brings it back transparently.

use crate::support::Node;
use shoal_api::{Activity, App};

fn app(node: &Node, name: &str) -> App {
    serde_json::from_str(&node.ok(&["get", "app", name, "-o", "json"])).unwrap()
}

fn wait_for(node: &Node, name: &str, state: Activity) -> App {
    loop {
        let a = app(node, name);
        if a.status.scale.as_ref().is_some_and(|s| s.state == state) {
            return a;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn an_idle_app_scales_to_zero_and_the_next_request_brings_it_back() {
    let node = Node::start(&[]);
    node.deploy(
        "hello",
        "examples/hello-c/hello.wasm",
        "/hello",
        "  scale: {idleAfter: 1s}\n",
    );
    node.deploy(
        "always",
        "tests/fixtures/hello-v2.wasm",
        "/always",
        "  scale: {idleAfter: 1s, toZero: false}\n",
    );
    assert_eq!(node.get("/hello").0, 200);
    let idle = wait_for(&node, "hello", Activity::Idle);
    assert_eq!(idle.status.scale.unwrap().scaled_to_zero, 1);
    assert!(node.ok(&["get", "apps"]).contains("Ready (Idle)"));

    // The next request is answered as usual, and the app is Active again.
    assert_eq!(
        node.get("/hello/again"),
        (200, "Hello from C! You asked for /hello/again\n".into())
    );
    let active = wait_for(&node, "hello", Activity::Active);
    assert_eq!(active.status.scale.unwrap().activations, 1);
    let describe = node.ok(&["describe", "app", "hello"]);
    for needle in ["ScaledToZero", "Activated", "1 activations, idle 1 times"] {
        assert!(describe.contains(needle), "{needle:?} not in:\n{describe}");
    }
    // toZero: false stays active however long it waits.
    let always = app(&node, "always");
    assert_eq!(always.status.scale.unwrap().state, Activity::Active);
    assert!(
        !node
            .ok(&["describe", "app", "always"])
            .contains("ScaledToZero")
    );
    assert_eq!(node.get("/always").0, 200);
}

#[test]
fn requests_racing_an_activation_are_all_answered() {
    let node = Node::start(&[]);
    node.deploy(
        "hello",
        "examples/hello-c/hello.wasm",
        "/hello",
        "  scale: {idleAfter: 1s}\n",
    );
    wait_for(&node, "hello", Activity::Idle);
    let url = format!("{}/hello", node.http);
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    crate::support::http_client()
                        .get(&url)
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let active = wait_for(&node, "hello", Activity::Active);
    assert_eq!(active.status.scale.unwrap().activations, 1);
}
