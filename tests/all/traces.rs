//! OpenTelemetry traces: a node started with `--otlp-endpoint` sends its spans to a real
//! OTLP/HTTP receiver (the OpenTelemetry project's protobuf definitions decode them), under
//! the caller's W3C `traceparent` and passed on to outgoing requests.

use crate::support::{Node, repo_path};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// `tests/fixtures/otlp_receiver.py` on a free port: its address and the spans it decoded.
struct Otlp {
    child: Child,
    url: String,
    spans: Receiver<Value>,
    seen: Vec<Value>,
}

impl Otlp {
    fn start() -> Otlp {
        let python = repo_path("target/test-venv/bin/python");
        let mut child = Command::new(&python)
            .arg(repo_path("tests/fixtures/otlp_receiver.py"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{python}: {e} (scripts/test makes target/test-venv)"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port = first.strip_prefix("listening ").expect(&first).to_string();
        let (tx, spans) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap());
            }
        });
        Otlp {
            child,
            url: format!("http://127.0.0.1:{port}"),
            spans,
            seen: Vec::new(),
        }
    }

    /// Waits (up to a minute) until a span `matches`, and returns it.
    fn span(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.seen.iter().find(|s| matches(s)) {
                return s.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.spans.recv_timeout(left) {
                Ok(s) => self.seen.push(s),
                Err(_) => panic!("no span {what} among {:#?}", self.seen),
            }
        }
    }
}

impl Drop for Otlp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVER: u64 = 2;
const CLIENT: u64 = 3;
const ERROR: u64 = 2;

/// Matches a span `name` whose parent is `parent`.
fn under(parent: &Value, name: &'static str) -> impl Fn(&Value) -> bool {
    let id = parent["spanId"].as_str().unwrap().to_string();
    move |s: &Value| s["name"] == name && s["parentSpanId"] == id.as_str()
}

#[test]
fn a_request_is_traced_through_its_instance_and_outgoing_requests_under_its_traceparent() {
    let mut otlp = Otlp::start();
    let node = Node::start_warm(&["--otlp-endpoint", &otlp.url]);
    let ingress = node.http.clone();
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    let grants = format!("  capabilities:\n    outbound: [\"{ingress}\"]\n");
    node.deploy("caller", "tests/fixtures/caps.wasm", "/caller", &grants);

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = crate::support::http_client()
        .get(format!("{ingress}/caller/fetch?url={ingress}/web/x"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().unwrap().contains("Hello from C!"));

    // The caller's request: a server span under the caller's span, in its trace.
    let server = otlp.span("GET app/caller", |s| s["name"] == "GET app/caller");
    assert_eq!(server["traceId"], trace, "{server}");
    assert_eq!(server["parentSpanId"], "00f067aa0ba902b7", "{server}");
    assert_eq!(server["kind"], SERVER, "{server}");
    assert_eq!(
        server["attributes"]["http.response.status_code"], 200,
        "{server}"
    );
    assert_eq!(server["resource"]["service.name"], "shoal", "{server}");
    assert!(
        server["end"].as_u64() >= server["start"].as_u64(),
        "{server}"
    );
    otlp.span(
        "instantiate under the server span",
        under(&server, "instantiate"),
    );
    let handler = otlp.span("handler under the server span", under(&server, "handler"));
    // Its outgoing request, under the handler, carrying the trace on to the app it calls.
    let client = otlp.span("the outgoing GET", under(&handler, "GET"));
    assert_eq!(client["kind"], CLIENT, "{client}");
    assert_eq!(client["traceId"], trace, "{client}");
    assert_eq!(client["attributes"]["url.full"], format!("{ingress}/web/x"));
    assert_eq!(
        client["attributes"]["http.response.status_code"], 200,
        "{client}"
    );
    let callee = otlp.span(
        "the callee under the outgoing request",
        under(&client, "GET app/web"),
    );
    assert_eq!(callee["traceId"], trace, "{callee}");

    // Without a traceparent (or with a malformed one) a request starts a trace of its own.
    let resp = crate::support::http_client()
        .get(format!("{ingress}/web/alone"))
        .header("traceparent", "not-a-trace-context")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let alone = otlp.span("a root span", |s| {
        s["attributes"]["url.path"] == "/web/alone"
    });
    assert_eq!(alone["parentSpanId"], "", "{alone}");
    assert_ne!(alone["traceId"], trace, "{alone}");

    // A trace the caller did not sample (flags 00) is not recorded here either: a sampled
    // request sent after it is exported, and nothing of the unsampled one came before it
    // (one exporter posts its queue in order).
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let resp = crate::support::http_client()
        .get(format!("{ingress}/caller/fetch?url={ingress}/web/quiet"))
        .header("traceparent", format!("00-{unsampled}-b7ad6b7169203331-00"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = crate::support::http_client()
        .get(format!("{ingress}/web/after"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    otlp.span("the sampled request after it", |s| {
        s["attributes"]["url.path"] == "/web/after"
    });
    assert!(
        !otlp.seen.iter().any(|s| s["traceId"] == unsampled),
        "an unsampled trace was recorded: {:#?}",
        otlp.seen
    );

    // A refused outgoing request is a failed client span.
    let (status, _) = node.get("/caller/fetch?url=http://127.0.0.1:1/");
    assert_eq!(status, 502);
    let denied = otlp.span("a denied outgoing request", |s| {
        s["kind"] == CLIENT && s["attributes"]["url.full"] == "http://127.0.0.1:1/"
    });
    assert_eq!(denied["status"]["code"], 2, "{denied}");
}

#[test]
fn a_call_between_apps_in_memory_is_traced_as_a_hop_of_its_trace() {
    let mut otlp = Otlp::start();
    let node = Node::start_warm(&["--otlp-endpoint", &otlp.url]);
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    let grants = "  capabilities:\n    outbound: [\"http://web.default.shoal.internal\"]\n";
    node.deploy("caller", "tests/fixtures/caps.wasm", "/caller", grants);
    let (status, body) = node.get("/caller/fetch?url=http://web.default.shoal.internal/web/in");
    assert_eq!(status, 200, "{body}");
    let client = otlp.span("the call", |s| {
        s["kind"] == CLIENT
            && s["attributes"]["url.full"] == "http://web.default.shoal.internal/web/in"
    });
    let callee = otlp.span("the callee under the call", under(&client, "GET app/web"));
    assert_eq!(callee["attributes"]["shoal.in_memory"], true, "{callee}");
    assert_eq!(callee["traceId"], client["traceId"], "{callee}");
}

#[test]
fn a_request_answered_by_a_shared_wasi_03_instance_is_traced_as_such() {
    let mut otlp = Otlp::start();
    let node = Node::start_warm(&["--otlp-endpoint", &otlp.url]);
    let spec = "  reuse: {maxConcurrent: 4}\n";
    node.deploy("py3", "examples/hello-py3/hello-py3.wasm", "/py3", spec);
    let trace = "0af7651916cd43dd8448eb211c80319c";
    for _ in 0..2 {
        let resp = crate::support::http_client()
            .get(format!("{}/py3/hello", node.http))
            .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let server = otlp.span("GET app/py3", |s| s["name"] == "GET app/py3");
    assert_eq!(server["traceId"], trace, "{server}");
    let handler = otlp.span("a handler under the server span", under(&server, "handler"));
    assert_eq!(
        handler["attributes"]["shoal.instance.shared"], true,
        "{handler}"
    );
    // The second request found the first one's instance.
    otlp.span("a handler on a reused instance", |s| {
        s["name"] == "handler" && s["attributes"]["shoal.instance.reused"] == true
    });
}

#[test]
fn an_apply_is_traced_through_the_deploy_of_each_node_until_it_serves_or_fails() {
    let mut otlp = Otlp::start();
    let node = Node::start_warm(&["--otlp-endpoint", &otlp.url]);
    let check = "  healthCheck: {path: /web/health}\n";
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", check);

    let apply = otlp.span("the apply", |s| s["name"] == "apply app/default/web");
    assert_eq!(apply["kind"], SERVER, "{apply}");
    assert_eq!(apply["attributes"]["shoal.apply"], "Created", "{apply}");
    let deploy = otlp.span(
        "the deploy under the apply",
        under(&apply, "deploy app/default/web"),
    );
    assert_eq!(deploy["traceId"], apply["traceId"], "{deploy}");
    assert_eq!(deploy["attributes"]["shoal.generation"], 1, "{deploy}");
    let serving = deploy["attributes"]["shoal.serving"]
        .as_str()
        .unwrap_or_default();
    assert!(serving.contains("health check passed"), "{deploy}");
    let load = otlp.span(
        "the load under the deploy",
        under(&deploy, "load component"),
    );
    assert!(load["attributes"]["shoal.load"].is_string(), "{load}");
    let checked = otlp.span(
        "the health check under the deploy",
        under(&deploy, "health check"),
    );
    assert_eq!(
        checked["attributes"]["url.path"], "/web/health",
        "{checked}"
    );
    // The deploy ends when the app serves: after its load and its check.
    assert!(
        deploy["end"].as_u64() >= checked["end"].as_u64(),
        "{deploy} {checked}"
    );
    assert!(
        checked["start"].as_u64() >= load["end"].as_u64(),
        "{load} {checked}"
    );

    // A generation that cannot serve: its deploy is a failed span that says why.
    node.apply(&crate::support::app_yaml(
        "web",
        &repo_path("tests/fixtures/command-component.wasm"),
        "/web",
        "",
    ));
    let failed = otlp.span("generation 2's failed deploy", |s| {
        s["name"] == "deploy app/default/web" && s["attributes"]["shoal.generation"] == 2
    });
    assert_eq!(failed["status"]["code"], ERROR, "{failed}");
    assert!(
        !failed["status"]["message"].as_str().unwrap().is_empty(),
        "{failed}"
    );
    let configured = otlp.span("the second apply", |s| {
        s["name"] == "apply app/default/web" && s["attributes"]["shoal.apply"] == "Configured"
    });
    assert_eq!(failed["parentSpanId"], configured["spanId"], "{failed}");
}

#[test]
fn a_bad_otlp_endpoint_is_refused_at_start_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["up", "--api", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--otlp-endpoint", "localhost:4318", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--otlp-endpoint"), "{stderr}");
    assert!(stderr.contains("http://"), "{stderr}");
}
