//! `shoal up`: control plane, node agent and HTTP ingress in one process, on an embedded store.

use crate::settings::Global;
use anyhow::Context;
use arc_swap::ArcSwap;
use shoal_api::{DurationSpec, Quantity};
use shoal_node::{
    Agent, AgentConfig, Clock, IngressLimits, JobController, NodeRunner, RouteTable, ingress,
};
use shoal_runtime::{Runtime, RuntimeConfig};
use shoal_server::{ApiState, BlobStore};
use shoal_store::{Embedded, LogDir, Objects};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Arguments of `shoal up`.
#[derive(clap::Args)]
pub struct Args {
    /// Address of the API server (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub api: SocketAddr,
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
    /// Largest component upload the API accepts.
    #[arg(long, default_value = "100Mi", value_parser = Quantity::parse)]
    pub max_upload: Quantity,
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
    /// Disk each app's log may use (its output and runtime events); older lines rotate away.
    #[arg(long, default_value = "8Mi", value_parser = Quantity::parse)]
    pub log_budget: Quantity,
    /// Apply these manifests once the node is up, and print where to reach them.
    #[arg(long = "apply")]
    pub apply: Vec<String>,
}

/// Runs `shoal up` until Ctrl-C or SIGTERM; in-flight requests finish before it returns.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let data_dir = g.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let token = ensure_token(&data_dir.join("token"))?;
    let store = Embedded::open(&data_dir.join("state.redb")).map_err(|e| {
        anyhow::anyhow!(
            "{e}; is another `shoal up` using the data dir {}? (choose another with --data-dir)",
            data_dir.display()
        )
    })?;
    let objects = Objects::new(Arc::new(store));
    let blobs = BlobStore::open(data_dir.join("blobs")).context("cannot open the blob store")?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let logs = LogDir::open(data_dir.join("logs"), args.log_budget.bytes())
        .context("cannot open the log directory")?;
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: args.max_instances,
        cache_dir: data_dir.join("compiled"),
        keyvalue_path: data_dir.join("keyvalue.redb"),
        logs: logs.clone(),
        busy_threads: workers.saturating_sub(1).max(1),
        pooling: true,
        keep_resident: args.keep_resident.bytes(),
    })
    .context("cannot start the WebAssembly runtime")?;

    let api_listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot listen on --api {}", args.api))?;
    let http_listener = ingress::bind(args.http)
        .with_context(|| format!("cannot listen on --http {}", args.http))?;
    let api_addr = api_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let routes = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let state = Arc::new(
        ApiState::new(
            objects.clone(),
            blobs.clone(),
            token.clone(),
            args.max_upload.bytes(),
        )
        .with_logs(logs.clone()),
    );
    let agent_cfg = AgentConfig {
        node_name: "local".into(),
        // Compiler threads run at a lower priority than serving (see shoal-runtime), so one
        // compile per core speeds up big deployments without stalling live apps.
        compile_concurrency: workers,
        files_dir: data_dir.join("files"),
    };
    let runtime = Arc::new(runtime);
    let jobs = JobController::new(
        objects.clone(),
        Arc::new(NodeRunner::new(
            runtime.clone(),
            blobs.clone(),
            logs.clone(),
        )),
        Some(logs),
        agent_cfg.node_name.clone(),
        Clock::system(),
    );
    let agent = Agent::new(
        objects.clone(),
        blobs.clone(),
        runtime,
        routes.clone(),
        agent_cfg,
    );
    agent
        .mark_unloaded()
        .await
        .context("cannot read the store")?;
    let agent = tokio::spawn(agent.run(shutdown.clone()));
    let jobs = tokio::spawn(jobs.run(shutdown.clone()));
    let api = tokio::spawn(shoal_server::run(
        api_listener,
        state,
        shutdown.clone().cancelled_owned(),
    ));
    let limits = IngressLimits {
        max_request_body: args.max_request_body.bytes(),
        max_response_body: args.max_response_body.bytes(),
        max_connections: args.max_connections,
        header_timeout: args.client_timeout.get(),
        body_idle_timeout: args.client_timeout.get(),
        ..IngressLimits::default()
    };
    let ingress = tokio::spawn(ingress::serve(
        http_listener,
        routes,
        workers,
        limits,
        shutdown.clone(),
    ));

    println!("shoal is up");
    println!("  API:      http://{api_addr}");
    println!("  ingress:  http://{http_addr}");
    println!("  data:     {}", data_dir.display());
    std::io::stdout().flush()?;

    if !args.apply.is_empty() {
        let client = shoal_client::Client::new(&format!("http://{api_addr}"), Some(token));
        match apply_and_wait(&client, &args.apply, &g.namespace, http_addr).await {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => eprintln!("error: --apply: {e:#}"),
        }
        std::io::stdout().flush()?;
    }

    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
    let (api, agent, jobs, ingress) = tokio::join!(api, agent, jobs, ingress);
    api??;
    agent?;
    jobs?;
    ingress??;
    Ok(())
}

async fn apply_and_wait(
    client: &shoal_client::Client,
    files: &[String],
    namespace: &str,
    http: SocketAddr,
) -> anyhow::Result<Vec<String>> {
    let applied = super::apply::apply_paths(client, files, namespace).await?;
    let mut lines: Vec<String> = applied.iter().map(super::apply::result_line).collect();
    let apps = applied.into_iter().filter_map(|a| match a {
        super::apply::Applied::App(a) => Some(a.object),
        super::apply::Applied::Job(_) => None,
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

/// Reads the API token, creating a random one (mode 0600) on first start.
fn ensure_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    }
    .with_context(|| format!("cannot write the API token to {}", path.display()))?;
    writeln!(file, "{token}")?;
    Ok(token)
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
