//! TLS everywhere a client meets Shoal: the HTTPS ingress (HTTP/2 and HTTP/1.1 by ALPN, h2c on
//! the plain port, per-host certificates by SNI, certificates renewed under open connections,
//! plain HTTP redirected), the API that `shoal up` serves over HTTPS with no setup, and the CLI
//! refusing a server it does not trust. Clients are curl and the CLI, as a user's would be.

use crate::support::{Node, SHOAL, TlsStream, app_yaml, repo_path};
use shoal_tls::Ca;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

/// `curl ARGS`: exit code and stdout.
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn ca_of(node: &Node) -> String {
    node.data_dir
        .join("tls/ca.crt")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_https_ingress_speaks_http2_and_http1_and_the_plain_one_h2c() {
    let node = Node::start(&["--https", "127.0.0.1:0"]);
    node.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    let ca = ca_of(&node);
    let url = format!("{}/hello", node.https);
    let version = ["-w", "|%{http_version}"];

    let (code, out) = curl(&[&["--cacert", &ca, &url], &version[..]].concat());
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "Hello from C! You asked for /hello\n|2");
    let (_, out) = curl(&[&["--cacert", &ca, "--http1.1", &url], &version[..]].concat());
    assert_eq!(out, "Hello from C! You asked for /hello\n|1.1");
    // Trusting only the system's roots, curl refuses the certificate `shoal up` made.
    let (code, _) = curl(&[&url]);
    assert_eq!(code, 60, "curl trusted a certificate no root issued");

    let plain = format!("{}/hello", node.http);
    let (_, out) = curl(&[&["--http2-prior-knowledge", &plain], &version[..]].concat());
    assert_eq!(out, "Hello from C! You asked for /hello\n|2");
    // An HTTP/1.1 client offering an upgrade is simply answered in HTTP/1.1.
    let (_, out) = curl(&[&["--http2", &plain], &version[..]].concat());
    assert_eq!(out, "Hello from C! You asked for /hello\n|1.1");
}

#[test]
fn plain_http_can_be_redirected_to_https() {
    let node = Node::start(&["--https", "127.0.0.1:0", "--https-redirect"]);
    node.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    let port = node.https.rsplit(':').next().unwrap();
    let (_, out) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("{}/hello?x=1", node.http),
    ]);
    assert_eq!(out, format!("308 https://127.0.0.1:{port}/hello?x=1"));
    let (code, out) = curl(&[
        "-L",
        "--cacert",
        &ca_of(&node),
        &format!("{}/hello", node.http),
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Hello from C! You asked for /hello\n")
    );
}

/// Writes a certificate for `names` issued by `ca` to `dir/STEM.crt` and `.key`, each
/// replaced in one rename as cert-manager or certbot would.
fn write_pair(dir: &Path, stem: &str, ca: &Ca, names: &[&str]) -> (String, String) {
    let issued = ca
        .issue(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap();
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    for (path, text) in [(&key, &issued.key_pem), (&cert, &issued.cert_pem)] {
        let tmp = dir.join(".tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

/// One line (up to CRLF) read from `stream`.
fn line(stream: &mut TlsStream) -> String {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        bytes.push(byte[0]);
    }
    String::from_utf8(bytes).unwrap().trim_end().to_string()
}

/// One HTTP/1.1 request on `stream`, kept alive; the status line and body (of a fixed
/// length or chunked).
fn request(stream: &mut TlsStream, host: &str, path: &str) -> (String, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let status = line(stream);
    let mut length = None;
    loop {
        let header = line(stream).to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().unwrap());
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            stream.read_exact(&mut body).unwrap();
        }
        None => loop {
            let size = usize::from_str_radix(&line(stream), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        },
    }
    (status, String::from_utf8(body).unwrap())
}

/// The common name of the certificate the HTTPS ingress at `addr` presents for `host`.
fn presented_name(addr: &str, host: &str, ca: &Path) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-v", "-o", "/dev/null", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{}:127.0.0.1", port(addr))])
        .arg(format!("https://{host}:{}/", port(addr)))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    log.lines()
        .find_map(|l| l.split("subject: CN=").nth(1))
        .unwrap_or_else(|| panic!("no certificate subject in curl's log:\n{log}"))
        .trim()
        .to_string()
}

fn port(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

#[test]
fn each_host_gets_its_certificate_and_a_renewed_one_keeps_open_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::generate("test CA").unwrap();
    let (ca_pem, ca_key) = (ca.cert_pem(), ca.key_pem());
    let ca_file = tmp.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let hosts = tmp.path().join("hosts");
    std::fs::create_dir(&hosts).unwrap();
    let (cert, key) = write_pair(tmp.path(), "default", &ca, &["default.test", "127.0.0.1"]);
    write_pair(&hosts, "a", &ca, &["a.test"]);
    write_pair(&hosts, "wild", &ca, &["*.b.test"]);
    let hosts = hosts.to_str().unwrap().to_string();
    // The API presents the given certificate too.
    let mut node = Node::start(&[
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-cert-dir",
        &hosts,
    ]);
    node.ca = Some(ca_file.clone());
    let hello = repo_path("examples/hello-c/hello.wasm");
    node.apply(&app_yaml("a", &hello, "/", "      host: a.test\n"));
    node.apply(&app_yaml("b", &hello, "/", "      host: x.b.test\n"));
    node.wait_ready("a");
    node.wait_ready("b");

    assert_eq!(presented_name(&node.https, "a.test", &ca_file), "a.test");
    assert_eq!(
        presented_name(&node.https, "x.b.test", &ca_file),
        "*.b.test"
    );
    let resolve = |host: &str| format!("{host}:{}:127.0.0.1", port(&node.https));
    let ca = ca_file.to_str().unwrap();
    let (code, out) = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve("x.b.test"),
        &format!("https://x.b.test:{}/b", port(&node.https)),
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Hello from C! You asked for /b\n")
    );
    // A host no certificate covers gets the default one, which curl refuses for that name.
    let (code, _) = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve("c.test"),
        &format!("https://c.test:{}/", port(&node.https)),
    ]);
    assert_eq!(code, 60);

    // A connection kept open across a renewal is still answered.
    let mut open = {
        let addr = node.https.trim_start_matches("https://");
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let trust = shoal_tls::ClientTls::ca_file(&ca_file).unwrap();
        let name = shoal_tls::rustls::pki_types::ServerName::try_from("a.test").unwrap();
        let conn =
            shoal_tls::rustls::ClientConnection::new(std::sync::Arc::new(trust.config()), name)
                .unwrap();
        shoal_tls::rustls::StreamOwned::new(conn, tcp)
    };
    assert_eq!(request(&mut open, "a.test", "/one").0, "HTTP/1.1 200 OK");
    write_pair(
        Path::new(&hosts),
        "a",
        &Ca::from_pem(ca_pem, ca_key).unwrap(),
        &["renewed.a.test", "a.test"],
    );
    // The node looks at its files at most once a second; new handshakes get the renewed one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while presented_name(&node.https, "a.test", &ca_file) != "renewed.a.test" {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewal was never presented"
        );
    }
    let (status, body) = request(&mut open, "a.test", "/two");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "Hello from C! You asked for /two\n");
}

#[test]
fn the_cli_refuses_an_api_it_does_not_trust() {
    let node = Node::start(&[]);
    assert!(node.api.starts_with("https://"), "{}", node.api);
    let elsewhere = tempfile::tempdir().unwrap();
    let token = std::fs::read_to_string(node.data_dir.join("token")).unwrap();
    let cli = |ca: Option<&str>| {
        let mut cmd = Command::new(SHOAL);
        cmd.env("SHOAL_SERVER", &node.api)
            .env("SHOAL_DATA_DIR", elsewhere.path())
            .env("SHOAL_TOKEN", token.trim())
            .env_remove("SHOAL_CA")
            .args(["get", "apps"]);
        if let Some(ca) = ca {
            cmd.args(["--ca", ca]);
        }
        cmd.output().unwrap()
    };
    // Away from the data dir that holds the CA, the CLI trusts the system's roots only.
    let out = cli(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate") && err.contains("--ca"), "{err}");
    let out = cli(Some(&ca_of(&node)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A CA that did not issue the server's certificate is refused just the same.
    let other = Node::start(&[]);
    let out = cli(Some(&ca_of(&other)));
    assert!(!out.status.success());
    // Beside the node (its data dir), the CLI finds the CA itself.
    node.ok(&["get", "apps"]);
}

#[test]
fn a_cluster_runs_on_an_etcd_that_requires_client_certificates() {
    let etcd = shoal_testkit::Etcd::start_tls();
    let files = etcd.tls.clone().unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (ca, cert, key) = (
        path(&files.ca),
        path(&files.client_cert),
        path(&files.client_key),
    );
    let server = |dir: &tempfile::TempDir| {
        Node::spawn(
            &[
                "server",
                "--store",
                &etcd.url(),
                "--api",
                "127.0.0.1:0",
                "--etcd-ca",
                &ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                &key,
            ],
            dir.path(),
            &[],
            &["API:"],
        )
    };
    let (one, two) = (server(&dirs[0]), server(&dirs[1]));
    // Both servers' certificates come from the one cluster CA they keep in etcd.
    assert_eq!(
        std::fs::read(one.data_dir.join("tls/ca.crt")).unwrap(),
        std::fs::read(two.data_dir.join("tls/ca.crt")).unwrap()
    );
    let worker = crate::cluster::node(
        &[&one, &two],
        "n1",
        &crate::cluster::join_token(&one),
        &dirs[2],
    );
    crate::cluster::wait_phase(&one, "n1", shoal_api::NodePhase::Ready);
    one.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    assert_eq!(
        worker.get("/hello"),
        (200, "Hello from C! You asked for /hello\n".to_string())
    );
    // The upload to one server was copied to the other before it was acknowledged: peers
    // reach each other over HTTPS too.
    let copied = std::fs::read_dir(two.data_dir.join("blobs"))
        .unwrap()
        .count();
    assert!(copied > 0, "the other server holds no blob");
    // And the servers read the node's log (which asks for the node's credential).
    two.ok(&["logs", "hello"]);
}

#[test]
fn servers_and_nodes_reach_each_other_over_tls_with_each_nodes_own_certificate() {
    let etcd = shoal_testkit::Etcd::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let server = crate::cluster::server(&etcd, &dirs[0]);
    let token = crate::cluster::join_token(&server);
    let n1 = crate::cluster::node(&[&server], "n1", &token, &dirs[1]);
    let n2 = crate::cluster::node(&[&server], "n2", &token, &dirs[2]);
    crate::cluster::wait_phase(&server, "n1", shoal_api::NodePhase::Ready);
    crate::cluster::wait_phase(&server, "n2", shoal_api::NodePhase::Ready);
    server.deploy("hello", "examples/hello-c/hello.wasm", "/hello", "");
    let app: shoal_api::App =
        serde_json::from_str(&server.ok(&["get", "app", "hello", "-o", "json"])).unwrap();
    let holder = app.status.placement.unwrap().nodes[0].clone();
    let (held, other) = if holder == "n1" {
        (&n1, &n2)
    } else {
        (&n2, &n1)
    };

    // Each node's plain port answers TLS with a certificate for its own name, issued by the
    // cluster's CA, and for no other name.
    let ca = server.data_dir.join("tls/ca.crt");
    let name = format!("{holder}.nodes.shoal.internal");
    assert_eq!(presented_name(&held.http, &name, &ca), name);
    let impostor = if holder == "n1" { "n2" } else { "n1" };
    let (code, out) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &format!(
            "{impostor}.nodes.shoal.internal:{}:127.0.0.1",
            port(&held.http)
        ),
        &format!(
            "https://{impostor}.nodes.shoal.internal:{}/hello",
            port(&held.http)
        ),
    ]);
    assert_eq!(code, 60, "a node answered for another: {out}");

    // A request at the other node is forwarded over TLS; the server reads the log over TLS.
    assert_eq!(
        other.get("/hello"),
        (200, "Hello from C! You asked for /hello\n".to_string())
    );
    server.ok(&["logs", "hello"]);
    // The cluster's own requests are refused in the clear.
    let resp = crate::support::http_client()
        .get(format!("{}/hello", held.http))
        .header("shoal-forwarded", "1")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 421);
    let (status, _) = held.get("/.shoal/logs?scope=default&name=hello");
    assert_eq!(status, 421);
}
