//! Hostile guests and hostile clients: each gets a clear refusal, and the node and its other
//! apps keep serving.

use crate::support::{Node, http_client};
use std::io::{Read, Write};
use std::net::TcpStream;

const BAD: &str = "tests/fixtures/misbehave.wasm";
const HELLO: &str = "examples/hello-c/hello.wasm";

#[test]
fn hostile_guests_hurt_only_themselves() {
    let node = Node::start(&["--max-response-body", "8Mi", "--max-request-body", "1Mi"]);
    node.deploy("hello", HELLO, "/hello", "");
    node.deploy(
        "bad",
        BAD,
        "/bad",
        "  limits: {cpu: 10s, timeout: 30s, memory: 16Mi}\n",
    );
    let neighbour_ok = || assert_eq!(node.get("/hello").0, 200);

    // C keeps its stack in linear memory: overflowing it is an out-of-bounds trap.
    assert_eq!(
        node.get("/bad/recurse"),
        (
            500,
            "app/bad: the component trapped: out of bounds memory access\n".into()
        )
    );
    neighbour_ok();

    // A 1 GiB response is cut off at the node's limit: the client sees a broken body.
    let resp = http_client()
        .get(format!("{}/bad/big?mb=1024", node.http))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.bytes().is_err(),
        "a response over --max-response-body must not complete"
    );
    node.stderr
        .wait_for("response body exceeded the node's limit");
    let small = http_client()
        .get(format!("{}/bad/big?mb=1", node.http))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(small.len(), 1 << 20);
    neighbour_ok();

    // Ten thousand headers: the host refuses to grow the fields past its cap, which ends the
    // request instead of the node's memory.
    assert_eq!(
        node.get("/bad/headers?n=10000"),
        (
            500,
            "app/bad: the component failed: total size of fields exceeds limit\n".into()
        )
    );
    assert_eq!(
        node.get("/bad/headers?n=10"),
        (200, "added 10 of 10 headers\n".into())
    );
    neighbour_ok();

    // 100 MB to stdout does not take the node down.
    assert_eq!(
        node.get("/bad/stdout?mb=100"),
        (200, "wrote 102400 KiB to stdout\n".into())
    );
    neighbour_ok();

    // Request bodies: within the limit, declared over it, and streamed over it.
    let post = |body: reqwest::blocking::Body| {
        let resp = http_client()
            .post(format!("{}/bad/readbody", node.http))
            .body(body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let half = vec![7u8; 512 << 10];
    assert_eq!(
        post(half.clone().into()),
        (200, "read 524288 bytes, then end of body\n".into())
    );
    // Raw sockets for the oversized bodies: the node answers before the client has finished
    // sending, and a client library reports that as a broken pipe instead of the answer.
    let addr = node.http.trim_start_matches("http://").to_string();
    let resp = raw_request(
        &addr,
        "POST /bad/readbody HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(
        resp.ends_with("the request body is larger than this node's limit of 1048576 bytes\n"),
        "{resp}"
    );
    // Chunked, so no length is declared: the guest's read fails once the limit is passed.
    let resp = chunked_post(&addr, "/bad/readbody", 2 << 20);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let text = resp
        .lines()
        .find(|l| l.starts_with("read "))
        .unwrap_or_default();
    assert!(text.ends_with("bytes, then read error"), "{resp}");
    let read: u64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(read <= 1 << 20, "{text}");
    neighbour_ok();
}

/// POSTs `total` bytes with chunked encoding from a second thread and returns the response.
#[test]
fn a_guest_cannot_make_the_host_copy_more_than_a_call_may_carry() {
    let node = Node::start(&[]);
    node.deploy("hello", HELLO, "/hello", "");
    node.deploy("bad", BAD, "/bad", "  limits: {memory: 16Mi}\n");
    assert_eq!(node.get("/hello").0, 200);
    assert_eq!(node.get("/bad/aliased?n=0").1, "the host took them all\n");
    let before = node.peak_memory();
    // 100,000 header values that all alias one 1 MiB buffer: 100 GB for a host that copies
    // the list before it checks it. The host stops counting at 16 MiB, before copying more.
    for _ in 0..3 {
        assert_eq!(
            node.get("/bad/aliased?n=100000"),
            (
                500,
                "app/bad: the component passed the host more than 16 MiB in one call\n".into()
            )
        );
        assert_eq!(node.get("/hello").0, 200, "the neighbour keeps answering");
    }
    let grown = node.peak_memory().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the node's peak memory grew by {grown} bytes"
    );
    let log = node.ok(&["logs", "bad"]);
    assert!(log.contains("more than 16 MiB in one call"), "{log}");
}

#[test]
fn a_client_slow_to_send_its_body_holds_none_of_its_apps_slots() {
    let node = Node::start(&[]);
    node.deploy(
        "one",
        BAD,
        "/one",
        "  limits: {concurrency: 1, timeout: 2s}\n",
    );
    let addr = node.http.trim_start_matches("http://").to_string();
    let head = "POST /one/readbody HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\n\r\nthe start";
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(head.as_bytes()).unwrap();
    // The app's one slot stays free while the body trickles in: every request is answered.
    for _ in 0..20 {
        assert_eq!(node.get("/one/count").0, 200);
    }
    // Once the body is there, the guest reads all of it.
    slow.write_all(&vec![b'x'; 100_000 - 9]).unwrap();
    let mut out = String::new();
    slow.read_to_string(&mut out).unwrap();
    assert!(out.contains("read 100000 bytes, then end of body"), "{out}");
    // A body that never comes is answered by the host once the app's timeout passed.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    stalled.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(
        out.contains("app/one: the request body did not arrive within the app's timeout (2s)"),
        "{out}"
    );
}

fn chunked_post(addr: &str, path: &str, total: usize) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![7u8; 64 << 10];
        for _ in 0..total / chunk.len() {
            // The node may stop reading once the limit is hit: write errors are expected.
            if writer
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .is_err()
                || writer.write_all(&chunk).is_err()
                || writer.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let _ = sender.join();
    String::from_utf8_lossy(&out).to_string()
}

fn raw_request(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn oversized_request_heads_are_refused() {
    let node = Node::start(&[]);
    node.deploy("hello", HELLO, "/hello", "");
    let addr = node.http.trim_start_matches("http://").to_string();
    let long_path = format!("/hello/{}", "a".repeat(9000));
    let resp = raw_request(
        &addr,
        &format!("GET {long_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(resp.starts_with("HTTP/1.1 414"), "{resp}");
    assert!(resp.ends_with("this node accepts at most 8192\n"), "{resp}");
    let big_header = "b".repeat(100 << 10);
    let resp = raw_request(
        &addr,
        &format!(
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: {big_header}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    assert_eq!(node.get("/hello").0, 200);
}

#[test]
fn slow_and_excess_clients_are_cut_off() {
    let node = Node::start(&["--client-timeout", "1s", "--max-connections", "2"]);
    node.deploy("hello", HELLO, "/hello", "");
    let addr = node.http.trim_start_matches("http://").to_string();

    // Slowloris: half a request head, then nothing. The node closes the connection.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let closed = slow.read_to_end(&mut buf);
    assert!(
        closed.is_ok(),
        "the node should close the connection, not leave it hanging: {closed:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // Two open keep-alive connections fill the limit; a third is closed on accept. (The
    // slow connection's slot is freed just after the client saw it closed: a connection made
    // in that instant is itself closed, and is made again.)
    let keep = || loop {
        let mut s = TcpStream::connect(&addr).unwrap();
        let _ = s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut head = [0u8; 256];
        if let Ok(n) = s.read(&mut head)
            && head[..n].starts_with(b"HTTP/1.1 200")
        {
            return s;
        }
    };
    let a = keep();
    let b = keep();
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let _ = c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "a connection over the limit was served: {}",
        String::from_utf8_lossy(&rest)
    );
    drop((a, b));
}

#[test]
fn a_guest_reading_a_big_body_slowly_is_bounded_by_its_timeout() {
    let node = Node::start(&[]);
    node.deploy("hello", HELLO, "/hello", "");
    node.deploy("slow", BAD, "/slow", "  limits: {timeout: 1s}\n");
    let addr = node.http.trim_start_matches("http://").to_string();
    // 8 MiB read 64 KiB at a time with 100 ms pauses would take 12.8 s.
    let resp = chunked_post(&addr, "/slow/readbody?slow=100", 8 << 20);
    assert!(resp.starts_with("HTTP/1.1 504"), "{resp}");
    assert!(
        resp.ends_with(
            "app/slow did not respond within its timeout (1s); raise spec.limits.timeout\n"
        ),
        "{resp}"
    );
    assert_eq!(node.get("/hello").0, 200);
}

#[test]
fn a_busy_guest_that_blocks_does_not_hold_back_other_busy_guests() {
    // Two ingress threads leave one thread for busy guests.
    let node = Node::start(&["--workers", "2"]);
    node.deploy(
        "holder",
        BAD,
        "/holder",
        "  limits: {concurrency: 3, timeout: 60s}\n",
    );
    node.deploy(
        "worker",
        BAD,
        "/worker",
        "  limits: {cpu: 300ms, timeout: 20s}\n",
    );
    // Three requests compute for about 20 ms (around when a request moves to the busy lane),
    // then wait 30 s in the host. Each retries until admitted: the probe below may hold one of
    // the three permits for an instant.
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("{}/holder/spin-sleep?ms=30000", node.http);
            std::thread::spawn(
                move || {
                    while http_client().get(&url).send().unwrap().status() == 503 {}
                },
            )
        })
        .collect();
    while node.get("/holder/quick").0 != 503 {
        assert!(
            !holders.iter().any(|h| h.is_finished()),
            "a holder finished before all three were in flight"
        );
    }
    // A guest blocked in the host holds no thread: the worker computes until its CPU limit
    // (a 500), instead of queueing behind the sleepers until its wall timeout (a 504).
    assert_eq!(
        node.get("/worker/loop"),
        (
            500,
            "app/worker exceeded its CPU limit (300ms) for this request; raise spec.limits.cpu\n"
                .into()
        )
    );
}
