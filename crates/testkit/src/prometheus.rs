//! A real Prometheus (Debian's `prometheus`, 2.x) on a free loopback port, scraping the
//! targets a test names every second, with its own config and storage in a temporary
//! directory. (Installing the package also starts a system copy on :9090; tests neither use
//! nor disturb it.)

use crate::free_port;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Prometheus process; killed on drop.
pub struct Prometheus {
    child: Option<Child>,
    /// `127.0.0.1:PORT` of its web API.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`HOST:PORT`, plain HTTP, `/metrics`) every
    /// second, and waits until it serves queries.
    ///
    /// # Panics
    /// `prometheus` is not installed, or does not start in 5 attempts.
    pub fn start(targets: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shoal\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("prometheus config");
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let mut child = match Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot run prometheus ({e}); install it with `apt-get install prometheus` (scripts/test does)"
                ),
            };
            let stderr = child.stderr.take().expect("piped");
            let ready = "Server is ready to receive web requests";
            if crate::says_ready(stderr, ready)(Duration::from_secs(60)) {
                return Prometheus {
                    child: Some(child),
                    addr,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not start in 5 attempts");
    }

    /// The samples of the instant query `promql` now, as (labels, value): Prometheus's own
    /// answer through its HTTP API (`/api/v1/query`).
    ///
    /// # Panics
    /// Prometheus does not answer, or answers with an error (a malformed query).
    pub fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", promql)
            .finish();
        let mut tcp = std::net::TcpStream::connect(&self.addr).expect("prometheus reachable");
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        write!(
            tcp,
            "GET /api/v1/query?{query} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        )
        .expect("request sent");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).expect("answer read");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let json: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("prometheus answered {answer:?}: {e}"));
        assert_eq!(json["status"], "success", "prometheus answered {json}");
        json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|sample| {
                let value = sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                (sample["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
