//! WASI 0.3 apps: a `wasi:http/service@0.3.0` component (examples/hello-py3) served beside 0.2
//! ones, under every limit, with outbound HTTP behind the allow-list; a client that goes away
//! stops the guest's work.

use crate::support::{Node, Target, http_client};
use std::io::{BufRead, BufReader, Write};

const PY3: &str = "examples/hello-py3/hello-py3.wasm";

#[test]
fn a_wasi_03_app_serves_beside_a_02_app_within_every_limit() {
    let node = Node::start_warm(&[]);
    let target = Target::start();
    let p = target.port;
    let spec = format!(
        "  limits: {{cpu: 500ms, timeout: 3s, memory: 64Mi}}\n  capabilities:\n    outbound: [\"http://127.0.0.1:{p}\"]\n"
    );
    node.deploy("py3", PY3, "/py3", &spec);
    node.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    assert_eq!(
        node.get("/py3/hello?y=1"),
        (
            200,
            "Hello from Python (WASI 0.3)! You asked for /py3/hello?y=1\n".into()
        )
    );
    assert_eq!(
        node.get("/hello"),
        (200, "Hello from C! You asked for /hello\n".into())
    );
    // A fresh instance for every request: each answers its first.
    for _ in 0..3 {
        assert_eq!(node.get("/py3/count?ms=1"), (200, "answered 1\n".into()));
    }
    // The body streams after the handler returned.
    assert_eq!(
        node.get("/py3/stream?n=3&ms=5"),
        (200, "line 0\nline 1\nline 2\n".into())
    );
    // Outbound HTTP (wasi:http/client@0.3.0) under the same allow-list as 0.2.
    assert_eq!(
        node.get(&format!("/py3/fetch?url=http://127.0.0.1:{p}/ok")),
        (200, "200 target saw /ok".into())
    );
    let other = Target::start().port;
    let (status, body) = node.get(&format!("/py3/fetch?url=http://127.0.0.1:{other}/"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    node.wait_for_log(
        "py3",
        &format!("outbound HTTP to http://127.0.0.1:{other}/ denied"),
    );
    // Every limit, as for 0.2.
    let (status, body) = node.get("/py3/loop");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("exceeded its CPU limit (500ms)"), "{body}");
    let (status, body) = node.get("/py3/alloc");
    assert_eq!(status, 500, "{body}");
    let (status, body) = node.get("/py3/sleep?ms=60000");
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("did not respond within its timeout (3s)"),
        "{body}"
    );
    let (status, body) = node.get("/py3/fail");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("asked to fail"), "{body}");
    // The app is unharmed, and says which WASI it runs.
    assert_eq!(node.get("/py3").0, 200);
    let described = node.ok(&["describe", "app", "py3"]);
    assert!(
        described.contains("WASI:         0.3 (wasi:http/handler@0.3)"),
        "{described}"
    );
    let c: shoal_api::App =
        serde_json::from_str(&node.ok(&["get", "app", "hello", "-o", "json"])).unwrap();
    assert_eq!(c.status.wasi.as_deref(), Some("0.2"));
}

#[test]
fn a_client_that_goes_away_stops_the_guest_and_a_body_counts_against_the_timeout() {
    let node = Node::start_warm(&[]);
    // One request at a time: while a guest works for a request, the next one is shed. (Each
    // step below waits for the log line written once the previous request's slot is free.)
    node.deploy(
        "py3",
        PY3,
        "/py3",
        "  limits: {concurrency: 1, timeout: 2s}\n",
    );

    // Streaming past the timeout: the body is cut off where the timeout falls.
    let resp = http_client()
        .get(format!("{}/py3/stream?n=1000&ms=10", node.http))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().unwrap_or_default();
    assert!(body.starts_with("line 0\n"), "{body}");
    assert!(
        !body.contains("line 999"),
        "the body went on past the timeout"
    );
    node.wait_for_log("py3", "request exceeded its timeout (2s)");

    let addr = node.http.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /py3/stream?n=1000&ms=10 HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    while !line.contains("line 0") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
    }
    drop(reader);
    drop(stream);
    let log = node.wait_for_log(
        "py3",
        "the client went away before the response was complete",
    );
    assert_eq!(log.matches("stdout chunk 0").count(), 2, "{log}");
    // Its slot is free at once, long before the stream would have ended.
    assert_eq!(node.get("/py3/hello").0, 200);
}
