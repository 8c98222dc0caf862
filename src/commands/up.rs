//! `shoal up`: control plane, node agent and HTTP ingress in one process, on an embedded store.

use crate::settings::{Global, ensure_secret};
use anyhow::Context;
use shoal_api::Quantity;
use shoal_node::Topology;
use shoal_server::{ApiState, BlobStore};
use shoal_store::{Embedded, Objects};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Arguments of `shoal up`.
#[derive(clap::Args)]
pub struct Args {
    /// Address of the API server (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub api: SocketAddr,
    /// Largest component upload the API accepts.
    #[arg(long, default_value = "100Mi", value_parser = Quantity::parse)]
    pub max_upload: Quantity,
    #[command(flatten)]
    pub registries: super::server::RegistryArgs,
    #[command(flatten)]
    pub limits: super::server::ApiLimitArgs,
    /// Apply these manifests once the node is up, and print where to reach them.
    #[arg(long = "apply")]
    pub apply: Vec<String>,
    #[command(flatten)]
    pub node: super::node::NodeArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    /// Ask for a token at the API's /metrics too (the client token or an admin token); by
    /// default a scrape needs none.
    #[arg(long)]
    pub private_metrics: bool,
}

/// Runs `shoal up` until Ctrl-C or SIGTERM; in-flight requests finish before it returns.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let data_dir = g.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let token = ensure_secret(&data_dir.join("token"), None)?;
    let store = Embedded::open(&data_dir.join("state.redb")).map_err(|e| {
        anyhow::anyhow!(
            "{e}; is another `shoal up` using the data dir {}? (choose another with --data-dir)",
            data_dir.display()
        )
    })?;
    let objects = Objects::new(Arc::new(store));
    let blobs = BlobStore::open(data_dir.join("blobs")).context("cannot open the blob store")?;
    let api_listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot listen on --api {}", args.api))?;
    let api_addr = api_listener.local_addr()?;
    // HTTPS with no setup: without --tls-cert, a CA of its own (DATA_DIR/tls/ca.crt, which
    // the CLI finds there) issues the API's certificate.
    let presented = args.tls.presented(&data_dir, api_addr, None)?;
    let api_tls = presented.config(None, &[shoal_tls::ALPN_HTTP1])?;
    let api_url = format!("https://{api_addr}");

    let shutdown = CancellationToken::new();
    let topology = Topology::Single {
        objects: objects.clone(),
        blobs: blobs.clone(),
    };
    let node = args
        .node
        .start("local", &data_dir, topology, &args.tls, &shutdown)
        .await?;
    let http_addr = node.http();
    let state = ApiState::new(
        objects.clone(),
        blobs,
        token.clone(),
        args.max_upload.bytes(),
    )
    .with_logs(node.logs().clone())
    .with_registry_policy(args.registries.policy())
    .with_node(Arc::new(Beside(node.metrics().clone())))
    .with_private_metrics(args.private_metrics);
    // A single node is its own leader: it judges its own liveness, as a cluster's leader would.
    state.metrics.set_leading(true);
    let liveness = {
        let (objects, stop, metrics) = (objects, shutdown.clone(), state.metrics.clone());
        tokio::spawn(async move {
            shoal_server::leader::supervise("liveness", stop.clone(), move || {
                shoal_server::liveness::run(
                    objects.clone(),
                    shoal_server::liveness::Proof::Heartbeats,
                    "server/local".into(),
                    metrics.clone(),
                    stop.clone(),
                )
            })
            .await;
        })
    };
    let state = Arc::new(state);
    let api = tokio::spawn(shoal_server::run(
        api_listener,
        Some(api_tls),
        state,
        args.limits.limits(),
        shutdown.clone().cancelled_owned(),
    ));

    println!("shoal is up");
    println!("  API:      {api_url}");
    println!("  ingress:  http://{http_addr}");
    if let Some(https) = node.https() {
        println!("  https:    https://{https}");
    }
    match node.metrics_addr() {
        Some(metrics) => println!("  metrics:  http://{metrics}/metrics"),
        None => println!("  metrics:  {api_url}/metrics"),
    }
    if let Some(ca) = &presented.ca {
        println!("  CA:       {}", ca.display());
    }
    println!("  data:     {}", data_dir.display());
    std::io::stdout().flush()?;

    if !args.apply.is_empty() {
        let trust = crate::tls::trust(presented.ca.as_deref(), &data_dir)?;
        let client = shoal_client::Client::with_tls(&api_url, Some(token), &trust);
        match apply_and_wait(&client, &args.apply, &g.namespace, http_addr).await {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => eprintln!("error: --apply: {e:#}"),
        }
        std::io::stdout().flush()?;
    }

    crate::signals::wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
    api.await??;
    liveness.await?;
    Ok(node.join().await?)
}

async fn apply_and_wait(
    client: &shoal_client::Client,
    files: &[String],
    namespace: &str,
    http: SocketAddr,
) -> anyhow::Result<Vec<String>> {
    let values = super::spin::values(&[], false)?;
    let applied = super::apply::apply_paths(client, files, namespace, &values).await?;
    let mut lines: Vec<String> = applied.iter().map(super::apply::result_line).collect();
    let apps = applied.into_iter().filter_map(|a| match a {
        super::apply::Applied::App(a) => Some(a.object),
        super::apply::Applied::Job(_) | super::apply::Applied::Namespace(_) => None,
    });
    for app in apps {
        let name = &app.metadata.name;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let current = client.get_app(&app.metadata.namespace, name).await?;
            let settled = current.status.observed_generation == current.metadata.generation
                && current.status.phase != shoal_api::Phase::Pending;
            if settled || tokio::time::Instant::now() > deadline {
                match current.status.phase {
                    shoal_api::Phase::Ready => {
                        for r in app.spec.routes.iter().filter(|r| r.host.is_none()) {
                            lines
                                .push(format!("app/{name} is ready: curl http://{http}{}", r.path));
                        }
                    }
                    phase => lines.push(format!(
                        "app/{name} is {phase}: {}",
                        current
                            .status
                            .message
                            .unwrap_or_else(|| "see `shoal describe app`".into())
                    )),
                }
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(lines)
}

/// The node of `shoal up`, as its API server sees it.
struct Beside(Arc<shoal_node::metrics::NodeMetrics>);

impl shoal_server::NodeBeside for Beside {
    fn write_metrics(&self, out: &mut shoal_metrics::Exposition) {
        self.0.write(out);
    }

    fn app_stats(&self, namespace: &str) -> Vec<shoal_api::AppStats> {
        self.0.stats(Some(namespace))
    }
}
