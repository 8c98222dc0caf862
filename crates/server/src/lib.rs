//! Shoal's control-plane HTTP API.
//!
//! JSON over HTTP, authenticated with a bearer token (which paths each may use: `auth`):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/healthz` | liveness, no token needed |
//! | GET | `/metrics` | Prometheus metrics, no token needed (unless `with_private_metrics`: a client or admin token) |
//! | GET | `/v1/info` | server version and limits (e.g. the largest upload) |
//! | POST | `/v1/blobs` | upload component bytes; answers their `sha256:` digest |
//! | GET, HEAD | `/v1/blobs/{digest}` | download / check a blob |
//! | POST | `/v1/pull` | pull an OCI artifact (a component, or a Spin app's Apps), progress as JSON lines |
//! | GET | `/v1/namespaces` | list namespaces (a `view`/`edit` token: its own) |
//! | GET, PUT, DELETE | `/v1/namespaces/{ns}` | read (with usage), apply, delete a namespace and all in it |
//! | GET | `/v1/namespaces/{ns}/apps` | list Apps |
//! | GET, PUT, DELETE | `/v1/namespaces/{ns}/apps/{name}` | read, apply, delete an App |
//! | GET | `/v1/namespaces/{ns}/apps/{name}/logs?tail=N&since=10m&follow=true` | an app's log |
//! | GET | `/v1/namespaces/{ns}/apps/{name}/revisions` | an app's revisions |
//! | GET | `/v1/namespaces/{ns}/jobs` | list Jobs |
//! | GET, PUT, DELETE | `/v1/namespaces/{ns}/jobs/{name}` | read, apply, delete a Job |
//! | GET | `/v1/namespaces/{ns}/jobs/{name}/logs?run=N&tail=N&since=10m&follow=true` | a run's output |
//! | GET | `/v1/namespaces/{ns}/events?kind=app&name=N` | events about an object |
//! | GET | `/v1/namespaces/{ns}/stats` | what each app is doing now (rates, p99, instances, memory) |
//! | GET | `/v1/namespaces/{ns}/dashboard` | the dashboard's updates, as server-sent events |
//! | GET | `/v1/nodes`, `/v1/nodes/{name}` | the cluster's nodes |
//! | DELETE | `/v1/nodes/{name}` | remove a node: its credential, lease and Node object |
//! | POST | `/v1/nodes/{name}/join` | a node's credential, for the join token or a client (`?replace=true`) |
//! | POST | `/v1/nodes/{name}/certificate` | node `name`'s certificate for its key, from the cluster's CA |
//! | PUT | `/v1/nodes/{name}/lease` | a node keeps its liveness lease (etcd, TTL 2 s) alive |
//! | GET, POST | `/v1/tokens` | list access tokens; make one (shown once) |
//! | DELETE | `/v1/tokens/{id}` | delete an access token |
//! | GET, PUT, DELETE | `/v1/store/…` | the store as nodes use it (see `store_api`) |
//! | GET, POST | `/ui`, `/ui/login`, `/ui/logout` | the web dashboard and its login (see `ui`) |
//!
//! `PUT` is an apply: it creates, updates or leaves an object unchanged and says which. The
//! server validates everything again — the CLI is a convenience, not a gatekeeper.
//!
//! [`run`] takes its listener, limits ([`ApiLimits`]) and shutdown signal from the caller.

mod apps;
mod auth;
mod blobs;
mod dependencies;
mod error;
mod jobs;
pub mod leader;
pub mod liveness;
mod logs;
pub mod metrics;
mod namespace_delete;
mod namespaces;
mod node_writes;
mod nodes;
mod oci;
pub mod peers;
pub mod placement;
mod pulls;
mod quota;
mod reach;
mod revisions;
mod routes;
mod secret;
mod serve;
mod stats;
mod store_api;
mod store_props;
mod token_api;
mod tokens;
pub mod ui;

pub use auth::{Access, Role, credential_node};
pub use error::ApiError;
pub use serve::{ApiLimits, run};
pub use shoal_blobs::BlobStore;
pub use store_api::WireKv;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use shoal_store::Objects;
use std::sync::Arc;

/// Everything the API handlers share.
pub struct ApiState {
    /// Typed object access.
    pub objects: Objects,
    /// Uploaded components, by digest.
    pub blobs: BlobStore,
    /// The bearer token of clients (users, the CLI): every request but `/healthz` carries it,
    /// the join token or a node's credential (see `auth`).
    pub token: String,
    /// In a cluster, the token that admits new nodes; nodes then use their own credentials.
    pub join_token: Option<String>,
    /// Largest accepted upload, in bytes.
    pub max_upload: u64,
    /// etcd, in a cluster: nodes keep their liveness leases there (see `nodes`).
    pub leases: Option<shoal_store::Etcd>,
    /// The other servers of a cluster, which get a copy of every upload.
    pub peers: Option<peers::Peers>,
    /// Per-app logs, when this server runs beside the node that writes them.
    pub logs: Option<shoal_logs::LogDir>,
    /// Which OCI references an apply may name, and how registries are reached.
    pub registry_policy: RegistryPolicy,
    /// How this server verifies the nodes it reads logs from over HTTPS.
    pub cluster_tls: shoal_tls::ClientTls,
    /// The cluster's CA, which certifies the nodes' keys (`POST /v1/nodes/NAME/certificate`).
    pub cluster_ca: Option<Arc<shoal_tls::Ca>>,
    /// The component of each manifest pulled here, by manifest digest.
    pub(crate) pinned: oci::Pinned,
    /// Serialises this server's applies and deletes (route claims are also safe across
    /// servers: they are compare-and-swap).
    pub(crate) apply_lock: tokio::sync::Mutex<()>,
    /// Set once the routes of Apps stored before route claims existed are claimed.
    pub(crate) routes_indexed: tokio::sync::OnceCell<()>,
    /// What this server measures (its controllers count their passes into it too).
    pub metrics: Arc<metrics::ServerMetrics>,
    /// The node beside this server (`shoal up`): its families are written into this
    /// server's `/metrics`, its apps' figures are the stats.
    pub node: Option<Arc<dyn NodeBeside>>,
    /// `/metrics` asks for a client or admin token like any other route.
    pub private_metrics: bool,
}

/// The node a `shoal up` server runs beside, as the API sees it.
pub trait NodeBeside: Send + Sync {
    /// Writes the node's families (into the server's `/metrics`).
    fn write_metrics(&self, out: &mut shoal_metrics::Exposition);
    /// What the node's apps of `namespace` are doing.
    fn app_stats(&self, namespace: &str) -> Vec<shoal_api::AppStats>;
}

impl ApiState {
    /// API state over `objects` and `blobs`, guarded by `token`.
    pub fn new(objects: Objects, blobs: BlobStore, token: String, max_upload: u64) -> Self {
        Self {
            objects,
            blobs,
            token,
            join_token: None,
            max_upload,
            peers: None,
            leases: None,
            logs: None,
            registry_policy: RegistryPolicy::default(),
            cluster_tls: shoal_tls::ClientTls::system(),
            cluster_ca: None,
            pinned: oci::Pinned::default(),
            apply_lock: tokio::sync::Mutex::new(()),
            routes_indexed: tokio::sync::OnceCell::new(),
            metrics: Arc::default(),
            node: None,
            private_metrics: false,
        }
    }

    /// Serves `node`'s families in `/metrics` and its apps' figures as the stats.
    pub fn with_node(mut self, node: Arc<dyn NodeBeside>) -> Self {
        self.node = Some(node);
        self
    }

    /// Makes `/metrics` ask for a client or admin token, as every other route does.
    pub fn with_private_metrics(mut self, private: bool) -> Self {
        self.private_metrics = private;
        self
    }

    /// Admits nodes that present `token` (see [`ApiState::join_token`]), and accepts the
    /// credentials they are given.
    pub fn with_join_token(mut self, token: String) -> Self {
        self.join_token = Some(token);
        self
    }

    /// Keeps nodes' liveness leases on `etcd`.
    pub fn with_leases(mut self, etcd: shoal_store::Etcd) -> Self {
        self.leases = Some(etcd);
        self
    }

    /// Copies uploads to (and fetches missing blobs from) `peers`.
    pub fn with_peers(mut self, peers: peers::Peers) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Serves app logs from `logs`.
    pub fn with_logs(mut self, logs: shoal_logs::LogDir) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Verifies the nodes it reads logs from over HTTPS as `tls` says.
    pub fn with_cluster_tls(mut self, tls: shoal_tls::ClientTls) -> Self {
        self.cluster_tls = tls;
        self
    }

    /// Certifies nodes' keys with `ca`.
    pub fn with_cluster_ca(mut self, ca: shoal_tls::Ca) -> Self {
        self.cluster_ca = Some(Arc::new(ca));
        self
    }

    /// Refuses OCI references `policy` does not allow.
    pub fn with_registry_policy(mut self, policy: RegistryPolicy) -> Self {
        self.registry_policy = policy;
        self
    }
}

/// Which OCI references an apply may name (`--allowed-registry`, `--require-digest`), and
/// which registries are pulled from over plain HTTP (`--insecure-registry`).
#[derive(Debug, Clone, Default)]
pub struct RegistryPolicy {
    /// The registries (`HOST[:PORT]`) components may come from; any when empty.
    pub allowed: Vec<String>,
    /// Refuse tags: every reference must be pinned to a digest.
    pub require_digest: bool,
    /// Registries reached over plain HTTP although not on loopback.
    pub insecure: Vec<String>,
}

/// The API's routes, with authentication applied.
pub fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/v1/info", get(info))
        .route("/v1/blobs", post(blobs::upload))
        .route("/v1/pull", post(pulls::pull))
        .route(
            "/v1/blobs/{digest}",
            get(blobs::download).head(blobs::exists),
        )
        .route("/v1/namespaces", get(namespaces::list))
        .route(
            "/v1/namespaces/{ns}",
            get(namespaces::get)
                .put(namespaces::apply)
                .delete(namespace_delete::delete),
        )
        .route("/v1/tokens", get(token_api::list).post(token_api::create))
        .route("/v1/tokens/{id}", axum::routing::delete(token_api::delete))
        .route("/v1/namespaces/{ns}/apps", get(apps::list))
        .route(
            "/v1/namespaces/{ns}/apps/{name}",
            get(apps::get).put(apps::apply).delete(apps::delete),
        )
        .route("/v1/namespaces/{ns}/apps/{name}/logs", get(logs::logs))
        .route(
            "/v1/namespaces/{ns}/apps/{name}/revisions",
            get(apps::revisions),
        )
        .route("/v1/namespaces/{ns}/jobs", get(jobs::list))
        .route(
            "/v1/namespaces/{ns}/jobs/{name}",
            get(jobs::get).put(jobs::apply).delete(jobs::delete),
        )
        .route("/v1/namespaces/{ns}/jobs/{name}/logs", get(jobs::logs))
        .route("/v1/namespaces/{ns}/events", get(apps::events))
        .route("/v1/namespaces/{ns}/stats", get(stats::stats))
        .route("/v1/namespaces/{ns}/dashboard", get(ui::stream::stream))
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/nodes/{name}", get(nodes::get).delete(nodes::delete))
        .route("/v1/nodes/{name}/join", post(nodes::join))
        .route("/v1/nodes/{name}/certificate", post(nodes::certificate))
        .route(
            "/v1/nodes/{name}/lease",
            axum::routing::put(nodes::keep_lease),
        )
        .route(
            "/v1/store/kv",
            get(store_api::get)
                .put(store_api::put)
                .delete(store_api::delete),
        )
        .route("/v1/store/list", get(store_api::list))
        .route("/v1/store/watch", get(store_api::watch));
    let (api, open) = match state.private_metrics {
        true => (api.route("/metrics", get(metrics::serve)), Router::new()),
        false => (api, Router::new().route("/metrics", get(metrics::serve))),
    };
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(open)
        .merge(ui::router())
        .merge(api)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count,
        ))
        .with_state(state)
}

async fn info(State(state): State<Arc<ApiState>>) -> axum::Json<serde_json::Value> {
    axum::Json(
        serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "maxUpload": state.max_upload }),
    )
}

/// A server span `name` under the request's W3C `traceparent` (when it is a valid one);
/// nothing while this process traces nothing.
pub(crate) fn traced(headers: &http::HeaderMap, name: String) -> shoal_trace::Span {
    let parent = headers
        .get(shoal_trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    shoal_trace::tracer().start_under(&name, shoal_trace::SpanKind::Server, parent)
}

/// The 413 message for an upload over `limit` bytes; the CLI shows the same words.
pub fn upload_too_large(limit: u64) -> String {
    format!(
        "upload is larger than this server's limit of {} MiB; shrink the component or start the server with a larger --max-upload",
        limit >> 20
    )
}
