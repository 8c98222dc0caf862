//! `shoal node`: a worker of a cluster — node agent, job controller and HTTP ingress — that
//! reaches the cluster's state only through `shoal server` (never etcd directly). Its
//! arguments ([`NodeArgs`]) are also the node half of `shoal up`'s.

use crate::settings::Global;
use anyhow::Context;
use shoal_api::{DurationSpec, Quantity};
use shoal_node::{Builder, IngressLimits, Node, Topology, ingress};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// What a node serves with, shared by `shoal node` and `shoal up`.
#[derive(clap::Args, Clone)]
pub struct NodeArgs {
    /// Address of the HTTP ingress (port 0 picks a free port): HTTP/1.1, and HTTP/2 with
    /// prior knowledge (h2c).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Address of an HTTPS ingress too (HTTP/2 or HTTP/1.1 by ALPN), presenting --tls-cert
    /// (or the certificate made when it is not given) and the per-host --tls-cert-dir.
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,
    /// Per-host certificates for the HTTPS ingress: each NAME.crt with its NAME.key, chosen
    /// by the host a client asks for (SNI) among their DNS names; read again when they change.
    #[arg(long, value_name = "DIR", requires = "https")]
    pub tls_cert_dir: Option<std::path::PathBuf>,
    /// Answer every plain HTTP request with a redirect (308) to the same URL over HTTPS.
    #[arg(long, requires = "https")]
    pub https_redirect: bool,
    /// Instances that may run at once on this node; sizes wasmtime's pooling allocator.
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// Linear memory each warm pool slot keeps mapped between requests, so that a fresh
    /// instance of an app that touches no more than this takes no page faults. A slot keeps at
    /// most the memory its last instance had; the slots that keep it are those in use at the
    /// peak plus 100 idle ones, so warm memory stays under (peak instances + 100) × this.
    #[arg(long, default_value = Builder::DEFAULT_KEEP_RESIDENT, value_parser = Quantity::parse)]
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
    /// Largest SQLite database an app may grow (Spin's `sqlite_databases`); writes past it
    /// answer `database-full`.
    #[arg(long, default_value = "1Gi", value_parser = Quantity::parse)]
    pub sqlite_max_size: Quantity,
    /// Most bytes of keys and values one app may keep in key-value (all its buckets); a write
    /// past it fails and keeps nothing.
    #[arg(long, default_value = "256Mi", value_parser = Quantity::parse)]
    pub kv_quota: Quantity,
    /// Longest one component may take to compile; past it, its revision fails.
    #[arg(long, default_value = "10m", value_parser = DurationSpec::parse)]
    pub compile_timeout: DurationSpec,
    /// Memory (address space) compiling one component may use; past it, its revision fails.
    #[arg(long, default_value = "4Gi", value_parser = Quantity::parse)]
    pub compile_memory: Quantity,
    /// Labels of this node, for placement (`k=v,k2=v2`).
    #[arg(long, value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Memory this node offers to apps; default: the machine's memory.
    #[arg(long, value_parser = Quantity::parse)]
    pub capacity_memory: Option<Quantity>,
    /// Serve Prometheus metrics at http://ADDR/metrics (no token), the node's and every app's
    /// it holds.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Export OpenTelemetry traces (a span per request, its instantiation, its handler and each
    /// outgoing request; W3C `traceparent` taken and passed on) to this OTLP/HTTP endpoint
    /// (`http://HOST:4318`; spans go to URL/v1/traces as protobuf). Off when not given.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Sends this process's spans to the OTLP/HTTP `endpoint` (`--otlp-endpoint`) as `instance`
/// of service `shoal`, until `shutdown` (the first tracer installed in a process stays).
///
/// # Errors
/// `endpoint` is not an http(s) URL.
pub fn export_traces(
    endpoint: &str,
    instance: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let resource = [("service.instance.id", instance.into())];
    let tracer = shoal_trace::Tracer::export(endpoint, "shoal", &resource, shutdown.clone())
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint: {e}"))?;
    shoal_trace::install(tracer);
    Ok(())
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not key=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

impl NodeArgs {
    /// Binds the ingress and starts node `name` for `topology` with these settings, its
    /// local state in `data_dir`; with `--https`, that ingress presents `tls`'s certificate.
    ///
    /// # Errors
    /// An ingress address cannot be bound, a certificate does not read, or a part cannot
    /// start.
    pub async fn start(
        &self,
        name: &str,
        data_dir: &Path,
        topology: Topology,
        tls: &crate::tls::TlsArgs,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Node> {
        if let Some(endpoint) = &self.otlp_endpoint {
            export_traces(endpoint, name, shutdown)?;
        }
        let listener = ingress::bind(self.http)
            .with_context(|| format!("cannot listen on --http {}", self.http))?;
        let mut node = Node::builder(name, data_dir, topology)
            .max_instances(self.max_instances)
            .keep_resident(self.keep_resident.bytes())
            .log_budget(self.log_budget.bytes())
            .sqlite_max_size(self.sqlite_max_size.bytes())
            .keyvalue_quota(self.kv_quota.bytes())
            .compile_limits(shoal_node::compiler::CompileLimits {
                // This very program, even if its file was replaced since it started (an
                // upgrade): the child must compile for exactly these engines.
                program: "/proc/self/exe".into(),
                timeout: self.compile_timeout.get(),
                memory: self.compile_memory.bytes(),
            })
            .labels(self.labels.iter().cloned().collect())
            .ingress_limits(IngressLimits {
                max_request_body: self.max_request_body.bytes(),
                max_response_body: self.max_response_body.bytes(),
                max_connections: self.max_connections,
                header_timeout: self.client_timeout.get(),
                body_idle_timeout: self.client_timeout.get(),
                ..IngressLimits::default()
            });
        if let Some(addr) = self.https {
            let listener =
                ingress::bind(addr).with_context(|| format!("cannot listen on --https {addr}"))?;
            let presented = tls.presented(data_dir, listener.local_addr()?, None)?;
            let config = presented.config(
                self.tls_cert_dir.clone(),
                &[shoal_tls::ALPN_H2, shoal_tls::ALPN_HTTP1],
            )?;
            node = node
                .https(listener, config)
                .redirect_to_https(self.https_redirect);
        }
        if let Some(addr) = self.metrics {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on --metrics {addr}"))?;
            node = node.metrics_listener(listener);
        }
        if let Some(workers) = self.workers {
            node = node.workers(workers);
        }
        if let Some(memory) = &self.capacity_memory {
            node = node.capacity_memory(memory.bytes());
        }
        Ok(node.start(listener, shutdown.clone()).await?)
    }
}

/// Arguments of `shoal node`.
#[derive(clap::Args)]
pub struct Args {
    /// This node's name, unique in the cluster.
    #[arg(long)]
    pub name: String,
    /// For the first start: the cluster's join token (`shoal server` writes it to its
    /// DATA_DIR/join-token), or this node's credential from `shoal create node NAME`. The node
    /// keeps its credential in DATA_DIR/node-credential and needs no token after.
    #[arg(long, env = "SHOAL_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
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
    let trust = g.trust()?;
    let credential = super::join::credential(
        &servers,
        &args.name,
        args.join_token.as_deref(),
        &data_dir,
        &trust,
    )
    .await?;
    let shutdown = CancellationToken::new();
    let topology = Topology::Cluster {
        servers: servers.clone(),
        token: credential,
        tls: trust,
    };
    let node = args
        .node
        .start(&args.name, &data_dir, topology, &args.tls, &shutdown)
        .await?;
    println!("shoal node {} is up", args.name);
    println!("  servers:  {}", servers.join(","));
    println!("  ingress:  http://{}", node.http());
    if let Some(https) = node.https() {
        println!("  https:    https://{https}");
    }
    if let Some(metrics) = node.metrics_addr() {
        println!("  metrics:  http://{metrics}/metrics");
    }
    println!("  data:     {}", data_dir.display());
    std::io::stdout().flush()?;
    crate::signals::wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
    Ok(node.join().await?)
}
