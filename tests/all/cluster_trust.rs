//! A cluster's servers do not trust what reaches them through the store API or from each
//! other: a node joins once and is then only itself, every write is a well-formed object of
//! the right name, a corrupt object hides no other, and a blob no server has is not chased
//! from server to server.

use crate::cluster::{join_token, node, server, wait_phase};
use crate::support::{app_yaml, repo_path};
use shoal_testkit::Etcd;

/// The credential of node `name`, from a join with `server`'s join token.
fn credential(server: &crate::support::Node, name: &str) -> String {
    let resp = server
        .api_client()
        .post(format!("{}/v1/nodes/{name}/join", server.api))
        .bearer_auth(join_token(server))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().unwrap();
    v["credential"].as_str().unwrap().to_string()
}

/// `shoal get apps` with `token`: its stderr, after it failed.
fn refused(server: &crate::support::Node, token: &str) -> String {
    let out = server
        .cli()
        .env("SHOAL_TOKEN", token)
        .args(["get", "apps"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `shoal node NAME` on `dir` through `server` (with `token`, if given): its stderr, after it
/// refused to start.
fn refused_start(
    server: &crate::support::Node,
    name: &str,
    token: Option<&str>,
    dir: &tempfile::TempDir,
) -> String {
    let mut cmd = std::process::Command::new(crate::support::SHOAL);
    cmd.args([
        "node",
        "--name",
        name,
        "--http",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir.path())
    .env("SHOAL_SERVER", &server.api)
    .env("SHOAL_CA", server.data_dir.join("tls").join("ca.crt"));
    if let Some(token) = token {
        cmd.env("SHOAL_JOIN_TOKEN", token);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_node_joins_once_and_is_then_only_itself() {
    use std::os::unix::fs::PermissionsExt;
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let srv = server(&etcd, &dirs[0]);
    let join = join_token(&srv);
    // The join token admits nodes, and reads nothing.
    let err = refused(&srv, &join);
    assert!(
        err.contains("the join token cannot use /v1/namespaces/default/apps"),
        "{err}"
    );

    // A node joins with it and keeps a credential of its own, readable by it alone.
    let n1 = node(&[&srv], "n1", &join, &dirs[1]);
    let kept = dirs[1].path().join("node-credential");
    let own = std::fs::read_to_string(&kept).unwrap().trim().to_string();
    assert!(own.starts_with("node.n1."), "{own}");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let err = refused(&srv, &own);
    assert!(
        err.contains("node/n1's credential cannot use /v1/namespaces/default/apps"),
        "{err}"
    );
    // Restarted, it needs no token, and serves.
    drop(n1);
    let n1 = node(&[&srv], "n1", "", &dirs[1]);
    wait_phase(&srv, "n1", shoal_api::NodePhase::Ready);
    srv.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    assert_eq!(n1.get("/hello").0, 200);
    // The servers read its logs with its credential; the join token does not.
    srv.ok(&["logs", "hello"]);
    let (client, url) = crate::support::node_over_tls(&srv, "n1", &n1.http);
    let r = client
        .get(format!("{url}/.shoal/logs?scope=default&name=hello"))
        .bearer_auth(&join)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    // Another machine taking the name with the join token is refused, and told what to do.
    let err = refused_start(&srv, "n1", Some(&join), &dirs[2]);
    assert!(
        err.contains("node/n1 has joined already") && err.contains("shoal delete node n1"),
        "{err}"
    );
    assert_eq!(
        n1.get("/hello").0,
        200,
        "the node that joined is undisturbed"
    );

    // A credential an operator made joins a node without the join token; removing the node
    // revokes it.
    let made = srv.ok(&["create", "node", "n2"]).trim().to_string();
    let n2 = node(&[&srv], "n2", &made, &dirs[2]);
    wait_phase(&srv, "n2", shoal_api::NodePhase::Ready);
    assert_eq!(srv.ok(&["delete", "node", "n2"]), "node/n2 deleted\n");
    let err = refused(&srv, &made);
    assert!(err.contains("not valid for this cluster"), "{err}");
    // Restarted on its data dir, the removed node says so instead of knocking forever.
    drop(n2);
    let err = refused_start(&srv, "n2", None, &dirs[2]);
    assert!(
        err.contains("the servers no longer accept node/n2's credential"),
        "{err}"
    );
}

#[test]
fn a_blob_no_server_has_is_not_chased_from_server_to_server() {
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = server(&etcd, &dirs[0]);
    let two = server(&etcd, &dirs[1]);
    let token = std::fs::read_to_string(one.data_dir.join("token")).unwrap();
    let client = one.api_client();
    // The servers know each other: an upload to one is on the other.
    let resp = client
        .post(format!("{}/v1/blobs", one.api))
        .bearer_auth(token.trim())
        .body(b"known".to_vec())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let known = shoal_api::Digest::of(b"known");
    loop {
        let r = client
            .head(format!("{}/v1/blobs/{known}", two.api))
            .bearer_auth(token.trim())
            .send()
            .unwrap();
        if r.status() == 200 {
            break;
        }
        // The second server registered after the upload: upload again.
        client
            .post(format!("{}/v1/blobs", one.api))
            .bearer_auth(token.trim())
            .body(b"known".to_vec())
            .send()
            .unwrap();
    }
    // A digest neither has: each asks the other once and answers 404 (before, each asked the
    // other in turn, forever).
    let missing = shoal_api::Digest::of(b"nobody has this");
    for server in [&one, &two, &one] {
        let r = client
            .get(format!("{}/v1/blobs/{missing}", server.api))
            .bearer_auth(token.trim())
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    // A blob only the other one has (a replica's copy, not copied on) is fetched from it.
    let r = client
        .post(format!("{}/v1/blobs", two.api))
        .bearer_auth(token.trim())
        .header(shoal_server::peers::REPLICA, "1")
        .body(b"only on two".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let only = shoal_api::Digest::of(b"only on two");
    let r = client
        .get(format!("{}/v1/blobs/{only}", one.api))
        .bearer_auth(token.trim())
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), b"only on two");
}

#[test]
fn store_writes_are_typed_objects_and_a_corrupt_one_hides_nothing() {
    let etcd = Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..1).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = server(&etcd, &dirs[0]);
    let node_token = credential(&one, "n1");
    one.apply(&app_yaml(
        "typed",
        &repo_path("examples/hello-c/hello.wasm"),
        "/typed",
        "",
    ));
    let client = one.api_client();
    let kv = |key: &str| format!("{}/v1/store/kv?key={key}", one.api);
    let current: serde_json::Value = client
        .get(kv("apps/default/typed"))
        .bearer_auth(&node_token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&base64_decode(current["value"].as_str().unwrap())).unwrap();

    // A node's status write that is not a status: refused, naming the key.
    let mut bad = stored.clone();
    bad["status"] = 42.into();
    let r = client
        .put(kv("apps/default/typed"))
        .bearer_auth(&node_token)
        .body(serde_json::to_vec(&bad).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("apps/default/typed: not a App"));
    // A Node object under another node's name.
    let r = client
        .put(kv("nodes/n1"))
        .bearer_auth(&node_token)
        .body(r#"{"apiVersion":"shoal/v1alpha1","kind":"Node","metadata":{"name":"n2"},"spec":{"address":"http://127.0.0.1:1","capacityMemory":1,"maxInstances":1}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("not the one its key names"));

    // Bytes written to etcd behind the API's back do not break listing the kind.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = shoal_store::Etcd::new(&etcd.url()).unwrap();
        shoal_store::Store::put(
            &store,
            "apps/default/corrupt",
            br#"{"status": 42}"#.to_vec(),
            shoal_store::Precondition::None,
        )
        .await
        .unwrap();
    });
    let listed = one.ok(&["get", "apps"]);
    assert!(listed.contains("typed"), "{listed}");
    assert!(!listed.contains("corrupt"), "{listed}");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
