//! Spin applications applied from their `spin.toml`, built by Spin's own SDKs, served with
//! the host APIs they import.

use crate::support::{Node, http_client, repo_path};

/// Serves `bytes` to every HTTP request on a free loopback port, in a thread; returns the URL.
fn serve_file(bytes: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app.wasm", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut head);
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = std::io::Write::write_all(&mut stream, header.as_bytes());
            let _ = std::io::Write::write_all(&mut stream, &bytes);
        }
    });
    url
}

/// A `spin.toml` for the Spin Python example, in a directory of its own: a wildcard route
/// and an exact one, variables (one required and secret), a key-value store, files (a glob
/// with an exclusion, and a directory placed elsewhere), a Redis host that Shoal does not
/// serve, and the exact route's component fetched from `url` and checked against its digest.
fn spin_app(dir: &std::path::Path, url: &str, digest: &str) {
    let wasm = repo_path("examples/spin-py/app.wasm");
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::create_dir_all(dir.join("assets/css")).unwrap();
    std::fs::write(dir.join("static/hello.txt"), "hello from a file\n").unwrap();
    std::fs::write(dir.join("static/hello.bak"), "excluded\n").unwrap();
    std::fs::write(dir.join("assets/css/site.css"), "h1 {}\n").unwrap();
    std::fs::write(
        dir.join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2

[application]
name = "spin-test"

[variables]
greeting = {{ default = "Hello" }}
api_key = {{ required = true, secret = true }}

[[trigger.http]]
route = "/py/..."
component = "spin-test"

[[trigger.http]]
route = "/exact"
component = "exact"

[component.spin-test]
source = "{wasm}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["redis://localhost:6379"]
files = ["static/*", {{ source = "assets", destination = "/www" }}]
exclude_files = ["static/*.bak"]

[component.spin-test.variables]
message = "{{{{ greeting }}}} from Spin Python"
token = "Bearer {{{{ api_key }}}}"

[component.spin-test.build]
command = "componentize-py -w spin-http componentize app -o app.wasm"

[component.exact]
source = {{ url = "{url}", digest = "{digest}" }}

[component.exact.variables]
message = "exactly here"
"#
        ),
    )
    .unwrap();
}

#[test]
fn a_spin_python_app_runs_from_its_spin_toml_with_spin_host_apis() {
    let node = Node::start_warm(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo_path("examples/spin-py/app.wasm")).unwrap();
    let digest = shoal_digest(&bytes);
    let url = serve_file(bytes);
    // A source whose bytes are not what its digest says applies nothing.
    spin_app(tmp.path(), &url, &format!("sha256:{}", "0".repeat(64)));
    let err = node.fails(
        &[
            "apply",
            "-f",
            tmp.path().to_str().unwrap(),
            "--variable",
            "api_key=x",
        ],
        None,
    );
    assert!(
        err.contains("component.exact.source: invalid content digest"),
        "{err}"
    );
    assert!(
        node.ok(&["get", "apps"]).lines().count() <= 1,
        "nothing was applied"
    );
    spin_app(tmp.path(), &url, &digest);
    let dir = tmp.path().to_str().unwrap();

    // A required variable without a value refuses the apply, naming it.
    let err = node.fails(&["apply", "-f", dir], None);
    assert!(err.contains("variables.api_key: is required"), "{err}");
    assert!(err.contains("--variable api_key=VALUE"), "{err}");

    let out = node.run(&["apply", "-f", dir, "--variable", "api_key=s3cret"], None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("app/spin-test created"), "{stdout}");
    assert!(stdout.contains("app/spin-test-exact created"), "{stdout}");
    assert!(stderr.contains("build is ignored"), "{stderr}");
    assert!(stderr.contains("redis connections are refused"), "{stderr}");
    node.wait_ready("spin-test");
    node.wait_ready("spin-test-exact");

    // Variables: a template over the app's variables, a secret one, Spin's errors.
    assert_eq!(node.get("/py/"), (200, "Hello from Spin Python\n".into()));
    assert_eq!(node.get("/py/var/token"), (200, "Bearer s3cret\n".into()));
    let (status, body) = node.get("/py/var/nope");
    assert_eq!(status, 404);
    assert!(body.starts_with("Undefined("), "{body}");
    let (status, body) = node.get("/py/var/Bad-Name");
    assert_eq!(status, 404);
    assert!(body.starts_with("InvalidName("), "{body}");

    // Key-value: the listed store is durable across requests; another one is denied.
    assert_eq!(node.get("/py/count"), (200, "count 1\n".into()));
    assert_eq!(node.get("/py/count"), (200, "count 2\n".into()));
    assert_eq!(node.get("/py/kv/other"), (403, "AccessDenied\n".into()));

    // An interface of Spin's platform the node does not provide answers Spin's error for a
    // denied address, and the app's log says what was missing.
    assert_eq!(node.get("/py/redis"), (403, "InvalidAddress\n".into()));
    node.wait_for_log("spin-test", "fermyon:spin/redis@2.0.0");

    // Files: the glob's files at their relative paths, the excluded one left out, the
    // directory at its destination.
    assert_eq!(
        node.get("/py/file/static/hello.txt"),
        (200, "hello from a file\n".into())
    );
    assert_eq!(
        node.get("/py/file/www/css/site.css"),
        (200, "h1 {}\n".into())
    );
    assert_eq!(node.get("/py/file/static/hello.bak").0, 404);

    // Spin's request headers, computed from the route that matched; a client's own spin-*
    // headers never reach the component.
    let body = http_client()
        .get(format!("{}/py/headers?x=1", node.http))
        .header("spin-path-info", "/forged")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let host = node.http.trim_start_matches("http://");
    for line in [
        "GET /py/headers?x=1".to_string(),
        format!("spin-full-url: http://{host}/py/headers?x=1"),
        "spin-path-info: /headers".into(),
        "spin-matched-route: /py/...".into(),
        "spin-raw-component-route: /py/...".into(),
        "spin-component-route: /py".into(),
        "spin-base-path: /".into(),
        "spin-client-addr: 127.0.0.1:".into(),
    ] {
        assert!(body.contains(&line), "{line:?} not in:\n{body}");
    }
    assert!(!body.contains("/forged"), "{body}");

    // The exact route serves its path only.
    assert_eq!(node.get("/exact"), (200, "exactly here\n".into()));
    assert_eq!(node.get("/exact/more").0, 404);

    // A secret never shows; a second apply of the same files and values is unchanged, and
    // so is applying the API's own output.
    let yaml = node.ok(&["get", "app", "spin-test", "-o", "yaml"]);
    assert!(!yaml.contains("s3cret"), "{yaml}");
    assert!(yaml.contains("(secret)"), "{yaml}");
    assert!(yaml.contains("shoal.dev/spin-app: spin-test"), "{yaml}");
    let again = node.ok(&["apply", "-f", dir, "--variable", "api_key=s3cret"]);
    assert!(again.contains("app/spin-test unchanged"), "{again}");
    assert!(again.contains("app/spin-test-exact unchanged"), "{again}");
    let round_trip = node.run(&["apply", "-f", "-"], Some(&yaml));
    assert!(round_trip.status.success());
    assert!(String::from_utf8_lossy(&round_trip.stdout).contains("unchanged"));
    assert_eq!(node.get("/py/var/token"), (200, "Bearer s3cret\n".into()));

    // A value given as spin up takes it: a new revision with the new value.
    let changed = node.ok(&[
        "apply",
        "-f",
        dir,
        "--variable",
        "api_key=s3cret",
        "--variable",
        "greeting=Hi",
    ]);
    assert!(changed.contains("app/spin-test configured"), "{changed}");
    node.wait_ready("spin-test");
    assert_eq!(node.get("/py/"), (200, "Hi from Spin Python\n".into()));

    // Deleting by manifest needs no variables and removes every App of the application.
    let deleted = node.ok(&["delete", "-f", dir]);
    assert!(deleted.contains("app/spin-test deleted"), "{deleted}");
    assert!(deleted.contains("app/spin-test-exact deleted"), "{deleted}");
    let status = http_client()
        .get(format!("{}/py/", node.http))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

/// `sha256:<hex>` of `bytes`, as Spin's `source.digest` names it.
fn shoal_digest(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// A `spin.toml` with two components on one SQLite label: the Spin 2 Python example (WASI
/// 0.2, `spin:sqlite@3.0.0`) and the Spin 4 one (WASI 0.3, spin-sdk 5.0.0's async
/// interfaces), each with a key-value store.
fn sqlite_app(dir: &std::path::Path) {
    let (py, py3) = (
        repo_path("examples/spin-py/app.wasm"),
        repo_path("examples/spin-py3/app.wasm"),
    );
    std::fs::write(
        dir.join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2

[application]
name = "db"

[variables]
greeting = {{ default = "Hello" }}

[[trigger.http]]
route = "/db/..."
component = "py"

[[trigger.http]]
route = "/db4/..."
component = "py4"

[component.py]
source = "{py}"
sqlite_databases = ["default"]

[component.py4]
source = "{py3}"
key_value_stores = ["default"]
sqlite_databases = ["default"]

[component.py4.variables]
message = "{{{{ greeting }}}} from Spin 4"
"#
        ),
    )
    .unwrap();
}

/// Runs `sql` on database `label` through the Spin 2 example's `/query/` path.
fn query(node: &Node, label: &str, sql: &str) -> (u16, String) {
    let response = http_client()
        .post(format!("{}/db/query/{label}", node.http))
        .body(sql.to_string())
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn spin_apps_get_sqlite_databases_of_their_own_durable_and_bounded_and_spin_4_apps_run() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start_warm_in(data.path(), &["--sqlite-max-size", "256Ki"]);
    let tmp = tempfile::tempdir().unwrap();
    sqlite_app(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    node.ok(&["apply", "-f", dir]);
    node.wait_ready("db-py");
    node.wait_ready("db-py4");

    // The listed database keeps its rows across requests; another label is denied.
    assert_eq!(node.get("/db/sql/default"), (200, "rows 1\n".into()));
    assert_eq!(node.get("/db/sql/default"), (200, "rows 2\n".into()));
    assert_eq!(node.get("/db/sql/other"), (403, "AccessDenied\n".into()));

    // A Spin 4 component (WASI 0.3, Spin's async interfaces): its own database under the
    // same label, its key-value store and variables.
    assert_eq!(node.get("/db4/sql/default"), (200, "rows 1\n".into()));
    assert_eq!(node.get("/db4/sql/other"), (403, "AccessDenied\n".into()));
    assert_eq!(node.get("/db4/count"), (200, "count 1\n".into()));
    assert_eq!(node.get("/db4/count"), (200, "count 2\n".into()));
    assert_eq!(node.get("/db4/keys"), (200, "count\n".into()));
    assert_eq!(node.get("/db4/kv/other"), (403, "AccessDenied\n".into()));
    assert_eq!(node.get("/db4/"), (200, "Hello from Spin 4\n".into()));
    let (status, body) = node.get("/db4/var/Bad");
    assert_eq!(status, 404);
    assert!(body.starts_with("InvalidName("), "{body}");

    // SQL reaches no other file, and cannot lift the limits.
    let (status, body) = query(&node, "default", "ATTACH DATABASE '/tmp/other.db' AS o");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not authorized"), "{body}");
    let (status, body) = query(&node, "default", "VACUUM INTO '/tmp/copy.db'");
    assert_eq!(status, 403, "{body}");
    let (status, body) = query(&node, "default", "PRAGMA max_page_count = 1000000");
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        query(&node, "default", "PRAGMA user_version"),
        (200, "0\n".into())
    );

    // Past its size a database answers database-full, and what it held stays.
    query(&node, "default", "CREATE TABLE big (b BLOB)");
    let full = (0..20)
        .map(|_| query(&node, "default", "INSERT INTO big VALUES (zeroblob(65536))"))
        .find(|(status, _)| *status != 200);
    assert_eq!(full, Some((403, "DatabaseFull\n".into())));

    // A statement that would never end is stopped at the statement time limit.
    let (status, body) = query(
        &node,
        "default",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("ran longer than"), "{body}");

    // Durable across a restart of the node.
    node.stop();
    let node = Node::start_warm_in(data.path(), &["--sqlite-max-size", "256Ki"]);
    node.wait_ready("db-py");
    node.wait_ready("db-py4");
    assert_eq!(node.get("/db/sql/default"), (200, "rows 3\n".into()));
    assert_eq!(node.get("/db4/count"), (200, "count 3\n".into()));
}

#[test]
fn a_spin_javascript_app_runs_from_its_spin_toml() {
    let node = Node::start_warm(&[]);
    let manifest = repo_path("examples/spin-js/spin.toml");
    let out = node.ok(&["apply", "-f", &manifest]);
    assert!(out.contains("app/spin-js created"), "{out}");
    node.wait_ready("spin-js");

    // Variables, key-value (the listed store, durable; another denied) and Spin's headers,
    // through the JavaScript SDK's build tools.
    assert_eq!(
        node.get("/spin-js/"),
        (200, "Hello from Spin JavaScript\n".into())
    );
    assert_eq!(node.get("/spin-js/count"), (200, "count 1\n".into()));
    assert_eq!(node.get("/spin-js/count"), (200, "count 2\n".into()));
    assert_eq!(
        node.get("/spin-js/kv/other"),
        (403, "access-denied\n".into())
    );
    let (status, body) = node.get("/spin-js/var/nope");
    assert_eq!(
        (status, body.starts_with("undefined(")),
        (404, true),
        "{body}"
    );
    let (_, headers) = node.get("/spin-js/headers");
    assert!(headers.contains("spin-path-info: /headers"), "{headers}");
    assert!(
        headers.contains("spin-matched-route: /spin-js/..."),
        "{headers}"
    );

    // `--variable` overrides a default, as with `spin up`.
    let changed = node.ok(&["apply", "-f", &manifest, "--variable", "greeting=Hi"]);
    assert!(changed.contains("app/spin-js configured"), "{changed}");
    node.wait_ready("spin-js");
    assert_eq!(
        node.get("/spin-js/"),
        (200, "Hi from Spin JavaScript\n".into())
    );
    assert_eq!(node.get("/spin-js/count"), (200, "count 3\n".into()));
}
