//! The main job: apply, serve, update, delete, restart, authenticate.

use crate::support::{Node, app_yaml, http_client, repo_path};

#[test]
fn apply_update_and_delete_an_app() {
    let node = Node::start(&[]);
    let v1 = app_yaml(
        "hello",
        &repo_path("examples/hello-c/hello.wasm"),
        "/hello",
        "",
    );
    assert_eq!(node.apply(&v1), "app/hello created\n");
    node.wait_ready("hello");

    // The component sees the original path and query.
    assert_eq!(
        node.get("/hello/there?x=1"),
        (200, "Hello from C! You asked for /hello/there?x=1\n".into())
    );
    // Prefixes match on segment boundaries; no route is a short 404.
    assert_eq!(
        node.get("/hellothere"),
        (404, "no app is routed at /hellothere\n".into())
    );

    assert_eq!(node.apply(&v1), "app/hello unchanged\n");
    let v2 = app_yaml(
        "hello",
        &repo_path("tests/fixtures/hello-v2.wasm"),
        "/hello",
        "",
    );
    assert_eq!(node.apply(&v2), "app/hello configured\n");
    node.wait_ready("hello");
    assert_eq!(
        node.get("/hello"),
        (200, "Hello again from C! You asked for /hello\n".into())
    );

    let table = node.ok(&["get", "apps"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "STATUS", "REVISION", "ROUTES", "AGE"]
    );
    assert_eq!(
        lines[1].split_whitespace().take(4).collect::<Vec<_>>(),
        ["hello", "Ready", "2", "/hello"]
    );

    let json: serde_json::Value =
        serde_json::from_str(&node.ok(&["get", "app", "hello", "-o", "json"])).unwrap();
    assert_eq!(json["apiVersion"], "shoal/v1alpha1");
    assert_eq!(json["kind"], "App");
    assert_eq!(json["metadata"]["name"], "hello");
    assert_eq!(json["metadata"]["namespace"], "default");
    assert_eq!(json["metadata"]["generation"], 2);
    assert!(json["metadata"]["resourceVersion"].as_u64().unwrap() > 0);
    assert!(json["metadata"]["creationTimestamp"].is_string());
    assert!(
        json["spec"]["component"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(json["status"]["phase"], "Ready");
    assert_eq!(json["status"]["observedGeneration"], 2);
    let yaml = node.ok(&["get", "app", "hello", "-o", "yaml"]);
    assert!(yaml.contains("phase: Ready"), "{yaml}");

    let described = node.ok(&["describe", "app", "hello"]);
    assert!(described.contains("Status:       Ready"), "{described}");
    assert!(described.contains("generation 2 serving"), "{described}");

    // Delete by manifest: the route is gone and the object with it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.yaml");
    std::fs::write(&file, &v2).unwrap();
    assert_eq!(
        node.ok(&["delete", "-f", file.to_str().unwrap()]),
        "app/hello deleted\n"
    );
    assert_eq!(node.get("/hello").0, 404);
    let err = node.fails(&["get", "app", "hello"], None);
    assert_eq!(err, "error: app/hello not found\n");
    assert_eq!(
        node.fails(&["delete", "app", "hello"], None).lines().next(),
        Some("error: app/hello not found")
    );
}

#[test]
fn relative_component_paths_resolve_against_the_manifest() {
    let node = Node::start(&[]);
    let out = node.ok(&["apply", "-f", &repo_path("examples/hello-c/app.yaml")]);
    assert_eq!(out, "app/hello created\n");
    node.wait_ready("hello");
    assert_eq!(node.get("/hello").0, 200);
    assert_eq!(node.ok(&["delete", "app", "hello"]), "app/hello deleted\n");
    assert_eq!(node.get("/hello").0, 404);
}

#[test]
fn restart_serves_again_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_in(dir.path(), &[]);
    node.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    assert_eq!(node.get("/hello").0, 200);
    let first = node.stop();
    assert!(
        first.contains("app/hello: generation 1 serving sha256:"),
        "{first}"
    );
    assert!(first.contains("(compiled in"), "{first}");

    let node = Node::start_in(dir.path(), &[]);
    // The status left Ready by the previous run is reset at start: Ready again means loaded.
    node.wait_ready("hello");
    assert_eq!(
        node.get("/hello"),
        (200, "Hello from C! You asked for /hello\n".into())
    );
    let second = node.stderr.text();
    assert!(
        second.contains("loaded compiled code from cache"),
        "{second}"
    );
    assert!(
        !second.contains("(compiled in"),
        "recompiled after restart:\n{second}"
    );
}

#[test]
fn the_api_requires_the_token() {
    let node = Node::start(&[]);
    let http = node.api_client();
    let url = format!("{}/v1/namespaces/default/apps/sneaky", node.api);
    let yaml = app_yaml(
        "sneaky",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "/x",
        "",
    );
    let resp = http.put(&url).body(yaml.clone()).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(
        body["error"],
        "missing bearer token; pass --token or SHOAL_TOKEN (shoal up and shoal server write one to DATA_DIR/token)"
    );
    let resp = http
        .get(format!("{}/v1/namespaces/default/apps", node.api))
        .bearer_auth("wrong")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = http
        .post(format!("{}/v1/blobs", node.api))
        .body(vec![0u8; 16])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let err = node.fails(&["--token", "wrong", "get", "apps"], None);
    assert_eq!(
        err,
        "error: the bearer token is not valid for this server\n"
    );
    // Nothing was changed by the rejected requests.
    let out = node.run(&["get", "apps"], None);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No apps found in namespace default.\n"
    );

    // The token file is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(node.data_dir.join("token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn python_and_javascript_apps_compile_without_stalling_other_apps() {
    let node = Node::start(&[]);
    node.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    let out = node.ok(&[
        "apply",
        "-f",
        &repo_path("examples/hello-py/app.yaml"),
        "-f",
        &repo_path("examples/hello-js/app.yaml"),
    ]);
    assert_eq!(out, "app/hello-py created\napp/hello-js created\n");
    // While the big components compile, the C app keeps answering.
    for _ in 0..20 {
        assert_eq!(node.get("/hello").0, 200);
    }
    node.wait_ready("hello-py");
    node.wait_ready("hello-js");
    assert_eq!(
        node.get("/py/a?b=c"),
        (200, "Hello from Python! You asked for /py/a?b=c\n".into())
    );
    assert_eq!(
        node.get("/js/z?y"),
        (200, "Hello from JavaScript! You asked for /js/z?y\n".into())
    );
}

#[test]
fn ctrl_c_lets_in_flight_requests_finish() {
    let node = Node::start(&[]);
    let limits = "  limits: {concurrency: 1}\n";
    node.deploy("slow", "tests/fixtures/misbehave.wasm", "/slow", limits);
    let in_flight = node.hold_only_slot("/slow/sleep?ms=1500", "/slow/quick");
    let log = node.stop();
    assert!(
        log.contains("shutting down: finishing in-flight requests"),
        "{log}"
    );
    assert_eq!(in_flight.join().unwrap(), (200, "slept 1500 ms\n".into()));
}

#[test]
fn routes_match_host_then_longest_prefix() {
    let node = Node::start(&[]);
    let hello = repo_path("examples/hello-c/hello.wasm");
    node.apply(&format!(
        "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: site}}\nspec:\n  component: {hello}\n  routes: [{{path: /, host: example.com}}]\n"
    ));
    node.wait_ready("site");
    node.deploy("api", "tests/fixtures/misbehave.wasm", "/api", "");
    let get = |host: &str, path: &str| {
        let resp = http_client()
            .get(format!("{}{path}", node.http))
            .header("host", host)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(
        get("example.com", "/docs"),
        (200, "Hello from C! You asked for /docs\n".into())
    );
    assert_eq!(
        get("EXAMPLE.com.:8080", "/"),
        (200, "Hello from C! You asked for /\n".into())
    );
    assert_eq!(
        get("localhost", "/docs"),
        (404, "no app is routed at /docs\n".into())
    );
    // A longer path prefix wins over a host match.
    assert_eq!(
        get("example.com", "/api/v1?q"),
        (200, "ok /api/v1?q\n".into())
    );
    assert_eq!(get("localhost", "/api"), (200, "ok /api\n".into()));
}

#[test]
fn ctrl_c_still_stops_a_busy_guest_at_its_cpu_limit() {
    let node = Node::start(&[]);
    let limits = "  limits: {concurrency: 1, cpu: 200ms}\n";
    node.deploy("busy", "tests/fixtures/misbehave.wasm", "/busy", limits);
    let in_flight = node.hold_only_slot("/busy/loop", "/busy/quick");
    // Shutting down must not stop the clock that interrupts guests.
    node.stop();
    assert_eq!(
        in_flight.join().unwrap(),
        (
            500,
            "app/busy exceeded its CPU limit (200ms) for this request; raise spec.limits.cpu\n"
                .into()
        )
    );
}
