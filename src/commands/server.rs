//! `shoal server`: the control plane of a cluster — the API, on etcd, with the uploaded
//! blobs on local disk. Several may run on one etcd; nodes (`shoal node`) reach the cluster
//! through them.

use crate::machine::hostname;
use crate::settings::{Global, ensure_secret};
use anyhow::Context;
use shoal_api::Quantity;
use shoal_server::{ApiState, BlobStore};
use shoal_store::{Etcd, Objects, Precondition, Store};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Arguments of `shoal server`.
#[derive(clap::Args)]
pub struct Args {
    /// Where the cluster's state lives: `etcd://HOST:PORT[,HOST:PORT…]`.
    #[arg(long)]
    pub store: String,
    /// Address of the API (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub api: SocketAddr,
    /// Largest component upload the API accepts.
    #[arg(long, default_value = "100Mi", value_parser = Quantity::parse)]
    pub max_upload: Quantity,
    #[command(flatten)]
    pub registries: RegistryArgs,
    #[command(flatten)]
    pub limits: ApiLimitArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    #[command(flatten)]
    pub etcd: EtcdTlsArgs,
    /// Ask for a token at /metrics too (the client token or an admin token); by default a
    /// scrape needs none.
    #[arg(long)]
    pub private_metrics: bool,
    /// Export OpenTelemetry traces of applies (an app's apply; each node traces its deploy
    /// under it) to this OTLP/HTTP endpoint (`http://HOST:4318`). Off when not given.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// How a server reaches etcd over TLS, as etcd's `--trusted-ca-file` and `--client-cert-auth`
/// expect.
#[derive(clap::Args)]
pub struct EtcdTlsArgs {
    /// The CA certificate (PEM) etcd's certificate is issued by; with it (or --etcd-cert),
    /// etcd is reached over HTTPS.
    #[arg(long, value_name = "FILE")]
    pub etcd_ca: Option<std::path::PathBuf>,
    /// The client certificate (PEM) to present to etcd, with --etcd-key.
    #[arg(long, requires = "etcd_key", value_name = "FILE")]
    pub etcd_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --etcd-cert.
    #[arg(long, requires = "etcd_cert", value_name = "FILE")]
    pub etcd_key: Option<std::path::PathBuf>,
}

impl EtcdTlsArgs {
    /// The store on `spec`, over HTTPS if any TLS flag was given.
    fn connect(&self, spec: &str) -> anyhow::Result<Etcd> {
        let etcd = Etcd::new(spec).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
        if self.etcd_ca.is_none() && self.etcd_cert.is_none() {
            return Ok(etcd);
        }
        let mut tls =
            shoal_tls::ClientTls::from_ca(self.etcd_ca.as_deref()).context("--etcd-ca")?;
        if let (Some(cert), Some(key)) = (&self.etcd_cert, &self.etcd_key) {
            tls = tls
                .with_identity(cert, key)
                .context("--etcd-cert, --etcd-key")?;
        }
        Ok(etcd.with_tls(&tls)?)
    }
}

/// What the API accepts from clients (`shoal server`'s and `shoal up`'s).
#[derive(clap::Args)]
pub struct ApiLimitArgs {
    /// Connections the API keeps open at once; one more is closed on accept.
    #[arg(long = "api-max-connections", default_value_t = 1024)]
    pub api_max_connections: usize,
    /// How long an API client may take to send a request's header, or pause in its body.
    #[arg(long = "api-client-timeout", default_value = "30s", value_parser = shoal_api::DurationSpec::parse)]
    pub api_client_timeout: shoal_api::DurationSpec,
}

impl ApiLimitArgs {
    /// The limits the API enforces.
    pub fn limits(&self) -> shoal_server::ApiLimits {
        shoal_server::ApiLimits {
            max_connections: self.api_max_connections,
            client_timeout: self.api_client_timeout.get(),
        }
    }
}

/// The API's registry flags (`shoal server`'s and `shoal up`'s).
#[derive(clap::Args)]
pub struct RegistryArgs {
    /// A registry pulled from over plain HTTP although it is not on loopback (`HOST[:PORT]`);
    /// repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// The only registries (`HOST[:PORT]`) components may be pulled from; repeatable (any
    /// when not given).
    #[arg(long = "allowed-registry", value_name = "HOST[:PORT]")]
    pub allowed_registries: Vec<String>,
    /// Refuse OCI references by tag: every one must be pinned to a digest.
    #[arg(long)]
    pub require_digest: bool,
}

impl RegistryArgs {
    /// The policy the API enforces on OCI references.
    pub fn policy(&self) -> shoal_server::RegistryPolicy {
        shoal_server::RegistryPolicy {
            allowed: self.allowed_registries.clone(),
            require_digest: self.require_digest,
            insecure: self.insecure_registries.clone(),
        }
    }
}

/// Runs `shoal server` until Ctrl-C or SIGTERM.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let data_dir = g.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let etcd = args.etcd.connect(&args.store)?;
    let mut backoff = Duration::from_millis(200);
    while let Err(e) = etcd.ping().await {
        tracing::warn!("waiting for {}: {e}", args.store);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    // The first server of a cluster makes its tokens; every later one reads them. Each
    // writes them to its data dir, for the CLI and for nodes started beside it.
    // Every server of a cluster accepts the same client and join tokens, kept in etcd.
    let token = cluster_secret(&etcd, shoal_store::raw::CLIENT_TOKEN).await?;
    let join_token = cluster_secret(&etcd, shoal_store::raw::JOIN_TOKEN).await?;
    ensure_secret(&data_dir.join("token"), Some(&token))?;
    ensure_secret(&data_dir.join("join-token"), Some(&join_token))?;

    // The cluster's CA certifies the nodes' keys; and without a certificate of its own, each
    // server is issued one by it.
    let node_ca = cluster_ca(&etcd).await?;
    let ca = match args.tls.tls_cert {
        Some(_) => None,
        None => Some(shoal_tls::Ca::from_pem(
            node_ca.cert_pem(),
            node_ca.key_pem(),
        )?),
    };
    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot listen on --api {}", args.api))?;
    let addr = listener.local_addr()?;
    let presented = args.tls.presented(&data_dir, addr, ca)?;
    let api_tls = presented.config(None, &[shoal_tls::ALPN_HTTP1])?;
    // Peers are verified by --ca if given, else by the system's roots and the cluster's CA.
    // Nodes are verified by the cluster's CA, which issued their certificates.
    let cluster_tls = match (&g.ca, &presented.ca) {
        (None, Some(ca)) => shoal_tls::ClientTls::system().and_ca_file(ca)?,
        _ => g.trust()?,
    }
    .and_ca_pem(node_ca.cert_pem())?;
    let objects = Objects::new(Arc::new(etcd.clone()));
    let state_objects = objects.clone();
    let blobs = BlobStore::open(data_dir.join("blobs")).context("cannot open the blob store")?;
    let id = format!("{}-{addr}", hostname());
    let url = format!("https://{addr}");
    let peers =
        shoal_server::peers::Peers::new(objects.clone(), url.clone(), token.clone(), &cluster_tls);
    let state = Arc::new(
        ApiState::new(state_objects, blobs, token, args.max_upload.bytes())
            .with_join_token(join_token)
            .with_peers(peers)
            .with_leases(etcd.clone())
            .with_cluster_tls(cluster_tls)
            .with_cluster_ca(node_ca)
            .with_registry_policy(args.registries.policy())
            .with_private_metrics(args.private_metrics),
    );
    let metrics = state.metrics.clone();
    let shutdown = CancellationToken::new();
    if let Some(endpoint) = &args.otlp_endpoint {
        super::node::export_traces(endpoint, &id, &shutdown)?;
    }
    let api = tokio::spawn(shoal_server::run(
        listener,
        Some(api_tls),
        state,
        args.limits.limits(),
        shutdown.clone().cancelled_owned(),
    ));
    let registration = tokio::spawn(shoal_server::peers::register(
        etcd.clone(),
        id.clone(),
        url.clone(),
        shutdown.clone(),
    ));
    // One server at a time runs the cluster's controllers.
    let source = format!("server/{id}");
    let leader = tokio::spawn(shoal_server::leader::campaign(
        etcd,
        id,
        metrics.clone(),
        shutdown.clone(),
        move |fenced, leading| {
            let (objects, source) = (Objects::new(Arc::new(fenced)), source.clone());
            let metrics = metrics.clone();
            async move {
                tokio::join!(
                    shoal_server::liveness::run(
                        objects.clone(),
                        shoal_server::liveness::Proof::Lease,
                        source.clone(),
                        metrics.clone(),
                        leading.clone()
                    ),
                    shoal_server::placement::run(objects, source, metrics, leading),
                );
            }
        },
    ));
    println!("shoal server is up");
    println!("  API:      {url}");
    if let Some(ca) = &presented.ca {
        println!("  CA:       {}", ca.display());
    }
    println!("  store:    {}", args.store);
    println!("  data:     {}", data_dir.display());
    std::io::stdout().flush()?;
    crate::signals::wait_for_signal().await;
    shutdown.cancel();
    api.await??;
    leader.await?;
    registration.await?;
    Ok(())
}

/// The cluster's CA, made (and kept in etcd) by whichever server needs it first.
async fn cluster_ca(store: &Etcd) -> anyhow::Result<shoal_tls::Ca> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stored {
        cert: String,
        key: String,
    }
    let key = shoal_store::raw::CLUSTER_CA;
    loop {
        if let Some(kv) = store.get(key).await? {
            let stored: Stored = serde_json::from_slice(&kv.value)
                .with_context(|| format!("the cluster's CA in etcd ({key}) does not read"))?;
            return shoal_tls::Ca::from_pem(&stored.cert, &stored.key)
                .with_context(|| format!("the cluster's CA in etcd ({key}) is not usable"));
        }
        let ca = shoal_tls::Ca::generate("Shoal cluster CA")?;
        let value = serde_json::to_vec(&Stored {
            cert: ca.cert_pem().to_string(),
            key: ca.key_pem().to_string(),
        })?;
        match store.put(key, value, Precondition::Absent).await {
            Ok(_) => return Ok(ca),
            // Another server made it meanwhile: use theirs.
            Err(shoal_store::StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The secret at `key`, created (random) by whichever server gets there first.
async fn cluster_secret(store: &Etcd, key: &str) -> anyhow::Result<String> {
    loop {
        if let Some(kv) = store.get(key).await? {
            return Ok(String::from_utf8_lossy(&kv.value).into_owned());
        }
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        match store
            .put(key, fresh.clone().into_bytes(), Precondition::Absent)
            .await
        {
            Ok(_) => return Ok(fresh),
            // Another server made it meanwhile: read theirs.
            Err(shoal_store::StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
