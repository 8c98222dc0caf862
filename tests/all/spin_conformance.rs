//! Spin's conformance cases (the Spin project's `conformance-tests`: a `spin.toml` and a
//! `test.json5` per case) run against Shoal with a guest of our own,
//! `tests/fixtures/spin-conformance` (Spin's Python SDK), which plays each case's component.
//!
//! Each case is checked as their runner checks it: the status, the exact body, and every
//! response header — a header the case does not list is a failure, a listed one must have the
//! listed value, and only the ones marked optional may be missing.

use crate::support::{Node, http_client, repo_path};
use std::io::{BufRead, BufReader, Read, Write};

/// A response header a case expects: its name, its value if the case gives one, and whether
/// it may be absent.
type Header = (&'static str, Option<&'static str>, bool);

/// One case: its `spin.toml` (`{source}` and `{port}` are filled in; the guest's case is
/// chosen by its environment), the request, and the response it must get.
struct Case {
    name: &'static str,
    manifest: &'static str,
    path: &'static str,
    request_headers: &'static [(&'static str, &'static str)],
    status: u16,
    body: &'static str,
    headers: &'static [Header],
}

const EMPTY_OK: &[Header] = &[("content-length", Some("0"), false), ("date", None, true)];

const CASES: &[Case] = &[
    Case {
        name: "key-value",
        manifest: r#"
[[trigger.http]]
route = "/..."
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "key-value" }
key_value_stores = ["default"]
"#,
        path: "/",
        request_headers: &[("host", "example.com")],
        status: 200,
        body: "",
        headers: EMPTY_OK,
    },
    Case {
        name: "key-value-no-permission",
        manifest: r#"
[[trigger.http]]
route = "/..."
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "key-value" }
"#,
        path: "/",
        request_headers: &[("host", "example.com")],
        status: 500,
        body: "Error::AccessDenied",
        headers: &[
            ("transfer-encoding", Some("chunked"), true),
            ("content-length", Some("19"), true),
            ("date", None, true),
        ],
    },
    Case {
        name: "variables",
        manifest: r#"
[[trigger.http]]
route = "/..."
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "variables" }

[component.test.variables]
variable = "value"
"#,
        path: "/",
        request_headers: &[("host", "example.com")],
        status: 200,
        body: "",
        headers: EMPTY_OK,
    },
    Case {
        name: "request-shape",
        manifest: r#"
[[trigger.http]]
route = "/base/:path_segment/:path_end/..."
component = "request-shape"

[component.request-shape]
source = "{source}"
environment = { CONFORMANCE_CASE = "request-shape" }
"#,
        path: "/base/path/end/rest?key=value",
        request_headers: &[
            ("user-agent", "my-agent"),
            ("accept", "*/*"),
            ("host", "example.com"),
        ],
        status: 200,
        body: "",
        headers: EMPTY_OK,
    },
    Case {
        name: "sqlite",
        manifest: r#"
[[trigger.http]]
route = "/"
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "sqlite" }
sqlite_databases = ["default"]
"#,
        path: "/",
        request_headers: &[("host", "example.com")],
        status: 200,
        body: "",
        headers: &[
            ("transfer-encoding", None, true),
            ("content-length", None, true),
            ("date", None, true),
        ],
    },
    Case {
        name: "sqlite-no-permission",
        manifest: r#"
[[trigger.http]]
route = "/"
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "sqlite" }
"#,
        path: "/",
        request_headers: &[("host", "example.com")],
        status: 500,
        body: "Error::AccessDenied",
        headers: &[
            ("transfer-encoding", None, true),
            ("content-length", None, true),
            ("date", None, true),
        ],
    },
    Case {
        name: "outbound-wasi-http-v0.2.0",
        manifest: r#"
[[trigger.http]]
route = "/"
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "outbound-http" }
allowed_outbound_hosts = ["http://localhost:{port}"]
"#,
        path: "/",
        request_headers: &[("url", "http://localhost:{port}")],
        status: 200,
        body: "Hello, world!",
        headers: &[
            ("transfer-encoding", Some("chunked"), true),
            ("server", None, true),
            ("content-type", Some("text/plain"), true),
            ("content-length", None, true),
            ("date", None, true),
        ],
    },
    Case {
        name: "outbound-wasi-http-v0.2.0-no-perms",
        manifest: r#"
[[trigger.http]]
route = "/"
component = "test"

[component.test]
source = "{source}"
environment = { CONFORMANCE_CASE = "outbound-http" }
"#,
        path: "/",
        request_headers: &[("url", "http://localhost:1234")],
        status: 500,
        body: "incoming-response#get: ErrorCode::HttpRequestDenied",
        headers: &[
            ("transfer-encoding", Some("chunked"), true),
            ("content-length", Some("28"), true),
            ("date", None, true),
        ],
    },
];

/// Their `http-echo` service: answers every request with its body, as `text/plain`.
fn echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {length}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}

/// What is wrong with the response to `case`, if anything.
fn check(case: &Case, port: u16, node: &Node) -> Result<(), String> {
    let mut request = http_client().get(format!("{}{}", node.http, case.path));
    for (name, value) in case.request_headers {
        request = request.header(*name, value.replace("{port}", &port.to_string()));
    }
    let response = request.send().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_lowercase()))
        .collect();
    let body = response.text().map_err(|e| e.to_string())?;
    if status != case.status {
        return Err(format!(
            "status {status}, not {}; body: {body}",
            case.status
        ));
    }
    if body != case.body {
        return Err(format!("body {body:?}, not {:?}", case.body));
    }
    for (name, value, optional) in case.headers {
        let Some(i) = headers.iter().position(|(k, _)| k == name) else {
            if *optional {
                continue;
            }
            return Err(format!("no {name} header; got {headers:?}"));
        };
        let (_, got) = headers.remove(i);
        if let Some(want) = value
            && got != *want
        {
            return Err(format!("header {name} is {got:?}, not {want:?}"));
        }
    }
    if !headers.is_empty() {
        return Err(format!("unexpected headers: {headers:?}"));
    }
    Ok(())
}

#[test]
fn spin_conformance_cases_pass() {
    let node = Node::start_warm(&[]);
    let port = echo_server();
    let source = repo_path("tests/fixtures/spin-conformance.wasm");
    let mut failures = Vec::new();
    for case in CASES {
        // One application at a time: several cases route `/...`. Each gets an application
        // name of its own, so its key-value store and database start empty.
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!(
            "spin_manifest_version = 2\n\n[application]\nname = \"{}\"\n{}",
            case.name.replace('.', "-"),
            case.manifest
                .replace("{source}", &source)
                .replace("{port}", &port.to_string())
        );
        let file = dir.path().join("spin.toml");
        std::fs::write(&file, manifest).unwrap();
        let file = file.to_str().unwrap();
        let applied = node.ok(&["apply", "-f", file]);
        let app = applied
            .split_whitespace()
            .find_map(|w| w.strip_prefix("app/"))
            .unwrap_or_else(|| panic!("{applied}"));
        node.wait_ready(app);
        if let Err(e) = check(case, port, &node) {
            let log = node.ok(&["logs", app]);
            failures.push(format!("{}: {e}\n  the app's log:\n{log}", case.name));
        }
        node.ok(&["delete", "-f", file]);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
