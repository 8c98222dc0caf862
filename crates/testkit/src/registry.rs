//! A real OCI registry: Debian's `docker-registry` (Distribution 2.8) on a free loopback port,
//! with its own config and storage in a temporary directory. (Installing the package also
//! starts a system copy on :5000; tests neither use nor disturb it.)

use crate::free_port;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Numbers the marker requests of [`Registry::requests`].
static MARKERS: AtomicU64 = AtomicU64::new(0);
use std::time::{Duration, Instant};

/// A registry process; killed on drop.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts an anonymous registry and waits until it serves.
    ///
    /// # Panics
    /// `docker-registry` is not installed, or does not start in 5 attempts.
    pub fn start() -> Registry {
        Self::launch(None)
    }

    /// Starts a registry that takes only `username`/`password` (htpasswd Basic auth; the
    /// bcrypt file made by `htpasswd`, from apache2-utils).
    ///
    /// # Panics
    /// `docker-registry` or `htpasswd` is not installed, or it does not start.
    pub fn start_with_login(username: &str, password: &str) -> Registry {
        Self::launch(Some((username, password)))
    }

    fn launch(login: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let auth = match login {
            None => String::new(),
            Some((user, pass)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot run htpasswd ({e}); install apache2-utils (scripts/test does)"
                        )
                    });
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).expect("htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: shoal-test\n    path: {}\n",
                    file.display()
                )
            }
        };
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                    dir.path().join("storage").display()
                ),
            )
            .expect("registry config");
            let mut child = match Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot run docker-registry ({e}); install it with `apt-get install docker-registry` (scripts/test does)"
                ),
            };
            // Its access log (stdout, combined log format): one line per request.
            let requests: Arc<Mutex<Vec<String>>> = Arc::default();
            let stdout = child.stdout.take().expect("piped");
            let seen = requests.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(request) = line.split('"').nth(1) {
                        let request = request.trim_end_matches(" HTTP/1.1").to_string();
                        seen.lock().expect("requests").push(request);
                    }
                }
            });
            let stderr = child.stderr.take().expect("piped");
            if crate::says_ready(stderr, "listening on")(Duration::from_secs(30)) {
                return Registry {
                    child: Some(child),
                    addr,
                    requests,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start in 5 attempts");
    }
}

impl Registry {
    /// Every request served so far, as `METHOD PATH` (e.g. `GET /v2/a/b/blobs/sha256:…`),
    /// without the marker requests this makes: it sends one of its own and waits until the
    /// access log shows it, so every request answered before is listed.
    ///
    /// # Panics
    /// The registry does not answer, or its log does not show the marker within 10 s.
    pub fn requests(&self) -> Vec<String> {
        use std::io::{Read, Write};
        let marker = format!("/v2/?marker={}", MARKERS.fetch_add(1, Ordering::Relaxed));
        let mut tcp = std::net::TcpStream::connect(&self.addr).expect("registry reachable");
        write!(
            tcp,
            "GET {marker} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("marker request");
        let _ = tcp.read_to_end(&mut Vec::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.requests.lock().expect("requests").clone();
            if seen.iter().any(|r| r.ends_with(&marker)) {
                return seen
                    .into_iter()
                    .filter(|r| !r.contains("/v2/?marker="))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "the registry's log never showed {marker}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
