//! Calls between apps in memory: a request to `http://APP.NAMESPACE.shoal.internal/…` that
//! the caller's allow-list grants is served by that app in the node's process, on a fresh
//! instance of the callee with the callee's own limits; loops end at the depth limit and the
//! first caller's timeout bounds the chain.

use crate::support::Node;

/// wasi:http's `error-code` the caps fixture prints by number (it names only a few).
const LOOP_DETECTED: &str = "error-code-36";
const DESTINATION_NOT_FOUND: &str = "error-code-2";

/// GETs `path`, a caller's fetch: answered 200, its body holding `said`.
fn answers(node: &Node, path: &str, said: &str) {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(said), "{body}");
}

/// GETs `path`, a caller's fetch: its call failed (502) with wasi:http error `error`.
fn fails(node: &Node, path: &str, error: &str) {
    let (status, body) = node.get(path);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains(error), "{body}");
}

fn grants(entries: &[&str]) -> String {
    format!("  capabilities:\n    outbound: {entries:?}\n")
}

#[test]
fn an_app_calls_another_in_memory_only_when_its_allow_list_names_it() {
    let node = Node::start_warm(&[]);
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    let hello = crate::support::repo_path("examples/hello-c/hello.wasm");
    node.apply(&format!(
        "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: hidden}}\nspec:\n  component: {hello}\n  routes: []\n"
    ));
    node.wait_ready("hidden");
    let listed = node.ok(&["get", "apps"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("hidden") && l.contains("(private)")),
        "{listed}"
    );
    let named = grants(&[
        "http://web.default.shoal.internal",
        "http://hidden.default.shoal.internal",
    ]);
    node.deploy("caller", "tests/fixtures/caps.wasm", "/caller", &named);

    answers(
        &node,
        "/caller/fetch?url=http://web.default.shoal.internal/web/x",
        "status 200: Hello from C!",
    );
    // The hop is in the callee's log.
    node.wait_for_log(
        "web",
        "GET /web/x from app/caller in memory (hop 1 of at most 10)",
    );
    // An app without routes is private: reached in memory only.
    answers(
        &node,
        "/caller/fetch?url=http://hidden.default.shoal.internal/h",
        "You asked for /h",
    );

    // Any host is the internet, not the node's apps; nor does a name of another app do.
    let any = grants(&[
        "http://*",
        "http://*:*",
        "http://other.default.shoal.internal",
    ]);
    node.deploy("wide", "tests/fixtures/caps.wasm", "/wide", &any);
    fails(
        &node,
        "/wide/fetch?url=http://web.default.shoal.internal/web/x",
        "http-request-denied",
    );
    node.wait_for_log(
        "wide",
        "app/web of namespace default is called in memory; only an entry naming it",
    );

    // Granted, but not served here.
    fails(
        &node,
        "/wide/fetch?url=http://other.default.shoal.internal/",
        DESTINATION_NOT_FOUND,
    );
    node.wait_for_log(
        "wide",
        "app/other of namespace default is not served on this node",
    );
}

#[test]
fn a_loop_of_calls_ends_at_the_depth_limit() {
    let node = Node::start_warm(&[]);
    let itself = grants(&["http://loop.default.shoal.internal"]);
    node.deploy("loop", "tests/fixtures/caps.wasm", "/loop", &itself);
    // Each hop fetches the rest of the URL: 12 nested calls, two more than a chain may have.
    let hop = "http://loop.default.shoal.internal/loop/fetch?url=";
    let path = format!(
        "/loop/fetch?url={}http://loop.default.shoal.internal/end",
        hop.repeat(11)
    );
    let (status, body) = node.get(&path);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(LOOP_DETECTED), "{body}");
    assert_eq!(body.matches("status 200: ").count(), 9, "{body}");
    let log = node.wait_for_log(
        "loop",
        "it would be hop 11 of a chain of calls between apps",
    );
    assert!(log.contains("(hop 10 of at most 10)"), "{log}");
    assert!(!log.contains("(hop 11 of"), "{log}");
}

#[test]
fn the_first_callers_timeout_bounds_every_hop() {
    let node = Node::start_warm(&[]);
    // The callee could sleep for 30 s; the chain began with a caller that waits 1 s.
    node.deploy(
        "slow",
        "tests/fixtures/misbehave.wasm",
        "/slow",
        "  limits: {timeout: 30s}\n",
    );
    let spec = format!(
        "  limits: {{timeout: 1s}}\n{}",
        grants(&["http://slow.default.shoal.internal"])
    );
    node.deploy("caller", "tests/fixtures/caps.wasm", "/caller", &spec);
    let (status, body) =
        node.get("/caller/fetch?url=http://slow.default.shoal.internal/sleep?ms=20000");
    assert_eq!(status, 504, "{body}");
    // The callee's request was stopped when the caller's deadline passed, not at its own
    // 30 s, nor after its 20 s of sleep.
    let log = node.wait_for_log("slow", "the request's guest work was stopped");
    assert!(
        log.contains("from app/caller in memory (hop 1 of at most 10)"),
        "{log}"
    );
}

/// A WASI 0.3 app (examples/hello-py3, whose /py3/fetch?url=U fetches U) calls and is called
/// in memory as a 0.2 one is, under the same depth limit and the first caller's deadline.
#[test]
fn a_wasi_0_3_app_calls_and_is_called_in_memory_under_the_same_bounds() {
    let node = Node::start_warm(&[]);
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    node.deploy(
        "slow",
        "tests/fixtures/misbehave.wasm",
        "/slow",
        "  limits: {timeout: 30s}\n",
    );
    let spec = format!(
        "  limits: {{timeout: 5s}}\n{}",
        grants(&[
            "http://web.default.shoal.internal",
            "http://py3.default.shoal.internal",
            "http://slow.default.shoal.internal",
        ])
    );
    node.deploy("py3", "examples/hello-py3/hello-py3.wasm", "/py3", &spec);
    let caller = grants(&["http://py3.default.shoal.internal"]);
    node.deploy("caller", "tests/fixtures/caps.wasm", "/caller", &caller);

    answers(
        &node,
        "/py3/fetch?url=http://web.default.shoal.internal/web/x",
        "200 Hello from C! You asked for /web/x",
    );
    answers(
        &node,
        "/caller/fetch?url=http://py3.default.shoal.internal/py3/hello",
        "status 200: Hello from Python (WASI 0.3)! You asked for /py3/hello",
    );
    node.wait_for_log(
        "web",
        "GET /web/x from app/py3 in memory (hop 1 of at most 10)",
    );

    // 12 nested calls of the 0.3 app to itself: the 11th hop is refused.
    let hop = "http://py3.default.shoal.internal/py3/fetch?url=";
    let (status, body) = node.get(&format!(
        "/py3/fetch?url={}http://py3.default.shoal.internal/end",
        hop.repeat(11)
    ));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("LoopDetected"), "{body}");
    let log = node.wait_for_log("py3", "it would be hop 11 of a chain of calls between apps");
    assert!(log.contains("(hop 10 of at most 10)"), "{log}");
    assert!(!log.contains("(hop 11 of"), "{log}");

    // The 0.3 caller's 5 s bound the callee's 20 s sleep: the callee was stopped when the
    // caller gave up, or stopped itself at the same deadline, the chain's, not its own 30 s.
    let (status, body) =
        node.get("/py3/fetch?url=http://slow.default.shoal.internal/sleep?ms=20000");
    assert_eq!(status, 504, "{body}");
    let log = node.wait_for_log_any(
        "slow",
        &[
            "the request's guest work was stopped",
            "request stopped at the deadline of the chain of calls it is a hop of (the first caller's timeout, sooner than its own 30s)",
        ],
    );
    assert!(!log.contains("request exceeded its timeout (30s)"), "{log}");
    assert!(
        log.contains("from app/py3 in memory (hop 1 of at most 10)"),
        "{log}"
    );
}

#[test]
fn a_spin_component_calls_another_of_its_application_at_spin_internal() {
    let node = Node::start_warm(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let (caps, hello) = (
        crate::support::repo_path("tests/fixtures/caps.wasm"),
        crate::support::repo_path("examples/hello-c/hello.wasm"),
    );
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "shop"

[[trigger.http]]
route = "/shop/..."
component = "front"

[[trigger.http]]
route = {{ private = true }}
component = "cart"

[[trigger.http]]
route = "/stock/..."
component = "stock"

[component.front]
source = "{caps}"
allowed_outbound_hosts = ["http://cart.spin.internal", "http://self"]

[component.cart]
source = "{hello}"

[component.stock]
source = "{hello}"
"#
    );
    std::fs::write(tmp.path().join("spin.toml"), manifest).unwrap();
    node.ok(&["apply", "-f", tmp.path().to_str().unwrap()]);
    for app in ["shop-front", "shop-cart", "shop-stock"] {
        node.wait_ready(app);
    }

    answers(
        &node,
        "/shop/fetch?url=http://cart.spin.internal/cart/x",
        "status 200: Hello from C!",
    );
    node.wait_for_log(
        "shop-cart",
        "GET /cart/x from app/shop-front in memory (hop 1",
    );
    // The cart is private: reached by the front, not from outside.
    assert_eq!(node.get("/cart/x").0, 404);
    // `self` is the application's own routes, as Spin has them.
    answers(
        &node,
        "/shop/fetch?url=http://self/stock/item",
        "You asked for /stock/item",
    );
    node.wait_for_log(
        "shop-stock",
        "GET /stock/item from app/shop-front in memory (hop 1",
    );
    fails(
        &node,
        "/shop/fetch?url=http://self/nowhere",
        DESTINATION_NOT_FOUND,
    );

    // A component the manifest does not allow, and a caller that is no Spin component.
    fails(
        &node,
        "/shop/fetch?url=http://stock.spin.internal/stock/",
        "http-request-denied",
    );
    let plain = grants(&["http://cart.spin.internal"]);
    node.deploy("plain", "tests/fixtures/caps.wasm", "/plain", &plain);
    fails(
        &node,
        "/plain/fetch?url=http://cart.spin.internal/cart/",
        DESTINATION_NOT_FOUND,
    );
    node.wait_for_log(
        "plain",
        "component cart of this Spin application is not served on this node",
    );
}

#[test]
fn the_c_example_front_calls_its_private_greeter_in_memory() {
    let node = Node::start_warm(&[]);
    node.ok(&[
        "apply",
        "-f",
        &crate::support::repo_path("examples/chain-c/app.yaml"),
    ]);
    node.wait_ready("greeter");
    node.wait_ready("front");
    let (status, body) = node.get("/front/hi");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "front called greeter.default.shoal.internal in memory, which said (200): Hello from C! You asked for /front/hi\n"
    );
    node.wait_for_log("greeter", "GET /front/hi from app/front in memory (hop 1");
}

#[test]
fn in_a_cluster_a_call_to_an_app_held_by_another_node_goes_to_that_node_and_only_nodes_may_send_one()
 {
    use crate::cluster::{join_token, node_with, server, wait_phase};
    use shoal_api::NodePhase::Ready;
    let etcd = shoal_testkit::Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let srv = server(&etcd, &dirs[0]);
    let token = join_token(&srv);
    let n1 = node_with(
        &[&srv],
        "n1",
        &token,
        &dirs[1],
        &["--labels", "side=callee"],
    );
    let n2 = node_with(
        &[&srv],
        "n2",
        &token,
        &dirs[2],
        &["--labels", "side=caller"],
    );
    wait_phase(&srv, "n1", Ready);
    wait_phase(&srv, "n2", Ready);
    let hello = crate::support::repo_path("examples/hello-c/hello.wasm");
    srv.apply(&format!(
        "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: greeter}}\nspec:\n  component: {hello}\n  routes: []\n  placement: {{nodeSelector: {{side: callee}}}}\n"
    ));
    let spec = format!(
        "{}  placement: {{nodeSelector: {{side: caller}}}}\n",
        grants(&["http://greeter.default.shoal.internal"])
    );
    srv.deploy("caller", "tests/fixtures/caps.wasm", "/caller", &spec);
    srv.wait_ready("greeter");

    // n2 holds the caller, n1 the private greeter: the call crosses to n1. Through n1's
    // ingress the request is forwarded to n2 first, and its call comes back to n1.
    for node in [&n2, &n1] {
        answers(
            node,
            "/caller/fetch?url=http://greeter.default.shoal.internal/hi",
            "status 200: Hello from C! You asked for /hi",
        );
    }
    let logs = srv.ok(&["logs", "greeter"]);
    assert!(
        logs.contains("GET /hi from app/caller through node/n2 (hop 1 of at most 10)"),
        "{logs}"
    );

    // Only a node sends a call: not a client in the clear, nor over TLS without a node's
    // certificate.
    let spoof = crate::support::http_client()
        .get(format!("{}/hi", n1.http))
        .header("shoal-call", "default/greeter")
        .send()
        .unwrap();
    assert_eq!(spoof.status().as_u16(), 421);
    let (tls, url) = crate::support::node_over_tls(&srv, "n1", &n1.http);
    let spoof = tls
        .get(format!("{url}/hi"))
        .header("shoal-call", "default/greeter")
        .send()
        .unwrap();
    assert_eq!(spoof.status().as_u16(), 403);
    assert!(spoof.text().unwrap().contains("only another node"));

    // A Spin component calls a component of its application held by the other node.
    let tmp = tempfile::tempdir().unwrap();
    let (caps, hello) = (
        crate::support::repo_path("tests/fixtures/caps.wasm"),
        crate::support::repo_path("examples/hello-c/hello.wasm"),
    );
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"shop\"\n[[trigger.http]]\nroute = \"/shop/...\"\ncomponent = \"front\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"cart\"\n[[trigger.http]]\nroute = \"/api/...\"\ncomponent = \"api\"\n[component.front]\nsource = \"{caps}\"\nallowed_outbound_hosts = [\"http://cart.spin.internal\", \"http://self\"]\n[component.cart]\nsource = \"{hello}\"\n[component.api]\nsource = \"{hello}\"\n"
    );
    std::fs::write(tmp.path().join("spin.toml"), manifest).unwrap();
    srv.ok(&["apply", "-f", tmp.path().to_str().unwrap()]);
    // Spin's manifest places nothing: each component's App is placed by an edit of its spec.
    for (app, side) in [
        ("shop-front", "caller"),
        ("shop-cart", "callee"),
        ("shop-api", "callee"),
    ] {
        let yaml = srv.ok(&["get", "app", app, "-o", "yaml"]);
        let placed = format!("spec:\n  placement: {{nodeSelector: {{side: {side}}}}}\n");
        srv.apply(&yaml.replacen("spec:\n", &placed, 1));
        srv.wait_ready(app);
    }
    // Until the node that held a component before the edit lets it go, a call may still be
    // served there in memory: call until one is logged through the other node. By id, and
    // `http://self`, routed by path among the components of the whole cluster.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (url, callee, path) in [
        ("http://cart.spin.internal/cart/x", "shop-cart", "/cart/x"),
        ("http://self/api/x", "shop-api", "/api/x"),
    ] {
        loop {
            answers(
                &n2,
                &format!("/shop/fetch?url={url}"),
                &format!("status 200: Hello from C! You asked for {path}"),
            );
            let logs = srv.ok(&["logs", callee]);
            if logs.contains(&format!("GET {path} from app/shop-front through node/n2")) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{logs}");
        }
    }
}
