//! The API does not trust the network: a client that sends half a request header, or stops
//! in the middle of a body, is cut off after `--api-client-timeout`, and connections beyond
//! `--api-max-connections` are closed on accept — tried against `shoal server` on a real
//! etcd, the way a stranger who can reach the port would.

use crate::support::Node;
use shoal_testkit::Etcd;
use std::io::{Read, Write};
use std::net::TcpStream;

fn server(etcd: &Etcd, dir: &tempfile::TempDir, extra: &[&str]) -> Node {
    let url = etcd.url();
    let mut args = vec!["server", "--store", &url, "--api", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Node::spawn(&args, dir.path(), &[], &["API:"])
}

/// A TCP connection to `api` (no TLS handshake), whose reads give up after 60 s.
fn connect(api: &str) -> TcpStream {
    let stream = TcpStream::connect(api.trim_start_matches("https://")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Whether the server closed `stream` (end of stream or reset) rather than leaving it open
/// past the read timeout; what it sent before is returned.
fn closed_by_server(stream: &mut impl Read) -> Result<String, String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&seen).into()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            // A reset, or (over TLS) a close without close_notify.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(String::from_utf8_lossy(&seen).into());
            }
            Err(e) => return Err(format!("still open after the read timeout: {e}")),
        }
    }
}

#[test]
fn slow_clients_are_cut_off_and_connections_are_bounded() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let api = server(&etcd, &dir, &["--api-client-timeout", "1s"]);
    let token = std::fs::read_to_string(api.data_dir.join("token")).unwrap();

    // A handshake never begun.
    let mut silent = connect(&api.api);
    closed_by_server(&mut silent).unwrap();

    // Half a request header.
    let mut half = api.api_stream();
    write!(half, "GET /v1/info HTTP/1.1\r\nHost: x\r\n").unwrap();
    closed_by_server(&mut half).unwrap();

    // A body that stops: the upload fails instead of waiting for the rest.
    let mut stalled = api.api_stream();
    write!(
        stalled,
        "POST /v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\nonly part",
        token.trim()
    )
    .unwrap();
    let answer = closed_by_server(&mut stalled).unwrap();
    assert!(!answer.starts_with("HTTP/1.1 201"), "{answer}");

    // The API still answers whoever sends a whole request.
    assert_eq!(api.ok(&["get", "nodes", "-o", "json"]).trim(), "[]");

    // At most --api-max-connections at once: one more is closed on accept.
    let dir = tempfile::tempdir().unwrap();
    let bounded = server(&etcd, &dir, &["--api-max-connections", "3"]);
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&bounded.api)).collect();
    let mut extra = connect(&bounded.api);
    write!(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = closed_by_server(&mut extra).unwrap();
    assert_eq!(answer, "", "a connection over the limit was served");
    drop(held);
}
