//! Capabilities: nothing is granted unless the manifest says so, and grants cannot be stretched.

use crate::support::{Node, Target, http_client};

const CAPS: &str = "tests/fixtures/caps.wasm";

#[test]
fn outbound_http_follows_the_allow_list_and_the_real_destination() {
    let node = Node::start(&[]);
    let target = Target::start();
    let other = Target::start();
    let p = target.port;
    let ingress_port = node.http.rsplit(':').next().unwrap().to_string();
    let grants = format!(
        "  capabilities:\n    outbound: [\"http://localhost:{p}\", \"http://127.0.0.1:{p}\"]\n"
    );
    node.deploy("caller", CAPS, "/caller", &grants);
    let only_name = format!("  capabilities:\n    outbound: [\"http://localhost:{p}\"]\n");
    node.deploy("named", CAPS, "/named", &only_name);
    let any_host = format!("  capabilities:\n    outbound: [\"http://*:{p}\"]\n");
    node.deploy("any", CAPS, "/any", &any_host);
    node.deploy("nothing", CAPS, "/nothing", "");

    let ok = |path: &str| (200, format!("status 200: target saw {path}"));
    let denied = |hop: u32, url: &str| {
        (
            502,
            format!("error: http-request-denied (hop {hop}, {url})\n"),
        )
    };
    let o = other.port;
    let cases: Vec<(&str, String, (u16, String))> = vec![
        (
            "allowed address",
            format!("http://127.0.0.1:{p}/ok"),
            ok("/ok"),
        ),
        (
            "allowed name, resolving to a named address",
            format!("http://localhost:{p}/ok"),
            ok("/ok"),
        ),
        (
            "uppercase host",
            format!("http://LOCALHOST:{p}/up"),
            ok("/up"),
        ),
        (
            "other port",
            format!("http://127.0.0.1:{o}/"),
            denied(0, &format!("http://127.0.0.1:{o}/")),
        ),
        (
            "other scheme",
            format!("https://127.0.0.1:{p}/"),
            denied(0, &format!("https://127.0.0.1:{p}/")),
        ),
        (
            "other loopback address",
            format!("http://127.0.0.2:{p}/"),
            denied(0, &format!("http://127.0.0.2:{p}/")),
        ),
        (
            "userinfo trick",
            format!("http://127.0.0.1:{p}@127.0.0.2:{p}/"),
            denied(0, &format!("http://127.0.0.1:{p}@127.0.0.2:{p}/")),
        ),
        (
            "IPv6 loopback",
            format!("http://[::1]:{p}/"),
            denied(0, &format!("http://[::1]:{p}/")),
        ),
        (
            "IPv4-mapped IPv6",
            format!("http://[::ffff:127.0.0.1]:{p}/"),
            denied(0, &format!("http://[::ffff:127.0.0.1]:{p}/")),
        ),
        (
            "decimal IPv4",
            format!("http://2130706433:{p}/"),
            denied(0, &format!("http://2130706433:{p}/")),
        ),
        (
            "cloud metadata",
            "http://169.254.169.254/latest/meta-data".to_string(),
            denied(0, "http://169.254.169.254/latest/meta-data"),
        ),
        (
            "the node's own ingress",
            format!("http://127.0.0.1:{ingress_port}/caller"),
            denied(0, &format!("http://127.0.0.1:{ingress_port}/caller")),
        ),
        (
            "redirect to an allowed host",
            format!("http://127.0.0.1:{p}/redirect?to=http://localhost:{p}/after"),
            ok("/after"),
        ),
        (
            "redirect to a denied host",
            format!("http://127.0.0.1:{p}/redirect?to=http://127.0.0.2:{p}/after"),
            denied(1, &format!("http://127.0.0.2:{p}/after")),
        ),
    ];
    for (what, url, want) in &cases {
        assert_eq!(
            node.get(&format!("/caller/fetch?url={url}")),
            *want,
            "{what}: {url}"
        );
    }
    // Steering with the incoming Host header changes nothing: only the URL counts.
    let resp = http_client()
        .get(format!(
            "{}/caller/fetch?url=http://127.0.0.2:{p}/",
            node.http
        ))
        .header("host", format!("127.0.0.1:{p}"))
        .send()
        .unwrap();
    let got = (resp.status().as_u16(), resp.text().unwrap());
    assert_eq!(
        got,
        denied(0, &format!("http://127.0.0.2:{p}/")),
        "Host header steering"
    );
    // A name that resolves to loopback is refused unless the address itself is named, or
    // the entry names localhost (the loopback interface, never looked up).
    assert_eq!(
        node.get(&format!("/any/fetch?url=http://localhost:{p}/")),
        denied(0, &format!("http://localhost:{p}/"))
    );
    assert_eq!(
        node.get(&format!("/named/fetch?url=http://localhost:{p}/")),
        ok("/")
    );
    // No grant, no outbound at all.
    assert_eq!(
        node.get(&format!("/nothing/fetch?url=http://127.0.0.1:{p}/")),
        denied(0, &format!("http://127.0.0.1:{p}/"))
    );

    // The node's log has each denial, written before its answer (its reader may lag).
    node.stderr.wait_for(&format!(
        "outbound HTTP to http://127.0.0.2:{p}/ denied: http://127.0.0.2:{p} is not in spec.capabilities.outbound"
    ));
    node.stderr.wait_for(&format!(
        "outbound HTTP to http://localhost:{p}/ denied: localhost resolves to internal address"
    ));
    node.stderr
        .wait_for("denied: no outbound capability is granted (spec.capabilities.outbound is empty) app=app/nothing");
}

/// A guest that has every request denied fills its own log, not the node's: the node's log
/// takes ten of one app's events a minute, then says the rest are in the app's log.
#[test]
fn an_app_cannot_flood_the_nodes_log_with_its_denials() {
    let node = Node::start_warm(&[]);
    node.deploy("noisy", "tests/fixtures/caps.wasm", "/noisy", "");
    node.deploy("quiet", "tests/fixtures/caps.wasm", "/quiet", "");
    let denied = |app: &str, n: usize| {
        let url = format!("http://denied.example/{app}-{n}");
        let (status, body) = node.get(&format!("/{app}/fetch?url={url}"));
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("http-request-denied"), "{body}");
        format!("outbound HTTP to {url} denied:")
    };
    let lines: Vec<String> = (1..=30).map(|n| denied("noisy", n)).collect();
    // Another app's budget is its own; once its line is in, every earlier line is too.
    let last = denied("quiet", 1);
    node.stderr.wait_for(&last);
    let log = node.stderr.text();
    for (i, line) in lines.iter().enumerate() {
        let want = i < 10;
        assert_eq!(log.contains(line.as_str()), want, "{line}:\n{log}");
    }
    assert_eq!(
        log.matches("10 events within a minute: the rest of this minute's are in its own log only")
            .count(),
        1,
        "{log}"
    );
    let own = node.wait_for_log("noisy", &lines[29]);
    for line in &lines {
        assert!(own.contains(line.as_str()), "{line}:\n{own}");
    }
}

#[test]
fn keyvalue_buckets_are_granted_private_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_in(dir.path(), &[]);
    let grant = "  capabilities:\n    keyvalue: [default]\n";
    node.deploy("a", CAPS, "/a", grant);
    node.deploy("b", CAPS, "/b", grant);
    node.deploy("c", CAPS, "/c", "");

    assert_eq!(
        node.get("/a/kv/set?bucket=default&key=secret&value=abc"),
        (200, "set secret\n".into())
    );
    assert_eq!(
        node.get("/a/kv/get?bucket=default&key=secret"),
        (200, "value: abc\n".into())
    );
    // Same bucket name, other app: a different bucket.
    assert_eq!(
        node.get("/b/kv/get?bucket=default&key=secret"),
        (200, "no value\n".into())
    );
    assert_eq!(
        node.get("/a/kv/get?bucket=other&key=secret"),
        (403, "error: access-denied\n".into())
    );
    assert_eq!(
        node.get("/c/kv/get?bucket=default&key=secret"),
        (403, "error: access-denied\n".into())
    );
    assert_eq!(
        node.get("/a/kv/incr?bucket=default&key=n"),
        (200, "1\n".into())
    );
    assert_eq!(
        node.get("/a/kv/incr?bucket=default&key=n"),
        (200, "2\n".into())
    );
    node.stop();

    let node = Node::start_in(dir.path(), &[]);
    node.wait_ready("a");
    assert_eq!(
        node.get("/a/kv/get?bucket=default&key=secret"),
        (200, "value: abc\n".into())
    );
    assert_eq!(
        node.get("/a/kv/incr?bucket=default&key=n"),
        (200, "3\n".into())
    );
}

#[test]
fn an_apps_keyvalue_data_stays_within_the_nodes_quota() {
    let node = Node::start(&["--kv-quota", "100"]);
    node.deploy(
        "a",
        CAPS,
        "/a",
        "  capabilities:\n    keyvalue: [default]\n",
    );
    let value = "v".repeat(60);
    assert_eq!(
        node.get(&format!("/a/kv/set?bucket=default&key=one&value={value}")),
        (200, "set one\n".into())
    );
    let (status, body) = node.get(&format!("/a/kv/set?bucket=default&key=two&value={value}"));
    assert_ne!(status, 200);
    assert!(body.contains("over its quota of 100"), "{body}");
    assert_eq!(
        node.get("/a/kv/get?bucket=default&key=two"),
        (200, "no value\n".into())
    );
}

#[test]
fn config_and_isolation_between_requests() {
    let node = Node::start(&[]);
    node.deploy("a", CAPS, "/a", "  config: {greeting: hi there}\n");
    node.deploy("b", CAPS, "/b", "");
    assert_eq!(
        node.get("/a/config?key=greeting"),
        (200, "hi there\n".into())
    );
    assert_eq!(
        node.get("/a/config?key=missing"),
        (404, "no such key\n".into())
    );
    assert_eq!(
        node.get("/b/config?key=greeting"),
        (404, "no such key\n".into())
    );

    // A secret left in linear memory is gone for the next instance of the same app and for
    // every other app, although pooled memory slots are reused.
    for _ in 0..20 {
        assert_eq!(
            node.get("/a/canary/write?secret=s3cr3t"),
            (200, "wrote s3cr3t\n".into())
        );
        assert_eq!(node.get("/a/canary/read"), (200, "memory: []\n".into()));
        assert_eq!(node.get("/b/canary/read"), (200, "memory: []\n".into()));
    }
}

#[test]
fn static_files_are_shipped_by_digest_and_mounted_read_only() {
    let node = Node::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "hello file").unwrap();
    std::fs::write(site.join("css/site.css"), "h1{}").unwrap();
    let caps = crate::support::repo_path(CAPS);
    let manifest = dir.path().join("app.yaml");
    let yaml = |name: &str, path: &str, files: &str| {
        format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: {name}}}\nspec:\n  component: {caps}\n  routes: [{{path: {path}}}]\n{files}"
        )
    };
    std::fs::write(
        &manifest,
        yaml(
            "site",
            "/site",
            "  files: [{source: ./site, mount: /static}]\n",
        ),
    )
    .unwrap();
    assert_eq!(
        node.ok(&["apply", "-f", manifest.to_str().unwrap()]),
        "app/site created\n"
    );
    node.wait_ready("site");
    node.deploy("plain", CAPS, "/plain", "");

    let json: serde_json::Value =
        serde_json::from_str(&node.ok(&["get", "app", "site", "-o", "json"])).unwrap();
    assert!(
        json["spec"]["files"][0]["source"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{json}"
    );
    assert_eq!(
        node.get("/site/file?path=/static/index.html"),
        (200, "content: hello file (writable: no)\n".into())
    );
    assert_eq!(
        node.get("/site/file?path=/static/css/site.css"),
        (200, "content: h1{} (writable: no)\n".into())
    );
    for escape in [
        "/static/../etc/passwd",
        "/etc/passwd",
        "/static/../../etc/hostname",
    ] {
        assert_eq!(
            node.get(&format!("/site/file?path={escape}")),
            (404, format!("error: cannot open {escape}\n")),
            "{escape}"
        );
    }
    assert_eq!(
        node.get("/plain/file?path=/static/index.html"),
        (404, "error: cannot open /static/index.html\n".into()),
        "an app without files sees none"
    );

    // Symbolic links are refused when packing: nothing on the host can be reached through one.
    std::os::unix::fs::symlink("/etc", site.join("etc")).unwrap();
    std::fs::write(
        &manifest,
        yaml(
            "linked",
            "/linked",
            "  files: [{source: ./site, mount: /static}]\n",
        ),
    )
    .unwrap();
    let err = node.fails(&["apply", "-f", manifest.to_str().unwrap()], None);
    assert_eq!(
        err,
        format!(
            "error: app/linked: spec.files[0].source: {}/etc is a symbolic link; ship regular files and directories only\n",
            dir.path().join("./site").display()
        )
    );
    std::fs::write(
        &manifest,
        yaml(
            "bad",
            "/bad",
            "  files: [{source: ./site, mount: /static/../etc}]\n",
        ),
    )
    .unwrap();
    let err = node.fails(&["apply", "-f", manifest.to_str().unwrap()], None);
    assert!(err.ends_with("app/bad: spec.files[0].mount: '/static/../etc' must be a path like /static or a relative name like data, without '..' or empty segments\n"), "{err}");
}
