//! Every node's ingress serves every app: a request for an app placed on other nodes is
//! forwarded to one of them (round robin over the Ready ones), over pooled keep-alive
//! connections, with its method, host, path, headers and body unchanged.
//!
//! A forwarded request carries [`FORWARDED`]; a node never forwards such a request again, so
//! two nodes with different views of the placement cannot bounce it between them.
//!
//! An app's call to another (`http://APP.NAMESPACE.shoal.internal`) that this node does not
//! hold goes the same way, by the callee's name rather than a route (a private app has
//! none), with [`CALL`] naming the callee and the hop it is on in headers ([`Forwarder::call`]).
//! The node that receives it serves it only when the connection presented a node's
//! certificate ([`PeerNode`]): a client of the ingress cannot send a call of its own.

use crate::RouteTable;
use crate::watch::{Change, watch};
use arc_swap::ArcSwap;
use http::StatusCode;
use http_body::Body as _;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shoal_api::{App, Node, NodePhase};
use shoal_runtime::{Body, RequestBody, relayed_body, text_response};
use shoal_store::{ObjectKey, Objects};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The header a node adds to a request it forwards.
pub const FORWARDED: &str = "shoal-forwarded";

mod calls;
pub(crate) use calls::serve_forwarded;
pub use calls::{CALL, PeerNode};

/// Paths under this prefix are the node's own (its logs and app figures, for the servers),
/// never an app's.
pub const RESERVED: &str = "/.shoal/";

/// What a cluster node's ingress does beyond serving its own apps: forward requests for apps
/// held elsewhere, and give the servers, with this node's credential, the logs it keeps
/// (`GET /.shoal/logs?scope=&name=&since=RFC3339&tail=N`) and what its apps are doing
/// (`GET /.shoal/stats?namespace=NS`: JSON, a list of [`shoal_api::AppStats`]).
pub struct ClusterIngress {
    /// Requests for apps held elsewhere.
    pub forwarder: Forwarder,
    /// This node's credential, which the servers present.
    pub token: String,
    /// The logs of this node's apps and job runs.
    pub logs: shoal_logs::LogDir,
    /// What this node's apps are doing.
    pub metrics: Arc<crate::metrics::NodeMetrics>,
    /// What the node's plain port answers a TLS handshake with: its identity, for the
    /// servers and the other nodes.
    pub tls: shoal_tls::TlsAcceptor,
    /// The apps served here, for the calls other nodes forward.
    pub apps: crate::calls::Apps,
}

impl ClusterIngress {
    /// Answers a request under [`RESERVED`].
    pub fn serve_reserved<B>(&self, req: &hyper::Request<B>) -> http::Response<Body> {
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compared without an early exit, so timing does not reveal how much matched.
        let matches = presented.is_some_and(|p| {
            p.len() == self.token.len()
                && p.bytes()
                    .zip(self.token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return text_response(
                StatusCode::UNAUTHORIZED,
                "this node's credential is required",
            );
        }
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        match req.uri().path() {
            "/.shoal/logs" => self.serve_logs(&query),
            "/.shoal/stats" => {
                let stats = self
                    .metrics
                    .stats(query.get("namespace").map(String::as_str));
                let mut resp = text_response(
                    StatusCode::OK,
                    serde_json::to_string(&stats).unwrap_or_else(|_| "[]".into()),
                );
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                resp
            }
            _ => text_response(StatusCode::NOT_FOUND, "no such node endpoint"),
        }
    }

    fn serve_logs(&self, query: &HashMap<String, String>) -> http::Response<Body> {
        let (Some(scope), Some(name)) = (query.get("scope"), query.get("name")) else {
            return text_response(StatusCode::BAD_REQUEST, "give scope and name");
        };
        let since = query
            .get("since")
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let tail = query.get("tail").and_then(|t| t.parse().ok());
        match self.logs.read(scope, name, since, tail) {
            // One line per log line (an empty log is one empty line).
            Ok(lines) => text_response(StatusCode::OK, lines.join("\n")),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                text_response(StatusCode::BAD_REQUEST, e.to_string())
            }
            Err(e) => text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read logs: {e}"),
            ),
        }
    }
}

/// A forwarded request's body: the client's, a calling app's, or none (a replay of a
/// bodiless request).
type Outgoing = Body;

/// An app held by other nodes: where to send its requests.
pub struct RemoteApp {
    name: String,
    /// The Ready nodes that hold it (empty: none is ready): each one's name and `https://`
    /// ingress address.
    nodes: Vec<(String, String)>,
    next: AtomicUsize,
}

/// How requests reach other nodes: over TLS, verified as the node the request is for.
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The apps of the cluster as held by other nodes, and a pooled client per node to reach
/// them (each verifying the certificate of that node's name, `NAME.nodes.shoal.internal`).
#[derive(Clone)]
pub struct Forwarder {
    table: Arc<ArcSwap<RouteTable<Arc<RemoteApp>>>>,
    /// Every app placed elsewhere by name, routed or not: callees of calls between apps.
    by_name: Arc<ArcSwap<HashMap<ObjectKey, Arc<RemoteApp>>>>,
    /// A Spin application's components placed elsewhere: (namespace, application, id) →
    /// the App's name.
    components: Arc<ArcSwap<HashMap<calls::ComponentKey, String>>>,
    /// A Spin application's components by route, wherever they are placed: (namespace,
    /// application) → the App's name (`http://self`, routed by path).
    spin_routes: Arc<ArcSwap<calls::SpinRoutes>>,
    tls: shoal_tls::rustls::ClientConfig,
    clients: Arc<std::sync::Mutex<HashMap<String, Client<Connector, Outgoing>>>>,
}

impl RemoteApp {
    /// `app/NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Forwarder {
    /// A forwarder verifying the other nodes by `peers` (the cluster's CA).
    pub fn new(peers: &shoal_tls::ClientTls) -> Self {
        Self {
            table: Arc::default(),
            by_name: Arc::default(),
            components: Arc::default(),
            spin_routes: Arc::default(),
            tls: peers.config(),
            clients: Arc::default(),
        }
    }

    /// The pooled client of node `node`.
    fn client(&self, node: &str) -> Result<Client<Connector, Outgoing>, String> {
        let mut clients = self.clients.lock().expect("client table poisoned");
        if let Some(c) = clients.get(node) {
            return Ok(c.clone());
        }
        let name =
            shoal_tls::rustls::pki_types::ServerName::try_from(shoal_tls::node_server_name(node))
                .map_err(|e| format!("node/{node} has no TLS name: {e}"))?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_only()
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        clients.insert(node.to_string(), client.clone());
        Ok(client)
    }

    /// The remote app for a request, if the cluster has one at this host and path.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<Arc<RemoteApp>> {
        self.table.load().lookup(host, path).cloned()
    }

    /// App `name` of `namespace` held by other nodes, if the cluster has it.
    pub fn remote(&self, namespace: &str, name: &str) -> Option<Arc<RemoteApp>> {
        let key = ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.by_name.load().get(&key).cloned()
    }

    /// Sends `req` to a node that holds `app` and relays its answer; 503 when none is ready,
    /// 502 when the node cannot be reached.
    pub async fn forward(
        &self,
        app: &RemoteApp,
        req: hyper::Request<RequestBody<hyper::body::Incoming>>,
    ) -> http::Response<Body> {
        self.send(app, req.map(|b| b.map_err(Into::into).boxed_unsync()))
            .await
    }

    pub(super) async fn send(
        &self,
        app: &RemoteApp,
        mut req: http::Request<Body>,
    ) -> http::Response<Body> {
        if app.nodes.is_empty() {
            let mut resp = text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} has no ready node; retry shortly", app.name),
            );
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            return resp;
        }
        // Keep the client's Host: routing on the other node depends on it.
        if !req.headers().contains_key(http::header::HOST)
            && let Some(authority) = req.uri().authority()
            && let Ok(v) = http::HeaderValue::from_str(authority.as_str())
        {
            req.headers_mut().insert(http::header::HOST, v);
        }
        req.headers_mut()
            .insert(FORWARDED, http::HeaderValue::from_static("1"));
        *req.version_mut() = http::Version::HTTP_11;
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
            .to_string();
        // A request that can be sent again unchanged and harmlessly (no body, a safe method) is
        // sent to the next holder when one cannot be reached; others get one try.
        let replayable = req.body().is_end_stream() && req.method().is_safe();
        let (method, headers) = (req.method().clone(), req.headers().clone());
        let tries = if replayable { app.nodes.len() } else { 1 };
        let first = app.next.fetch_add(1, Ordering::Relaxed);
        let mut req = Some(req);
        let mut last_error = String::new();
        for i in 0..tries {
            let (name, node) = &app.nodes[(first + i) % app.nodes.len()];
            let client = match self.client(name) {
                Ok(c) => c,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let uri: http::Uri = match format!("{node}{path}").parse() {
                Ok(u) => u,
                Err(e) => {
                    return text_response(
                        StatusCode::BAD_GATEWAY,
                        format!("bad node address: {e}"),
                    );
                }
            };
            let mut attempt = match req.take() {
                Some(r) => r,
                None => {
                    let empty = Empty::new().map_err(|never| match never {}).boxed_unsync();
                    let mut r = hyper::Request::new(empty);
                    *r.method_mut() = method.clone();
                    *r.headers_mut() = headers.clone();
                    r
                }
            };
            *attempt.uri_mut() = uri;
            match client.request(attempt).await {
                Ok(resp) => return resp.map(relayed_body),
                Err(e) => last_error = format!("the node at {node} did not answer: {e}"),
            }
        }
        text_response(
            StatusCode::BAD_GATEWAY,
            format!("{}: {last_error}", app.name),
        )
    }
}

/// A node's ingress address (`http://HOST:PORT`) as reached over TLS: the same port answers
/// a TLS handshake with the node's identity.
fn over_tls(address: &str) -> String {
    match address.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => address.to_string(),
    }
}

/// The Ready nodes of `placed` but `me`: each one's name and `https://` ingress address.
fn ready_holders(
    placed: &[String],
    me: &str,
    nodes: &HashMap<String, Node>,
) -> Vec<(String, String)> {
    placed
        .iter()
        .filter(|n| *n != me)
        .filter_map(|n| nodes.get(n))
        .filter(|n| n.status.phase == NodePhase::Ready)
        .map(|n| (n.metadata.name.clone(), over_tls(&n.spec.address)))
        .collect()
}

enum Msg {
    Apps(Box<Change<App>>),
    Nodes(Box<Change<Node>>),
}

/// Takes in an app change; true if it can change where requests go.
fn on_app(apps: &mut HashMap<ObjectKey, App>, change: Change<App>) -> bool {
    match change {
        Change::Resync(all) => {
            *apps = all
                .into_iter()
                .map(|a| (ObjectKey::of(&a.metadata), a))
                .collect();
            true
        }
        Change::Put(app) => {
            let key = ObjectKey::of(&app.metadata);
            let moved = apps.get(&key).is_none_or(|old| {
                old.spec.routes != app.spec.routes || old.status.placement != app.status.placement
            });
            apps.insert(key, app);
            moved
        }
        Change::Delete(key) => apps.remove(&key).is_some(),
    }
}

/// Takes in a node change; true if it can change where requests go (heartbeats change nodes
/// all the time; only readiness and address matter here).
fn on_node(nodes: &mut HashMap<String, Node>, change: Change<Node>) -> bool {
    match change {
        Change::Resync(all) => {
            *nodes = all
                .into_iter()
                .map(|n| (n.metadata.name.clone(), n))
                .collect();
            true
        }
        Change::Put(node) => {
            let name = node.metadata.name.clone();
            let moved = nodes.get(&name).is_none_or(|old| {
                old.status.phase != node.status.phase || old.spec.address != node.spec.address
            });
            nodes.insert(name, node);
            moved
        }
        Change::Delete(key) => nodes.remove(&key.name).is_some(),
    }
}

/// Keeps the forwarder's table in line with the apps placed elsewhere and the Ready nodes,
/// until `shutdown`.
pub async fn run(objects: Objects, me: String, forwarder: Forwarder, shutdown: CancellationToken) {
    let (tx, mut rx) = mpsc::channel(256);
    let apps = tokio::spawn(watch::<App, _>(
        objects.clone(),
        tx.clone(),
        |c| Msg::Apps(Box::new(c)),
        shutdown.clone(),
    ));
    let nodes_watch = tokio::spawn(watch::<Node, _>(
        objects,
        tx,
        |c| Msg::Nodes(Box::new(c)),
        shutdown.clone(),
    ));
    let mut apps_by_key: HashMap<ObjectKey, App> = HashMap::new();
    let mut nodes: HashMap<String, Node> = HashMap::new();
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            msg = rx.recv() => match msg { Some(m) => m, None => break },
        };
        let changed = match msg {
            Msg::Apps(change) => on_app(&mut apps_by_key, *change),
            Msg::Nodes(change) => on_node(&mut nodes, *change),
        };
        if changed {
            let entries = apps_by_key.values().filter_map(|app| {
                // Apps placed here too: until this node serves one itself (a new holder
                // still loading it), its requests go to the other holders; once it does, the
                // ingress finds it in the local table first.
                let placed = &app.status.placement.as_ref()?.nodes;
                let remote = Arc::new(RemoteApp {
                    name: app.object_ref().to_string(),
                    nodes: ready_holders(placed, &me, &nodes),
                    next: AtomicUsize::new(0),
                });
                Some(
                    app.spec
                        .routes
                        .iter()
                        .map(move |r| (r.clone(), remote.clone())),
                )
            });
            forwarder
                .table
                .store(Arc::new(RouteTable::new(entries.flatten())));
            let by_name = apps_by_key.iter().filter_map(|(key, app)| {
                let placed = &app.status.placement.as_ref()?.nodes;
                let remote = RemoteApp {
                    name: app.object_ref().to_string(),
                    nodes: ready_holders(placed, &me, &nodes),
                    next: AtomicUsize::new(0),
                };
                Some((key.clone(), Arc::new(remote)))
            });
            forwarder.by_name.store(Arc::new(by_name.collect()));
            // A Spin application's components, by id and by route (as `calls::Directory`
            // keeps those held here).
            let mut components = HashMap::new();
            let mut spin_routes: HashMap<(String, String), Vec<(shoal_api::Route, String)>> =
                HashMap::new();
            for (key, app) in &apps_by_key {
                let label = |l: &str| app.metadata.labels.get(l).cloned();
                let Some(application) = label(shoal_api::SPIN_APP_LABEL) else {
                    continue;
                };
                let application = (key.namespace.clone(), application);
                if let Some(id) = label(shoal_api::SPIN_COMPONENT_LABEL) {
                    let component = (application.0.clone(), application.1.clone(), id);
                    components.insert(component, key.name.clone());
                }
                let routes = app
                    .spec
                    .routes
                    .iter()
                    .map(|r| (r.clone(), key.name.clone()));
                spin_routes.entry(application).or_default().extend(routes);
            }
            forwarder.components.store(Arc::new(components));
            let spin_routes = spin_routes
                .into_iter()
                .map(|(application, routes)| (application, RouteTable::new(routes)));
            forwarder.spin_routes.store(Arc::new(spin_routes.collect()));
        }
    }
    apps.abort();
    nodes_watch.abort();
}
