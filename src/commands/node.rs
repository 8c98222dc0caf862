//! `shoal node`: a worker of a cluster — node agent, job controller and HTTP ingress — that
//! reaches the cluster's state only through `shoal server` (never etcd directly). Also the
//! node half of `shoal up`, which runs the same parts on an embedded store.

use crate::settings::Global;
use anyhow::Context;
use arc_swap::ArcSwap;
use shoal_api::{DurationSpec, NodeSpec, Quantity};
use shoal_node::register::LeaseKeeper;
use shoal_node::{
    Agent, AgentConfig, BlobSource, Blobs, Clock, IngressLimits, JobController, NodeRunner,
    RouteTable, ingress,
};
use shoal_runtime::{Runtime, RuntimeConfig};
use shoal_store::{LogDir, Objects};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a node serves with, shared by `shoal node` and `shoal up`.
#[derive(clap::Args, Clone)]
pub struct NodeArgs {
    /// Address of the HTTP ingress (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Instances that may run at once on this node; sizes wasmtime's pooling allocator.
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// Linear memory each warm pool slot keeps mapped between requests, so that a fresh
    /// instance of an app that touches no more than this takes no page faults. A slot keeps at
    /// most the memory its last instance had; the slots that keep it are those in use at the
    /// peak plus 100 idle ones, so warm memory stays under (peak instances + 100) × this.
    #[arg(long, default_value = shoal_runtime::RuntimeConfig::DEFAULT_KEEP_RESIDENT, value_parser = Quantity::parse)]
    pub keep_resident: Quantity,
    /// Ingress threads, each with its own runtime and socket; default: one per core.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest request body the ingress accepts (413 above it).
    #[arg(long, default_value = "10Mi", value_parser = Quantity::parse)]
    pub max_request_body: Quantity,
    /// Largest response body a guest may send; longer responses are cut off.
    #[arg(long, default_value = "256Mi", value_parser = Quantity::parse)]
    pub max_response_body: Quantity,
    /// Open client connections the ingress holds at once; more are closed on accept.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Time a client may take to send request headers, and may leave a request body idle.
    #[arg(long, default_value = "30s", value_parser = DurationSpec::parse)]
    pub client_timeout: DurationSpec,
    /// Disk each app's log (and each job run's) may use; older lines rotate away.
    #[arg(long, default_value = "8Mi", value_parser = Quantity::parse)]
    pub log_budget: Quantity,
    /// Labels of this node, for placement (`k=v,k2=v2`).
    #[arg(long, value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Memory this node offers to apps; default: the machine's memory.
    #[arg(long, value_parser = Quantity::parse)]
    pub capacity_memory: Option<Quantity>,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not key=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
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

/// What a node of a cluster holds: how it keeps its lease, and the node token (which the
/// servers present to read its logs).
pub struct Membership {
    /// Renews the node's liveness lease.
    pub lease: Arc<dyn LeaseKeeper>,
    /// The cluster's node token.
    pub token: String,
}

/// A running node: its tasks, and where its ingress listens.
pub struct Running {
    /// The ingress address.
    pub http: SocketAddr,
    /// The app logs it writes (the API of `shoal up` serves them).
    pub logs: LogDir,
    tasks: Vec<JoinHandle<()>>,
    ingress: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until every part stopped (after `shutdown` is cancelled).
    pub async fn join(self) -> anyhow::Result<()> {
        for task in self.tasks {
            task.await?;
        }
        self.ingress.await??;
        Ok(())
    }
}

/// Starts the node's parts on `objects` and `blobs`, its local state in `data_dir`.
/// A single node (`cluster` None) serves every app and runs every job, and first resets Apps
/// left Ready by its previous run (see [`Agent::mark_unloaded`]; before its API answers). A
/// cluster's node serves the apps placed on it, runs the jobs assigned to it, keeps its
/// liveness lease, forwards requests for apps held elsewhere, and shows the servers its logs.
pub async fn start(
    name: &str,
    objects: Objects,
    blobs: Blobs,
    data_dir: &Path,
    args: &NodeArgs,
    cluster: Option<Membership>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Running> {
    let lease = cluster.as_ref().map(|m| m.lease.clone());
    let token = cluster.as_ref().map(|m| m.token.clone());
    let cluster = token.is_some();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let logs = LogDir::open(data_dir.join("logs"), args.log_budget.bytes())
        .context("cannot open the log directory")?;
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: args.max_instances,
            cache_dir: data_dir.join("compiled"),
            keyvalue_path: data_dir.join("keyvalue.redb"),
            logs: logs.clone(),
            busy_threads: workers.saturating_sub(1).max(1),
            pooling: true,
            keep_resident: args.keep_resident.bytes(),
        })
        .context("cannot start the WebAssembly runtime")?,
    );
    let http_listener = ingress::bind(args.http)
        .with_context(|| format!("cannot listen on --http {}", args.http))?;
    let http = http_listener.local_addr()?;
    let routes = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let agent = Agent::new(
        objects.clone(),
        blobs.clone(),
        runtime.clone(),
        routes.clone(),
        AgentConfig {
            node_name: name.to_string(),
            // Compiler threads run at a lower priority than serving (see shoal-runtime), so
            // one compile per core speeds up big deployments without stalling live apps.
            compile_concurrency: workers,
            files_dir: data_dir.join("files"),
            placed_only: cluster,
        },
    );
    let serving = agent.serving();
    if !cluster {
        agent
            .mark_unloaded()
            .await
            .context("cannot read the store")?;
    }
    let objects_for_heartbeat = objects.clone();
    // In a cluster every ingress serves every app: those placed elsewhere are forwarded.
    let ingress_cluster = token.map(|token| {
        Arc::new(shoal_node::forward::ClusterIngress {
            forwarder: shoal_node::forward::Forwarder::default(),
            token,
            logs: logs.clone(),
        })
    });
    let forwarding = ingress_cluster.as_ref().map(|c| {
        tokio::spawn(shoal_node::forward::run(
            objects.clone(),
            name.to_string(),
            c.forwarder.clone(),
            shutdown.clone(),
        ))
    });
    let mut jobs = JobController::new(
        objects,
        Arc::new(NodeRunner::new(runtime, blobs, logs.clone())),
        Some(logs.clone()),
        name.to_string(),
        Clock::system(),
    );
    if cluster {
        jobs = jobs.assigned_only();
    }
    let limits = IngressLimits {
        max_request_body: args.max_request_body.bytes(),
        max_response_body: args.max_response_body.bytes(),
        max_connections: args.max_connections,
        header_timeout: args.client_timeout.get(),
        body_idle_timeout: args.client_timeout.get(),
        ..IngressLimits::default()
    };
    let spec = NodeSpec {
        address: format!("http://{http}"),
        capacity_memory: args
            .capacity_memory
            .as_ref()
            .map_or_else(machine_memory, Quantity::bytes),
        max_instances: args.max_instances,
    };
    let heartbeat = shoal_node::register::heartbeat(
        objects_for_heartbeat,
        name.to_string(),
        args.labels.iter().cloned().collect(),
        spec,
        serving,
        lease,
        shutdown.clone(),
    );
    Ok(Running {
        http,
        logs,
        tasks: vec![
            tokio::spawn(agent.run(shutdown.clone())),
            tokio::spawn(jobs.run(shutdown.clone())),
            tokio::spawn(heartbeat),
        ]
        .into_iter()
        .chain(forwarding)
        .collect(),
        ingress: tokio::spawn(ingress::serve(
            http_listener,
            routes,
            ingress_cluster,
            workers,
            limits,
            shutdown.clone(),
        )),
    })
}

/// Arguments of `shoal node`.
#[derive(clap::Args)]
pub struct Args {
    /// This node's name, unique in the cluster.
    #[arg(long)]
    pub name: String,
    /// The node token (`shoal server` writes it to its DATA_DIR/node-token).
    #[arg(long, env = "SHOAL_NODE_TOKEN", hide_env_values = true)]
    pub node_token: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The cluster's servers, tried in turn: where a node fetches blobs and keeps its lease.
struct Servers(Vec<shoal_client::Client>);

#[async_trait::async_trait]
impl LeaseKeeper for Servers {
    async fn keep(&self, name: &str) -> Result<(), String> {
        let mut errors = Vec::new();
        for server in &self.0 {
            match server.keep_node_lease(name).await {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(errors.join("; "))
    }
}

#[async_trait::async_trait]
impl BlobSource for Servers {
    async fn fetch(&self, digest: &str) -> Result<Vec<u8>, String> {
        let mut errors = Vec::new();
        for server in &self.0 {
            match server.download_blob(digest).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(format!("cannot fetch blob {digest}: {}", errors.join("; ")))
    }
}

/// Runs `shoal node` until Ctrl-C or SIGTERM.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    shoal_api::validate_dns_label(&args.name).map_err(|m| anyhow::anyhow!("--name: {m}"))?;
    // `--server` (global) lists the cluster's servers, comma-separated; tried in turn.
    let servers: Vec<String> = g
        .server
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let data_dir = g.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let store = shoal_client::RemoteStore::new(&servers, &args.node_token);
    let objects = Objects::new(Arc::new(store));
    let local = shoal_store::BlobStore::open(data_dir.join("blobs"))
        .context("cannot open the blob store")?;
    let source = Servers(
        servers
            .iter()
            .map(|s| shoal_client::Client::new(s, Some(args.node_token.clone())))
            .collect(),
    );
    let blobs = Blobs::fetching_from(local, Arc::new(source));
    let shutdown = CancellationToken::new();
    let lease = Arc::new(Servers(
        servers
            .iter()
            .map(|s| shoal_client::Client::new(s, Some(args.node_token.clone())))
            .collect(),
    ));
    let node = start(
        &args.name,
        objects,
        blobs,
        &data_dir,
        &args.node,
        Some(Membership {
            lease,
            token: args.node_token.clone(),
        }),
        &shutdown,
    )
    .await?;
    println!("shoal node {} is up", args.name);
    println!("  servers:  {}", servers.join(","));
    println!("  ingress:  http://{}", node.http);
    println!("  data:     {}", data_dir.display());
    std::io::stdout().flush()?;
    super::up::wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
    node.join().await
}
