//! A running `shoal up` and helpers to drive it like a user would.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// Absolute path of a file in the repository.
pub fn repo_path(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Text written by a child process, readable while it runs.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<String>, Condvar)>);

impl Log {
    fn follow(self, stream: impl std::io::Read + Send + 'static) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let (text, cv) = &*self.0;
                let mut text = text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                cv.notify_all();
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().clone()
    }

    /// Blocks until the log contains `needle` (woken by each new line), or panics after 120 s.
    pub fn wait_for(&self, needle: &str) {
        let (text, cv) = &*self.0;
        let guard = text.lock().unwrap();
        let (guard, timeout) = cv
            .wait_timeout_while(guard, Duration::from_secs(120), |t| !t.contains(needle))
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "log never contained {needle:?}; log:\n{}",
            *guard
        );
    }
}

/// A TLS connection written and read as a plain one.
pub type TlsStream =
    shoal_tls::rustls::StreamOwned<shoal_tls::rustls::ClientConnection, std::net::TcpStream>;

/// A `shoal up` process with its own data dir.
pub struct Node {
    child: Option<Child>,
    pub api: String,
    pub http: String,
    /// The HTTPS ingress, if it printed one (`https:`).
    pub https: String,
    /// Where it serves Prometheus metrics, if it printed it (`metrics:`).
    pub metrics: String,
    /// The CA the CLI trusts the API by, when not the one the node made in its data dir.
    pub ca: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub stderr: Log,
    _tmp: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a node in a fresh data dir.
    pub fn start(extra: &[&str]) -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let mut node = Node::start_in(tmp.path(), extra);
        node._tmp = Some(tmp);
        node
    }

    /// Starts a node in a fresh data dir whose compile cache is shared with the other warm
    /// nodes of this test run: each component compiles once per run, not once per test. For
    /// tests that are not about compiling (the big Python and Spin guests take tens of
    /// seconds each in a debug build).
    pub fn start_warm(extra: &[&str]) -> Node {
        let tmp = tempfile::tempdir().unwrap();
        share_compiled(tmp.path());
        let mut node = Node::start_in(tmp.path(), extra);
        node._tmp = Some(tmp);
        node
    }

    /// [`Node::start_in`], with the compile cache of [`Node::start_warm`].
    pub fn start_warm_in(data_dir: &Path, extra: &[&str]) -> Node {
        share_compiled(data_dir);
        Node::start_in(data_dir, extra)
    }

    /// Starts a node on `data_dir` (which may hold state from an earlier node).
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Node {
        let mut args = vec![
            "up",
            "--api",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--max-instances",
            "64",
        ];
        args.extend_from_slice(extra);
        let ready: &[&str] = match extra.contains(&"--https") {
            true => &["API:", "ingress:", "https:", "metrics:"],
            false => &["API:", "ingress:", "metrics:"],
        };
        Node::spawn(&args, data_dir, &[], ready)
    }

    /// Starts `shoal ARGS --data-dir DATA_DIR` with `env`, and waits until it printed a line
    /// starting with each of `ready` (`API:` and `ingress:` fill in `api` and `http`).
    pub fn spawn(args: &[&str], data_dir: &Path, env: &[(&str, &str)], ready: &[&str]) -> Node {
        Node::spawn_under(&[], args, data_dir, env, ready)
    }

    /// [`Node::spawn`] through `wrapper` (a program that execs its arguments, such as
    /// `prlimit --nofile=256: --`), so the process is still the node's.
    pub fn spawn_under(
        wrapper: &[&str],
        args: &[&str],
        data_dir: &Path,
        env: &[(&str, &str)],
        ready: &[&str],
    ) -> Node {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(SHOAL);
                cmd
            }
            None => Command::new(SHOAL),
        };
        let mut child = cmd
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .envs(env.iter().copied())
            .env("SHOAL_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shoal binary runs");
        let stderr = Log::default();
        stderr.clone().follow(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut api, mut http, mut https) = (String::new(), String::new(), String::new());
        let mut metrics = String::new();
        let mut seen = Vec::new();
        let mut line = String::new();
        while !ready.iter().all(|r| seen.contains(r)) {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "shoal {args:?} exited before it was ready; stderr:\n{}",
                    stderr.text()
                );
            }
            let trimmed = line.trim();
            if let Some(r) = ready.iter().find(|r| trimmed.starts_with(**r)) {
                seen.push(*r);
            }
            if let Some(a) = trimmed.strip_prefix("API:") {
                api = a.trim().to_string();
            }
            if let Some(h) = trimmed.strip_prefix("ingress:") {
                http = h.trim().to_string();
            }
            if let Some(h) = trimmed.strip_prefix("https:") {
                https = h.trim().to_string();
            }
            if let Some(m) = trimmed.strip_prefix("metrics:") {
                metrics = m.trim().to_string();
            }
        }
        Log::default().follow(stdout.into_inner());
        Node {
            child: Some(child),
            api,
            http,
            https,
            metrics,
            ca: None,
            data_dir: data_dir.to_path_buf(),
            stderr,
            _tmp: None,
        }
    }

    /// What trusts this node's (or server's) API: the CA it made in its data dir.
    pub fn trust(&self) -> shoal_tls::ClientTls {
        shoal_tls::ClientTls::ca_file(&self.data_dir.join("tls").join("ca.crt")).unwrap()
    }

    /// An HTTP client for this node's API (and its plain ingress).
    pub fn api_client(&self) -> reqwest::blocking::Client {
        client_trusting(&self.trust())
    }

    /// A TLS connection to the API, for a test that writes raw HTTP on it.
    pub fn api_stream(&self) -> TlsStream {
        let addr = self.api.trim_start_matches("https://");
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let name = shoal_tls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = shoal_tls::rustls::ClientConnection::new(Arc::new(self.trust().config()), name)
            .unwrap();
        shoal_tls::rustls::StreamOwned::new(conn, tcp)
    }

    /// The CLI pointed at this node (token found through the data dir, as on a user's machine).
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(SHOAL);
        cmd.env("SHOAL_SERVER", &self.api)
            .env("SHOAL_DATA_DIR", &self.data_dir)
            .env_remove("SHOAL_TOKEN")
            .env_remove("SHOAL_CA");
        if let Some(ca) = &self.ca {
            cmd.env("SHOAL_CA", ca);
        }
        cmd
    }

    /// Runs the CLI with `args` and `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .cli()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "shoal {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "shoal {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `shoal apply -f -` with `yaml` on stdin; returns stdout.
    pub fn apply(&self, yaml: &str) -> String {
        let out = self.run(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Applies an App whose component is a repository file, and waits until it is Ready.
    pub fn deploy(&self, name: &str, component: &str, path: &str, extra_spec: &str) {
        self.apply(&app_yaml(name, &repo_path(component), path, extra_spec));
        self.wait_ready(name);
    }

    /// Waits (with `shoal wait`) until app `name`'s latest generation is Ready.
    pub fn wait_ready(&self, name: &str) {
        self.ok(&["wait", "app", name, "--timeout", "120s"]);
    }

    /// GET on the ingress: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = http_client()
            .get(format!("{}{path}", self.http))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    /// Polls app (or job) `name`'s log until it holds `needle`, and returns the log. Every
    /// caller waits for a line that comes within seconds, or never.
    pub fn wait_for_log(&self, name: &str, needle: &str) -> String {
        self.wait_for_log_any(name, &[needle])
    }

    /// [`Node::wait_for_log`] for a log that will hold one of `needles`.
    pub fn wait_for_log_any(&self, name: &str, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.ok(&["logs", name]);
            if needles.iter().any(|n| log.contains(n)) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "none of {needles:?} came in:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends GET `path` from another thread and returns once it is in flight: the app must have
    /// `concurrency: 1`, and a quick GET of `probe` on the same app being shed (503) shows that
    /// `path` holds the only slot. The handle yields the request's status and body.
    pub fn hold_only_slot(
        &self,
        path: &str,
        probe: &str,
    ) -> std::thread::JoinHandle<(u16, String)> {
        let url = format!("{}{path}", self.http);
        let in_flight = std::thread::spawn(move || {
            // The probes may hold the slot for an instant: retry until admitted.
            loop {
                let resp = http_client().get(&url).send().unwrap();
                if resp.status().as_u16() != 503 {
                    return (resp.status().as_u16(), resp.text().unwrap());
                }
            }
        });
        while self.get(probe).0 != 503 {
            assert!(!in_flight.is_finished(), "never observed {path} in flight");
        }
        in_flight
    }

    /// The process's `/proc/PID/NAME` file (`status`, `limits`, ...).
    pub fn proc_file(&self, name: &str) -> String {
        let pid = self.child.as_ref().unwrap().id();
        std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap()
    }

    /// The most memory the process has held resident so far (`VmHWM`), in bytes.
    pub fn peak_memory(&self) -> u64 {
        let status = self.proc_file("status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib << 10
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let _ = child.wait();
    }

    /// Stops the node with SIGINT, as Ctrl-C would, and waits for it to exit cleanly.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(
            exit.success(),
            "shoal up exited with {exit}; stderr:\n{}",
            self.stderr.text()
        );
        self.stderr.text()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Makes `data_dir`'s compile cache the one warm nodes share (`target/tmp/compiled`): entries
/// are named by the component's digest and the engine's compatibility hash and written by
/// rename, so nodes of one build share them safely.
fn share_compiled(data_dir: &Path) {
    let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled");
    std::fs::create_dir_all(&shared).unwrap();
    let link = data_dir.join("compiled");
    if !link.exists() {
        std::os::unix::fs::symlink(&shared, &link).unwrap();
    }
}

/// An HTTP client that never uses a proxy (HTTPS: the system's roots).
pub fn http_client() -> reqwest::blocking::Client {
    client_trusting(&shoal_tls::ClientTls::system())
}

/// An HTTP client that never uses a proxy and verifies HTTPS servers as `tls` says.
pub fn client_trusting(tls: &shoal_tls::ClientTls) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls.config())
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A client reaching cluster node `name` over TLS, as servers and other nodes do: at its
/// plain ingress address `http`, by its TLS name, verified by the cluster CA of `server`;
/// and that name's URL.
pub fn node_over_tls(server: &Node, name: &str, http: &str) -> (reqwest::blocking::Client, String) {
    let tls = shoal_tls::ClientTls::ca_file(&server.data_dir.join("tls/ca.crt")).unwrap();
    let host = shoal_tls::node_server_name(name);
    let addr: std::net::SocketAddr = http.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls.config())
        .no_proxy()
        .resolve(&host, addr)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    (client, format!("https://{host}:{}", addr.port()))
}

/// A manifest for one App.
pub fn app_yaml(name: &str, component: &str, path: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: shoal/v1alpha1\nkind: App\nmetadata:\n  name: {name}\nspec:\n  component: {component}\n  routes:\n    - path: {path}\n{extra_spec}"
    )
}

/// A Job running the job fixture (`tests/fixtures/src/job.c`) with `args`; `extra_spec` lines
/// are indented by two spaces.
pub fn job_yaml(name: &str, component: &str, args: &[&str], extra_spec: &str) -> String {
    format!(
        "apiVersion: shoal/v1alpha1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  component: {}\n  args: {}\n{extra_spec}",
        repo_path(component),
        serde_json::to_string(args).unwrap()
    )
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 standing in for the outside world:
/// `/redirect?to=URL` answers 302 to URL; any other path answers 200 `target saw PATH`.
pub struct Target {
    pub port: u16,
}

impl Target {
    pub fn start() -> Target {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_string();
                    let response = match path.split_once("/redirect?to=") {
                        Some((_, to)) => format!(
                            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        ),
                        None => {
                            let body = format!("target saw {path}");
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                        }
                    };
                    let _ = stream.write_all(response.as_bytes());
                });
            }
        });
        Target { port }
    }
}
