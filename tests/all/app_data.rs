//! Nothing outlives its app: deleting an App removes its key-value data, databases and log on
//! every node, and an App created again under the same name starts empty — also when its node
//! was down meanwhile.

use crate::cluster::{join_token, node, server};
use crate::support::{Node, app_yaml, repo_path};
use shoal_testkit::Etcd;

const CAPS: &str = "tests/fixtures/caps.wasm";
const KV: &str = "  capabilities:\n    keyvalue: [default]\n";

fn set(node: &Node, app: &str, key: &str, value: &str) {
    assert_eq!(
        node.get(&format!(
            "/{app}/kv/set?bucket=default&key={key}&value={value}"
        )),
        (200, format!("set {key}\n"))
    );
}

fn value(node: &Node, app: &str, key: &str) -> String {
    let (status, body) = node.get(&format!("/{app}/kv/get?bucket=default&key={key}"));
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until `node`'s ingress routes `path` (a restarted node loads its apps again).
fn serving(node: &Node, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while node.get(path).1.starts_with("no app is routed") {
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never served:\n{}",
            node.stderr.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_deleted_app_leaves_nothing_behind_and_one_created_again_starts_empty() {
    let node = Node::start(&[]);
    node.deploy("a", CAPS, "/a", KV);
    node.deploy("ab", CAPS, "/ab", KV);
    set(&node, "a", "secret", "abc");
    set(&node, "ab", "secret", "kept");
    // Something in a's log: a refused outbound request is logged.
    assert_eq!(node.get("/a/fetch?url=http://127.0.0.1:9/").0, 502);
    node.wait_for_log("a", "denied");

    node.ok(&["delete", "app", "a"]);
    node.deploy("a", CAPS, "/a", KV);
    assert_eq!(value(&node, "a", "secret"), "no value\n");
    let log = node.ok(&["logs", "a"]);
    assert!(
        !log.contains("denied"),
        "the old app's log is still there:\n{log}"
    );
    // Another app's data, even under a name that starts the same, is untouched.
    assert_eq!(value(&node, "ab", "secret"), "value: kept\n");
}

#[test]
fn an_app_deleted_and_created_again_while_its_node_was_down_starts_empty() {
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let api = server(&etcd, &dirs[0]);
    let worker = node(&[&api], "n1", &join_token(&api), &dirs[1]);
    let caps = repo_path(CAPS);
    api.apply(&app_yaml("a", &caps, "/a", KV));
    api.wait_ready("a");
    set(&worker, "a", "secret", "abc");
    worker.stop();

    // While the node is down: the app is deleted and a new one of its name created.
    api.ok(&["delete", "app", "a"]);
    api.apply(&app_yaml("a", &caps, "/a", KV));
    let worker = node(&[&api], "n1", "", &dirs[1]);
    api.wait_ready("a");
    assert_eq!(value(&worker, "a", "secret"), "no value\n");
    set(&worker, "a", "secret", "new");
    // The new app's own data survives the node's restart.
    worker.stop();
    let worker = node(&[&api], "n1", "", &dirs[1]);
    // The status may still say Ready from before the restart: wait for the node itself.
    serving(&worker, "/a");
    assert_eq!(value(&worker, "a", "secret"), "value: new\n");
}
