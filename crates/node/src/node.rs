//! Assembling a node: its runtime, capabilities, agent, job controller, registration and
//! ingress (and in a cluster its forwarder), for one [`Topology`].
//!
//! ```no_run
//! # async fn f(objects: shoal_store::Objects, blobs: shoal_blobs::BlobStore) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = shoal_node::ingress::bind("127.0.0.1:0".parse()?)?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let node = shoal_node::Node::builder("local", "/tmp/shoal".as_ref(), shoal_node::Topology::Single { objects, blobs })
//!     .max_instances(1000)
//!     .start(listener, shutdown.clone())
//!     .await?;
//! println!("ingress on {}", node.http());
//! shutdown.cancel();
//! node.join().await?;
//! # Ok(()) }
//! ```

use crate::agent::{Agent, AgentConfig, AgentParts};
use crate::cluster::Servers;
use crate::forward::{ClusterIngress, Forwarder};
use crate::jobs::{Clock, JobController, NodeRunner};
use crate::metrics::NodeMetrics;
use crate::register::LeaseKeeper;
use crate::{IngressLimits, RouteTable, ingress};
use arc_swap::ArcSwap;
use shoal_api::NodeSpec;
use shoal_blobs::{BlobStore, Blobs};
use shoal_capabilities::Capabilities;
use shoal_capabilities::keyvalue::KvLimits;
use shoal_capabilities::sqlite::SqliteLimits;
use shoal_logs::LogDir;
use shoal_runtime::{Runtime, RuntimeConfig};
use shoal_store::Objects;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How a node reaches the state it serves.
pub enum Topology {
    /// `shoal up`: the one node, on the embedded store beside its API. It serves every app,
    /// runs every job, and before its API answers resets Apps its previous run left Ready
    /// (see [`Agent::mark_unloaded`]).
    Single {
        /// The embedded store.
        objects: Objects,
        /// Where the API stores uploads.
        blobs: BlobStore,
    },
    /// A node of a cluster: it reaches the state only through the servers (never etcd),
    /// fetches blobs from them (verified), keeps its liveness lease through them, serves the
    /// apps placed on it, runs the jobs assigned to it, forwards requests for apps held
    /// elsewhere, and shows the servers its logs.
    Cluster {
        /// The servers' base URLs, tried in turn.
        servers: Vec<String>,
        /// This node's credential (`node.NAME.SECRET`, see `shoal node`).
        token: String,
        /// How the servers are verified over HTTPS.
        tls: shoal_tls::ClientTls,
    },
}

/// Why a node cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A directory under the data dir cannot be made.
    #[error("cannot open {what} in {}: {source}", dir.display())]
    Dir {
        /// What it is for.
        what: &'static str,
        /// Where.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The capabilities' resources cannot be opened.
    #[error("{0}")]
    Capabilities(#[from] shoal_capabilities::OpenError),
    /// The WebAssembly runtime cannot start.
    #[error("cannot start the WebAssembly runtime: {0:#}")]
    Runtime(anyhow::Error),
    /// The store cannot be read.
    #[error("cannot read the store: {0}")]
    Store(#[from] shoal_store::StoreError),
    /// The ingress listener has no address.
    #[error("the ingress listener has no address: {0}")]
    Listener(std::io::Error),
    /// The servers would not certify this node's key.
    #[error("cannot get this node's certificate from the servers: {0}")]
    Identity(String),
}

/// A node being put together; see [`Node::builder`].
pub struct Builder {
    name: String,
    data_dir: PathBuf,
    topology: Topology,
    max_instances: u32,
    keep_resident: u64,
    workers: Option<usize>,
    limits: IngressLimits,
    log_budget: u64,
    labels: BTreeMap<String, String>,
    capacity_memory: Option<u64>,
    sqlite: SqliteLimits,
    keyvalue: KvLimits,
    compile_limits: Option<shoal_runtime::compiler::CompileLimits>,
    https: Option<(std::net::TcpListener, Arc<shoal_tls::rustls::ServerConfig>)>,
    redirect_to_https: bool,
    metrics: Option<std::net::TcpListener>,
}

/// A running node: its tasks, and where its ingress listens.
pub struct Node {
    http: SocketAddr,
    https: Option<SocketAddr>,
    logs: LogDir,
    metrics: Arc<NodeMetrics>,
    metrics_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    ingress: JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// A node called `name` keeping its local state (compile cache, logs, key-value file,
    /// unpacked trees, fetched blobs) in `data_dir`.
    pub fn builder(name: &str, data_dir: &Path, topology: Topology) -> Builder {
        Builder {
            name: name.to_string(),
            data_dir: data_dir.to_path_buf(),
            topology,
            max_instances: 1000,
            keep_resident: 64 << 20,
            workers: None,
            limits: IngressLimits::default(),
            log_budget: 8 << 20,
            labels: BTreeMap::new(),
            capacity_memory: None,
            sqlite: SqliteLimits::default(),
            keyvalue: KvLimits::default(),
            compile_limits: None,
            https: None,
            redirect_to_https: false,
            metrics: None,
        }
    }

    /// The ingress address.
    pub fn http(&self) -> SocketAddr {
        self.http
    }

    /// The HTTPS ingress address, if it has one.
    pub fn https(&self) -> Option<SocketAddr> {
        self.https
    }

    /// The logs it writes (the API of `shoal up` serves them).
    pub fn logs(&self) -> &LogDir {
        &self.logs
    }

    /// What it measures (the API of `shoal up` serves it at `/metrics`).
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// Where it serves `GET /metrics`, if it was given a listener for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Waits until every part stopped (after the shutdown signal).
    ///
    /// # Errors
    /// A part panicked, or the ingress failed.
    pub async fn join(self) -> std::io::Result<()> {
        for task in self.tasks {
            task.await.map_err(std::io::Error::other)?;
        }
        let ingress = self.ingress.await.map_err(std::io::Error::other)?;
        // What the apps wrote last is on disk before the process exits.
        self.logs.flush();
        ingress
    }
}

impl Builder {
    /// The default of [`Builder::keep_resident`], as a quantity (see
    /// `shoal_runtime::RuntimeConfig::DEFAULT_KEEP_RESIDENT` for why).
    pub const DEFAULT_KEEP_RESIDENT: &str = RuntimeConfig::DEFAULT_KEEP_RESIDENT;

    /// Instances that may exist at once (sizes the pooling allocator); default 1000.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// Bytes of linear memory a warm pool slot keeps mapped; default 64 MiB.
    pub fn keep_resident(mut self, bytes: u64) -> Self {
        self.keep_resident = bytes;
        self
    }

    /// Ingress threads (each with its own runtime and socket); default one per core.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// What the ingress bounds on every request.
    pub fn ingress_limits(mut self, limits: IngressLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Disk each app's log (and each job run's) may use; default 8 MiB.
    pub fn log_budget(mut self, bytes: u64) -> Self {
        self.log_budget = bytes;
        self
    }

    /// The node's labels, for placement.
    pub fn labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// Largest SQLite database an app may grow; default 1 GiB.
    pub fn sqlite_max_size(mut self, bytes: u64) -> Self {
        self.sqlite.max_bytes = bytes;
        self
    }

    /// Compiles components in child processes within `limits` (default: in this process,
    /// unbounded).
    pub fn compile_limits(mut self, limits: shoal_runtime::compiler::CompileLimits) -> Self {
        self.compile_limits = Some(limits);
        self
    }

    /// Most bytes of keys and values one app may keep in key-value; default 256 MiB.
    pub fn keyvalue_quota(mut self, bytes: u64) -> Self {
        self.keyvalue.max_app_bytes = bytes;
        self
    }

    /// Memory the node offers to apps; default the machine's.
    pub fn capacity_memory(mut self, bytes: u64) -> Self {
        self.capacity_memory = Some(bytes);
        self
    }

    /// Serves HTTPS too, on `listener` (see [`ingress::bind`]) with `tls`.
    pub fn https(
        mut self,
        listener: std::net::TcpListener,
        tls: Arc<shoal_tls::rustls::ServerConfig>,
    ) -> Self {
        self.https = Some((listener, tls));
        self
    }

    /// Serves `GET /metrics` on `listener` too (see [`crate::metrics::serve`]).
    pub fn metrics_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.metrics = Some(listener);
        self
    }

    /// Answers every plain HTTP request with a redirect to HTTPS (with [`Builder::https`]).
    pub fn redirect_to_https(mut self, on: bool) -> Self {
        self.redirect_to_https = on;
        self
    }

    /// Starts every part, the ingress on `listener` (see [`ingress::bind`]), until
    /// `shutdown` is cancelled.
    ///
    /// # Errors
    /// A part cannot start.
    pub async fn start(
        self,
        listener: std::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<Node, StartError> {
        let data = &self.data_dir;
        let dir = |what, dir: PathBuf| move |source| StartError::Dir { what, dir, source };
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let (objects, blobs, cluster) = match self.topology {
            Topology::Single { objects, blobs } => (objects, Blobs::local(blobs), None),
            Topology::Cluster {
                servers,
                token,
                tls,
            } => {
                let local = BlobStore::open(data.join("blobs"))
                    .map_err(dir("the blob store", data.join("blobs")))?;
                let servers = Arc::new(Servers::new(&servers, &token, tls));
                let objects = Objects::new(Arc::new(servers.store()));
                let blobs = Blobs::fetching_from(local, servers.clone());
                (objects, blobs, Some((servers, token)))
            }
        };
        let logs = LogDir::open(data.join("logs"), self.log_budget)
            .map_err(dir("the log directory", data.join("logs")))?;
        let quotas = crate::quotas::Quotas::default();
        let apps = crate::calls::Apps::default();
        let remote_calls = Arc::new(std::sync::OnceLock::new());
        let in_memory = crate::calls::InMemory {
            apps: apps.clone(),
            max_response_body: self.limits.max_response_body,
            remote: remote_calls.clone(),
        };
        let capabilities = Arc::new(Capabilities::open(shoal_capabilities::Resources {
            keyvalue: (data.join("keyvalue.redb"), self.keyvalue),
            kv_namespaces: quotas.keyvalue(),
            blobs: blobs.clone(),
            files: data.join("files"),
            sqlite: (data.join("sqlite"), self.sqlite),
            apps: Arc::new(in_memory),
        })?);
        let runtime = Arc::new(
            Runtime::new(
                RuntimeConfig {
                    max_instances: self.max_instances,
                    cache_dir: data.join("compiled"),
                    busy_threads: workers.saturating_sub(1).max(1),
                    pooling: true,
                    keep_resident: self.keep_resident,
                    absent_imports: capabilities.absent_imports(),
                    compile_limits: self.compile_limits,
                },
                |linker, kind| Ok(capabilities.link(linker, kind)?),
            )
            .map_err(StartError::Runtime)?,
        );
        let http = listener.local_addr().map_err(StartError::Listener)?;
        let metrics = Arc::new(NodeMetrics::new(runtime.clone()));
        let routes = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
        let parts = AgentParts {
            objects: objects.clone(),
            blobs: blobs.clone(),
            runtime: runtime.clone(),
            capabilities: capabilities.clone(),
            logs: logs.clone(),
            owners: crate::agent::Owners::new(
                data.join("owners"),
                capabilities.clone(),
                logs.clone(),
            ),
            quotas: quotas.clone(),
            apps: apps.clone(),
            metrics: metrics.clone(),
        };
        let agent = Agent::new(
            parts,
            routes.clone(),
            AgentConfig {
                node_name: self.name.clone(),
                // Compiler threads run at a lower priority than serving (see shoal-runtime),
                // so one compile per core speeds up big deployments without stalling live apps.
                compile_concurrency: workers,
                placed_only: cluster.is_some(),
            },
        );
        let serving = agent.serving();
        if cluster.is_none() {
            agent.mark_unloaded().await?;
        }
        let mut jobs = JobController::new(
            objects.clone(),
            Arc::new(NodeRunner::new(runtime, blobs, capabilities, logs.clone())),
            Some(logs.clone()),
            self.name.clone(),
            Clock::system(),
        );
        if cluster.is_some() {
            jobs = jobs.assigned_only();
        }
        let spec = NodeSpec {
            address: format!("http://{http}"),
            capacity_memory: self.capacity_memory.unwrap_or_else(machine_memory),
            max_instances: self.max_instances,
        };
        let lease = cluster
            .as_ref()
            .map(|(servers, _)| servers.clone() as Arc<dyn LeaseKeeper>);
        let heartbeat = crate::register::heartbeat(
            objects.clone(),
            self.name.clone(),
            self.labels,
            spec,
            serving,
            lease,
            shutdown.clone(),
        );
        let mut tasks = vec![
            tokio::spawn(quotas.run(objects.clone(), shutdown.clone())),
            tokio::spawn(agent.run(shutdown.clone())),
            tokio::spawn(jobs.run(shutdown.clone())),
            tokio::spawn(heartbeat),
            tokio::spawn(crate::metrics::sample(metrics.clone(), shutdown.clone())),
        ];
        // In a cluster every ingress serves every app: those placed elsewhere are forwarded.
        let identity = match &cluster {
            Some((servers, _)) => Some(identity(servers, &self.name, &shutdown).await?),
            None => None,
        };
        let ingress_cluster = cluster.zip(identity).map(|((_, token), identity)| {
            let forwarder = Forwarder::new(identity.peers());
            let remote: Arc<dyn crate::calls::RemoteCalls> = Arc::new(forwarder.clone());
            let _ = remote_calls.set(remote);
            tasks.push(tokio::spawn(crate::forward::run(
                objects.clone(),
                self.name.clone(),
                forwarder.clone(),
                shutdown.clone(),
            )));
            Arc::new(ClusterIngress {
                forwarder,
                token,
                logs: logs.clone(),
                metrics: metrics.clone(),
                tls: shoal_tls::TlsAcceptor::from(identity.server_config()),
                apps: apps.clone(),
            })
        });
        let mut fronts = vec![ingress::Front {
            listener,
            protocol: ingress::Protocol::Plain,
        }];
        let mut https = None;
        if let Some((listener, tls)) = self.https {
            https = Some(listener.local_addr().map_err(StartError::Listener)?);
            if let (true, Some(addr)) = (self.redirect_to_https, https) {
                fronts[0].protocol = ingress::Protocol::RedirectToHttps { port: addr.port() };
            }
            fronts.push(ingress::Front {
                listener,
                protocol: ingress::Protocol::Tls(tls),
            });
        }
        let mut metrics_addr = None;
        if let Some(listener) = self.metrics {
            metrics_addr = Some(listener.local_addr().map_err(StartError::Listener)?);
            listener
                .set_nonblocking(true)
                .map_err(StartError::Listener)?;
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(StartError::Listener)?;
            tasks.push(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
                shutdown.clone(),
            )));
        }
        let ingress = tokio::spawn(ingress::serve(
            fronts,
            ingress::Shared {
                routes,
                cluster: ingress_cluster,
                metrics: metrics.clone(),
            },
            workers,
            self.limits,
            shutdown,
        ));
        Ok(Node {
            http,
            https,
            logs,
            metrics,
            metrics_addr,
            tasks,
            ingress,
        })
    }
}

/// This node's TLS identity from `servers`, tried again while none answers (or until
/// `shutdown`).
async fn identity(
    servers: &Servers,
    name: &str,
    shutdown: &CancellationToken,
) -> Result<shoal_tls::NodeIdentity, StartError> {
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        match servers.identity(name).await {
            Ok(id) => return Ok(id),
            Err(e) if !e.retry => return Err(StartError::Identity(e.reason)),
            Err(e) => tracing::warn!(
                "cannot get this node's certificate yet, trying again in {backoff:?}: {}",
                e.reason
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => {
                return Err(StartError::Identity("shut down before one came".into()));
            }
        }
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

/// The machine's memory, in bytes (from /proc/meminfo; 0 if unknown).
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}
