//! Prometheus metrics: what a node and its API serve, as promtool and a real Prometheus read
//! them.

use crate::support::{Node, http_client};
use shoal_testkit::Prometheus;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `promtool check metrics` on `text`: its complaints, if any.
fn promtool(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus; scripts/test does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The value of the sample `series` (name and labels exactly as written) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `url` until the sample `series` has `want` (the ingress counts a request once its
/// response is done, which may be just after the client has it), and returns that scrape.
fn scrape_until(client: &reqwest::blocking::Client, url: &str, series: &str, want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = client.get(url).send().unwrap();
        assert_eq!(resp.status(), 200, "GET {url}");
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let text = resp.text().unwrap();
        if sample(&text, series) == Some(want) || Instant::now() > deadline {
            assert_eq!(sample(&text, series), Some(want), "{series} in\n{text}");
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_counts_each_apps_requests_limits_and_denials_in_metrics_promtool_accepts() {
    let node = Node::start(&["--metrics", "127.0.0.1:0"]);
    assert!(
        node.metrics.starts_with("http://127.0.0.1:"),
        "{}",
        node.metrics
    );
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    let limits = "  limits: {cpu: 100ms, timeout: 5s}\n";
    node.deploy("bad", "tests/fixtures/misbehave.wasm", "/bad", limits);
    node.deploy("caps", "tests/fixtures/caps.wasm", "/caps", "");
    for _ in 0..5 {
        assert_eq!(node.get("/web").0, 200);
    }
    assert_eq!(node.get("/bad/loop").0, 500);
    assert_eq!(node.get("/bad/trap").0, 500);
    // No outbound grant: the fetch is refused by the capability.
    let (status, _) = node.get("/caps/fetch?url=http://127.0.0.1:1/");
    assert!(status >= 400, "{status}");

    let client = http_client();
    let web = "namespace=\"default\",app=\"web\"";
    let bad = "namespace=\"default\",app=\"bad\"";
    let caps = "namespace=\"default\",app=\"caps\"";
    let text = scrape_until(
        &client,
        &node.metrics,
        &format!("shoal_app_requests_total{{{bad},code=\"5xx\"}}"),
        2.0,
    );
    promtool(&text).unwrap();
    let text = scrape_until(
        &client,
        &node.metrics,
        &format!("shoal_app_requests_total{{{web},code=\"2xx\"}}"),
        5.0,
    );
    let expect = [
        (
            format!("shoal_app_request_duration_seconds_count{{{web}}}"),
            5.0,
        ),
        (
            format!("shoal_app_instances_total{{{web},how=\"created\"}}"),
            5.0,
        ),
        (format!("shoal_app_requests_in_flight{{{web}}}"), 0.0),
        (
            format!("shoal_app_limit_hits_total{{{bad},limit=\"cpu\"}}"),
            1.0,
        ),
        (
            format!("shoal_app_capability_denials_total{{{caps},capability=\"outbound\"}}"),
            1.0,
        ),
        ("shoal_node_apps".to_string(), 3.0),
    ];
    for (series, want) in &expect {
        assert_eq!(sample(&text, series), Some(*want), "{series} in\n{text}");
    }
    let sent = sample(&text, &format!("shoal_app_sent_bytes_total{{{web}}}")).unwrap();
    assert!(sent > 0.0, "{text}");
    for family in [
        "process_resident_memory_bytes ",
        "shoal_node_connections_accepted_total ",
        "shoal_node_compile_cache_hits_total ",
        "shoal_node_compile_duration_seconds_count ",
        "shoal_node_memory_slots_in_use{wasi=\"0.2\"} ",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }

    // The API of `shoal up` serves the same node families beside its own, without a token.
    let api = node.api_client();
    let text = scrape_until(
        &api,
        &format!("{}/metrics", node.api),
        &format!("shoal_app_requests_total{{{web},code=\"2xx\"}}"),
        5.0,
    );
    promtool(&text).unwrap();
    assert_eq!(sample(&text, "shoal_leader"), Some(1.0), "{text}");
    let applied = "shoal_api_requests_total{route=\"/v1/namespaces/{ns}/apps/{name}\",method=\"PUT\",code=\"201\"}";
    assert_eq!(sample(&text, applied), Some(3.0), "{text}");

    // An app deleted from the node leaves its series.
    node.ok(&["delete", "app", "bad"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = client.get(&node.metrics).send().unwrap().text().unwrap();
        if !text.contains("app=\"bad\"") {
            break;
        }
        assert!(Instant::now() < deadline, "app bad still in\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_real_prometheus_scrapes_a_node_and_answers_an_apps_request_rate() {
    let node = Node::start(&["--metrics", "127.0.0.1:0"]);
    node.deploy("web", "examples/hello-c/hello.wasm", "/web", "");
    let target = node
        .metrics
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let prometheus = Prometheus::start(&[target]);
    // Traffic while Prometheus scrapes every second, until its rate says so.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rate = loop {
        for _ in 0..20 {
            assert_eq!(node.get("/web").0, 200);
        }
        let found =
            prometheus.query("sum(rate(shoal_app_requests_total{app=\"web\",code=\"2xx\"}[10s]))");
        if let Some((_, rate)) = found.first()
            && *rate > 0.0
        {
            break *rate;
        }
        assert!(
            Instant::now() < deadline,
            "no request rate for app web from Prometheus: {found:?}; up: {:?}",
            prometheus.query("up")
        );
    };
    assert!(rate.is_finite(), "{rate}");
    let up = prometheus.query("up{job=\"shoal\"}");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].1, 1.0, "{up:?}");
}

#[test]
fn private_metrics_ask_for_an_admin_token() {
    let node = Node::start(&["--private-metrics"]);
    let url = format!("{}/metrics", node.api);
    let resp = node.api_client().get(&url).send().unwrap();
    assert_eq!(resp.status(), 401, "{:?}", resp.text());
    let token = std::fs::read_to_string(node.data_dir.join("token")).unwrap();
    let resp = node
        .api_client()
        .get(&url)
        .bearer_auth(token.trim())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    promtool(&resp.text().unwrap()).unwrap();
    let viewer = node.ok(&["create", "token", "--role", "view"]);
    let resp = node
        .api_client()
        .get(&url)
        .bearer_auth(viewer.trim())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403, "{:?}", resp.text());
}
