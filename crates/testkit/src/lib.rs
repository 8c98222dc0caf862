//! Test support shared by the crates' tests and the end-to-end tests: a real etcd server, a
//! real OCI registry ([`Registry`]) and a real Prometheus ([`Prometheus`]).
//!
//! etcd cannot serve its HTTP gateway on port 0 (the gateway dials the configured address), so
//! [`Etcd::start`] picks free loopback ports, starts `etcd` on them and retries with new ones if
//! another process took a port meanwhile. `scripts/test` installs etcd (Debian's etcd-server).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod prometheus;
mod registry;
pub use prometheus::Prometheus;
pub use registry::Registry;

/// A single-member etcd cluster in a temporary directory; killed on drop.
pub struct Etcd {
    child: Option<Child>,
    /// `HOST:PORT` of its client endpoint.
    pub addr: String,
    peer: String,
    data: std::path::PathBuf,
    /// With [`Etcd::start_tls`]: the certificates it serves and trusts.
    pub tls: Option<EtcdTls>,
    _dir: Option<tempfile::TempDir>,
}

/// The files of an etcd that serves its clients over TLS and requires a client certificate
/// (`--client-cert-auth`), all issued by one CA made for it.
#[derive(Clone)]
pub struct EtcdTls {
    /// The CA certificate: what etcd's certificate is issued by, and what it trusts clients by.
    pub ca: PathBuf,
    /// A client certificate etcd accepts.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl EtcdTls {
    /// A CA and certificates for etcd on loopback and for its clients, in `dir`.
    fn make(dir: &Path) -> EtcdTls {
        let ca = shoal_tls::Ca::generate("test etcd CA").expect("a CA");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("certificate file");
            path
        };
        let names = ["127.0.0.1".to_string(), "localhost".to_string()];
        let server = ca.issue(&names).expect("a server certificate");
        let client = ca
            .issue(&["shoal".to_string()])
            .expect("a client certificate");
        EtcdTls {
            ca: write("ca.crt", ca.cert_pem()),
            server_cert: write("server.crt", &server.cert_pem),
            server_key: write("server.key", &server.key_pem),
            client_cert: write("client.crt", &client.cert_pem),
            client_key: write("client.key", &client.key_pem),
        }
    }
}

/// Reads a starting server's log `stream` on a thread of its own; the returned call waits up to
/// a timeout for a line holding `ready` (true), or for one saying its address is taken, or the
/// end of the log (false: start it again on other ports).
fn says_ready(
    stream: impl std::io::Read + Send + 'static,
    ready: &'static str,
) -> impl FnOnce(Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if line.contains(ready) {
                let _ = tx.send(true);
            }
            if line.contains("address already in use") {
                let _ = tx.send(false);
            }
        }
        let _ = tx.send(false);
    });
    move |within| matches!(rx.recv_timeout(within), Ok(true))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Etcd {
    /// Starts etcd and waits until it serves.
    ///
    /// # Panics
    /// etcd is not installed, or does not start in 5 attempts.
    pub fn start() -> Etcd {
        Self::start_with(false)
    }

    /// Starts etcd serving its clients over TLS only, requiring a client certificate issued
    /// by its CA (see [`Etcd::tls`]), and waits until it serves.
    ///
    /// # Panics
    /// As [`Etcd::start`].
    pub fn start_tls() -> Etcd {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let certs = tls.then(|| EtcdTls::make(dir.path()));
        for _ in 0..5 {
            let mut etcd = Etcd {
                child: None,
                addr: format!("127.0.0.1:{}", free_port()),
                peer: format!("127.0.0.1:{}", free_port()),
                data: data.clone(),
                tls: certs.clone(),
                _dir: None,
            };
            if etcd.spawn() {
                etcd._dir = Some(dir);
                return etcd;
            }
            drop(etcd);
            let _ = std::fs::remove_dir_all(&data);
        }
        panic!("etcd did not start in 5 attempts");
    }

    /// Starts the process on this instance's ports and data; true once it serves.
    fn spawn(&mut self) -> bool {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let (client, peer) = (
            format!("{scheme}://{}", self.addr),
            format!("http://{}", self.peer),
        );
        let mut command = Command::new("etcd");
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let mut child = match command
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--name", "test"])
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot run etcd ({e}); install it with `apt-get install etcd-server` (scripts/test does)"
            ),
        };
        let stderr = child.stderr.take().expect("piped");
        let ready = says_ready(stderr, "ready to serve client requests");
        self.child = Some(child);
        ready(Duration::from_secs(30))
    }

    /// `etcd://HOST:PORT`, as `shoal server --store` takes it.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.addr)
    }

    /// Kills etcd (SIGKILL); [`Etcd::restart`] brings it back with its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data.
    ///
    /// # Panics
    /// It does not come back.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "etcd did not restart on {}", self.addr);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
