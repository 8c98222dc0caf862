//! Bad input gets a clear error naming the object and field, and changes nothing.

use crate::support::{Node, app_yaml, repo_path};

/// Each case: a manifest on stdin and the exact error the user sees.
#[test]
fn invalid_manifests_are_rejected_and_apply_nothing() {
    let node = Node::start(&[]);
    let hello = repo_path("examples/hello-c/hello.wasm");
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.wasm");
    std::fs::write(&text_file, "this is not wasm").unwrap();
    let text_file = text_file.to_str().unwrap();
    let missing = dir.path().join("missing.wasm");
    let missing = missing.to_str().unwrap();
    let core = repo_path("tests/fixtures/command-module.wasm");

    let cases: Vec<(String, String)> = vec![
        (
            format!("apiVersion: shoal/v1alpha1\nkind: App\nmetadata:\n  name: a\nspec:\n  component: {hello}\n  routes: [{{path: /a}}\n"),
            "error: -: invalid YAML: did not find expected ',' or ']' at line 8 column 1, while parsing a flow sequence at line 7 column 11".into(),
        ),
        (
            app_yaml("a", &hello, "/a", "  replicas: 3\n"),
            "error: -: app/a: spec.replicas: unknown field `replicas`, expected one of `component`, `componentSource`, `routes`, `env`, `config`, `secretConfig`, `capabilities`, `files`, `limits`, `reuse`, `init`, `dependencies`, `healthCheck`, `scale`, `placement` at line 9 column 3".into(),
        ),
        (
            format!("apiVersion: shoal/v1alpha1\nkind: App\nmetadata:\n  name: a\nspec:\n  component: {hello}\n"),
            "error: -: app/a: spec: missing field `routes` at line 6 column 3".into(),
        ),
        (
            app_yaml("Hello_App", &hello, "/a", ""),
            "error: -: app/Hello_App: metadata.name: 'Hello_App' is not a DNS-1123 label; use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters".into(),
        ),
        (
            app_yaml("a", &hello, "/a", "  limits:\n    memory: 64MB\n"),
            "error: -: app/a: spec.limits.memory: '64MB' is not a quantity; use e.g. 64Mi, 1Gi or 500k at line 10 column 5".into(),
        ),
        (
            app_yaml("a", missing, "/a", ""),
            format!("error: app/a: spec.component: {missing} does not exist (looked for {missing}); paths are relative to the manifest"),
        ),
        (
            app_yaml("a", text_file, "/a", ""),
            format!("error: app/a: spec.component: {text_file} is not a WebAssembly file (it does not start with the \\0asm magic bytes)"),
        ),
        (
            app_yaml("a", &core, "/a", ""),
            format!("error: app/a: spec.component: {core} is a core WebAssembly module, not a component; an App needs a wasi:http component"),
        ),
        (
            // The first document is fine, the second is not: neither is applied.
            format!("{}---\n{}", app_yaml("good", &hello, "/good", ""), app_yaml("bad", &hello, "/bad", "  limits: {concurrency: 0}\n")),
            "error: -: app/bad: spec.limits.concurrency: must be at least 1".into(),
        ),
    ];
    for (yaml, expected) in cases {
        let err = node.fails(&["apply", "-f", "-"], Some(&yaml));
        assert_eq!(err.trim_end(), expected, "manifest:\n{yaml}");
        let out = node.run(&["get", "apps", "-o", "json"], None);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "[]",
            "something was applied by:\n{yaml}"
        );
    }
}

#[test]
fn a_route_served_by_another_app_is_refused() {
    let node = Node::start(&[]);
    let hello = repo_path("examples/hello-c/hello.wasm");
    node.apply(&app_yaml("first", &hello, "/shared", ""));
    let err = node.fails(
        &["apply", "-f", "-"],
        Some(&app_yaml("second", &hello, "/shared", "")),
    );
    assert_eq!(
        err,
        "error: app/second: spec.routes[0]: route /shared is already served by app/first; choose another path or host\n"
    );
    let out = node.ok(&["get", "apps"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("first"));
    node.wait_ready("first");
    assert_eq!(node.get("/shared").0, 200);
}

#[test]
fn a_route_spelled_with_a_trailing_slash_is_the_same_route() {
    // `/api` and `/api/` match the same requests on the node: one route, one owner.
    let node = Node::start(&[]);
    let hello = repo_path("examples/hello-c/hello.wasm");
    let misbehave = repo_path("tests/fixtures/misbehave.wasm");
    node.apply(&app_yaml("first", &hello, "/api", ""));
    let err = node.fails(
        &["apply", "-f", "-"],
        Some(&app_yaml("second", &misbehave, "/api/", "")),
    );
    // The error is the last line (the upload's progress line comes before it).
    assert_eq!(
        err.lines().last().unwrap_or_default(),
        "error: app/second: spec.routes[0]: route /api/ is already served by app/first; choose another path or host"
    );
    let out = node.ok(&["get", "apps"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    node.wait_ready("first");
    assert_eq!(
        node.get("/api/"),
        (200, "Hello from C! You asked for /api/\n".into())
    );
    // The owner may respell its own route; then the other spelling is free for nobody else.
    node.apply(&app_yaml("first", &hello, "/api/", ""));
    let err = node.fails(
        &["apply", "-f", "-"],
        Some(&app_yaml("second", &misbehave, "/api", "")),
    );
    assert!(
        err.contains("route /api is already served by app/first"),
        "{err}"
    );
    // And one app cannot list both spellings.
    let both = format!(
        "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: third}}\nspec:\n  component: {hello}\n  routes: [{{path: /x}}, {{path: /x/}}]\n"
    );
    let err = node.fails(&["apply", "-f", "-"], Some(&both));
    assert!(
        err.contains("spec.routes[1]: route /x/ matches what spec.routes[0] matches"),
        "{err}"
    );
}

#[test]
fn a_component_that_is_not_an_http_handler_fails_with_the_reason() {
    let node = Node::start(&[]);
    let cmd = repo_path("tests/fixtures/command-component.wasm");
    assert_eq!(
        node.apply(&app_yaml("cli", &cmd, "/cli", "")),
        "app/cli created\n"
    );
    let err = node.fails(&["wait", "app", "cli", "--timeout", "120s"], None);
    // The wait's state lines, then the error.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: app/cli failed: component sha256:"),
        "{err}"
    );
    assert!(
        err.contains(
            "does not export wasi:http/incoming-handler@0.2.x or wasi:http/handler@0.3.x (its exports: wasi:cli/run@0.2."
        ),
        "{err}"
    );
    assert!(
        err.contains("this is a wasi:cli command component, which runs as a Job, not an App"),
        "{err}"
    );
    let described = node.ok(&["describe", "app", "cli"]);
    assert!(described.contains("Status:       Failed"), "{described}");
    assert!(described.contains("Warning   Failed"), "{described}");
    assert!(
        described.contains("Serving:      nothing yet"),
        "{described}"
    );
    assert_eq!(node.get("/cli").0, 404);

    // A good component replaces it.
    let hello = repo_path("examples/hello-c/hello.wasm");
    assert_eq!(
        node.apply(&app_yaml("cli", &hello, "/cli", "")),
        "app/cli configured\n"
    );
    node.wait_ready("cli");
    assert_eq!(node.get("/cli").0, 200);

    // `get events` lists both, oldest first, as kubectl does.
    let events = node.ok(&["get", "events"]);
    let lines: Vec<&str> = events.lines().collect();
    assert!(
        lines[0].starts_with("LAST SEEN") && lines[0].contains("OBJECT"),
        "{events}"
    );
    let row = |kind: &str, reason: &str| {
        lines.iter().position(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1..4) == Some(&[kind, reason, "app/cli"][..])
        })
    };
    let (failed, compiled, serving) = (
        row("Warning", "Failed"),
        row("Normal", "Compiled"),
        row("Normal", "Serving"),
    );
    assert!(
        matches!((failed, compiled, serving), (Some(f), Some(c), Some(s)) if f < c && c < s),
        "{events}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&node.ok(&["get", "events", "-o", "json"])).unwrap();
    assert_eq!(json[0]["involvedObject"]["name"], "cli");
    assert!(
        node.fails(&["get", "events", "x"], None)
            .contains("events are listed, not fetched by name"),
    );
}

#[test]
fn a_failed_update_keeps_the_previous_generation_serving() {
    let node = Node::start(&[]);
    node.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    node.apply(&app_yaml(
        "hello",
        &repo_path("tests/fixtures/command-component.wasm"),
        "/hello",
        "",
    ));
    let err = node.fails(&["wait", "app", "hello", "--timeout", "120s"], None);
    assert!(
        err.trim_end().ends_with("; generation 1 keeps serving"),
        "{err}"
    );
    assert_eq!(node.get("/hello").0, 200);
}

#[test]
fn an_oversized_upload_is_refused() {
    let node = Node::start(&["--max-upload", "1Mi"]);
    let err = node.fails(
        &["apply", "-f", &repo_path("examples/hello-py/app.yaml")],
        None,
    );
    let path = repo_path("examples/hello-py/./hello-py.wasm");
    assert_eq!(
        err,
        format!(
            "error: app/hello-py: spec.component: uploading {path}: upload is larger than this server's limit of 1 MiB; shrink the component or start the server with a larger --max-upload\n"
        )
    );
    let out = node.run(&["get", "apps", "-o", "json"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn the_server_refuses_an_oversized_upload_before_reading_it() {
    use std::io::{Read, Write};
    let node = Node::start(&["--max-upload", "1Mi"]);
    let token = std::fs::read_to_string(node.data_dir.join("token")).unwrap();
    let addr = node.api.trim_start_matches("https://");
    let mut stream = node.api_stream();
    // Declare 2 MiB and send none of it: the answer must not wait for the body.
    write!(
        stream,
        "POST /v1/blobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Length: 2097152\r\n\r\n",
        token.trim()
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = stream.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("upload is larger than this server's limit of 1 MiB"),
        "{text}"
    );
}

#[test]
fn a_component_that_does_not_compile_fails_with_a_compile_failed_event() {
    let node = Node::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // A component header, then bytes no compiler accepts.
    let broken = dir.path().join("broken.wasm");
    let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
    bytes.extend(std::iter::repeat_n(0xffu8, 64));
    std::fs::write(&broken, bytes).unwrap();
    node.apply(&app_yaml(
        "broken",
        &broken.display().to_string(),
        "/broken",
        "",
    ));
    let err = node.fails(&["wait", "app", "broken", "--timeout", "120s"], None);
    assert!(err.contains("failed to compile"), "{err}");
    let events = node.ok(&["describe", "app", "broken"]);
    assert!(events.contains("CompileFailed"), "{events}");
    assert_eq!(node.get("/broken").0, 404);
}

#[test]
fn durations_too_long_to_add_to_a_clock_are_refused_not_a_panic() {
    let node = Node::start(&[]);
    let hello = repo_path("examples/hello-c/hello.wasm");
    // Through the CLI: refused naming the field.
    let huge = "  limits: {timeout: 2562047788015215h}\n";
    let err = node.fails(
        &["apply", "-f", "-"],
        Some(&app_yaml("huge", &hello, "/huge", huge)),
    );
    assert!(err.contains("limits.timeout"), "{err}");
    assert!(
        err.contains("is longer than the longest duration Shoal takes"),
        "{err}"
    );
    // Straight to the API: a 400, and the server keeps answering.
    node.deploy("ok", "examples/hello-c/hello.wasm", "/ok", "");
    let token = std::fs::read_to_string(node.data_dir.join("token")).unwrap();
    let client = node.api_client();
    let mut app: serde_json::Value = client
        .get(format!("{}/v1/namespaces/default/apps/ok", node.api))
        .bearer_auth(token.trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    app["spec"]["limits"] = serde_json::json!({ "timeout": "2562047788015215h" });
    let resp = client
        .put(format!("{}/v1/namespaces/default/apps/ok", node.api))
        .bearer_auth(token.trim())
        .json(&app)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    for since in ["3000000000h", "2000000000h"] {
        let resp = client
            .get(format!(
                "{}/v1/namespaces/default/apps/ok/logs?since={since}",
                node.api
            ))
            .bearer_auth(token.trim())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400, "since={since}");
        assert!(
            resp.text()
                .unwrap()
                .contains("longer than the longest duration")
        );
    }
    // A long but valid one reads everything.
    node.ok(&["logs", "ok", "--since", "87600h"]);
    assert_eq!(node.get("/ok").0, 200);
}
