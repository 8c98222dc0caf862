//! The HTTP ingress: one current-thread runtime per worker thread, each accepting on its own
//! `SO_REUSEPORT` socket of every [`Front`] (plain HTTP/1.1 and h2c, HTTPS with HTTP/2 or
//! HTTP/1.1 by ALPN, or a redirect to HTTPS), every request routed through the live [`Routes`].

use crate::answer::{answer, server_span};
use crate::forward::ClusterIngress;
use crate::metrics::NodeMetrics;
use crate::{IngressLimits, Routes};
use http::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use shoal_runtime::RequestBody;
use shoal_runtime::text_response;
use socket2::{Domain, Socket, Type};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for in-flight requests before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds a TCP listener with `SO_REUSEPORT`, so that more sockets can share its address.
///
/// # Errors
/// The address is in use or not available.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// How one of the ingress's addresses speaks.
#[derive(Clone)]
pub enum Protocol {
    /// Plain HTTP: HTTP/1.1, or HTTP/2 with prior knowledge (h2c).
    Plain,
    /// Plain HTTP that answers every request with a permanent redirect (308) to the same
    /// URL over HTTPS on `port`.
    RedirectToHttps {
        /// The HTTPS port named in the redirect (omitted when 443).
        port: u16,
    },
    /// HTTPS: TLS with this configuration, then HTTP/2 or HTTP/1.1 as ALPN chose.
    Tls(Arc<shoal_tls::rustls::ServerConfig>),
}

/// A listener the ingress accepts on (see [`bind`]), and how it speaks.
pub struct Front {
    /// The socket.
    pub listener: std::net::TcpListener,
    /// How connections on it speak.
    pub protocol: Protocol,
}

/// What every worker of the ingress serves with.
pub struct Shared {
    /// Where requests go.
    pub routes: Routes,
    /// In a cluster: the apps held elsewhere, and the node's identity for the cluster's own
    /// requests.
    pub cluster: Option<Arc<ClusterIngress>>,
    /// Where connections and requests are counted.
    pub metrics: Arc<NodeMetrics>,
}

/// Serves every front with `workers` threads until `shutdown` is cancelled, then lets
/// in-flight requests finish (up to 30 s) and returns.
///
/// # Caveats
/// Extra workers bind further `SO_REUSEPORT` sockets to each listener's address; if a
/// listener was not made by [`bind`], they share the one socket instead.
///
/// # Errors
/// A worker thread or runtime could not be started.
pub async fn serve(
    fronts: Vec<Front>,
    shared: Shared,
    workers: usize,
    limits: IngressLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Worker i accepts on the i-th socket of every front.
    let mut per_worker: Vec<Vec<(std::net::TcpListener, Protocol)>> =
        (0..workers.max(1)).map(|_| Vec::new()).collect();
    for front in fronts {
        let addr = front.listener.local_addr()?;
        front.listener.set_nonblocking(true)?;
        for (i, sockets) in per_worker.iter_mut().enumerate() {
            let listener = match i {
                0 => front.listener.try_clone()?,
                _ => match bind(addr) {
                    Ok(l) => l,
                    Err(_) => front.listener.try_clone()?,
                },
            };
            sockets.push((listener, front.protocol.clone()));
        }
    }
    let mut threads = Vec::new();
    for (i, sockets) in per_worker.into_iter().enumerate() {
        let serving = Serving {
            routes: shared.routes.clone(),
            cluster: shared.cluster.clone(),
            metrics: shared.metrics.clone(),
            limits,
            connections: connections.clone(),
        };
        let shutdown = shutdown.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("shoal-ingress-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let loops = sockets.into_iter().filter_map(|(listener, protocol)| {
                        match tokio::net::TcpListener::from_std(listener) {
                            Ok(listener) => Some(accept_loop(
                                listener,
                                protocol,
                                serving.clone(),
                                shutdown.clone(),
                            )),
                            Err(e) => {
                                tracing::error!("ingress worker {i} cannot use a listener: {e}");
                                None
                            }
                        }
                    });
                    futures::future::join_all(loops).await;
                });
                let _ = done_tx.send(());
            })?;
        threads.push(done_rx);
    }
    for done in threads {
        let _ = done.await;
    }
    Ok(())
}

/// What every connection of a worker shares.
#[derive(Clone)]
struct Serving {
    routes: Routes,
    cluster: Option<Arc<ClusterIngress>>,
    metrics: Arc<NodeMetrics>,
    limits: IngressLimits,
    connections: Arc<Semaphore>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    protocol: Protocol,
    serving: Serving,
    shutdown: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits = serving.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let tls = match &protocol {
        Protocol::Tls(config) => Some(shoal_tls::TlsAcceptor::from(config.clone())),
        _ => None,
    };
    let redirect = match protocol {
        Protocol::RedirectToHttps { port } => Some(port),
        _ => None,
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!("ingress accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = serving.connections.clone().try_acquire_owned() else {
            // Over the connection limit: close at once rather than queue.
            tracing::debug!(
                "ingress: connection limit ({}) reached; closing a new connection",
                limits.max_connections
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let open = Open::new(&serving.metrics);
        // The plain port of a cluster node also answers the cluster's own TLS (servers
        // reading logs, other nodes forwarding) with the node's identity.
        let internal = match &protocol {
            Protocol::Tls(_) => None,
            _ => serving.cluster.as_ref().map(|c| c.tls.clone()),
        };
        let serving = serving.clone();
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            // Client resets, timeouts and failed handshakes end here; they are the client's
            // business.
            let (tls, cluster_tls) = match (tls, internal) {
                (None, Some(internal)) if starts_tls(&stream, limits.header_timeout).await => {
                    (Some(internal), true)
                }
                (tls, _) => (tls, false),
            };
            // The node at the other end, once the cluster's handshake showed its certificate.
            let peer_node: Arc<std::sync::OnceLock<crate::forward::PeerNode>> = Arc::default();
            let from_node = peer_node.clone();
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let serving = serving.clone();
                if let Some(node) = from_node.get() {
                    req.extensions_mut().insert(node.clone());
                }
                async move {
                    // The cluster's own requests (servers reading logs, other nodes
                    // forwarding) come over the node's TLS, never in the clear; they are
                    // served, not redirected.
                    let internal = serving.cluster.is_some()
                        && (req.uri().path().starts_with(crate::forward::RESERVED)
                            || req.headers().contains_key(crate::forward::FORWARDED)
                            || req.headers().contains_key(crate::forward::CALL));
                    Ok::<_, Infallible>(match redirect {
                        _ if internal && !cluster_tls => text_response(
                            StatusCode::MISDIRECTED_REQUEST,
                            "the cluster's own requests (log reads, forwarded requests) are made over TLS to this node's identity, not in the clear",
                        ),
                        Some(port) if !internal => to_https(&req, port),
                        _ => dispatch(&serving, peer, req).await,
                    })
                }
            });
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
                Some(tls) => {
                    let handshake = tokio::time::timeout(limits.header_timeout, tls.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        let presented = stream.get_ref().1.peer_certificates();
                        if cluster_tls && let Some(node) = shoal_tls::peer_node(presented) {
                            let _ = peer_node.set(crate::forward::PeerNode(node.into()));
                        }
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                }
            }
            drop((permit, open));
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "ingress: in-flight requests did not finish within {DRAIN_TIMEOUT:?}; closing them"
        );
    }
}

/// Whether the client's first byte, within `within`, starts a TLS handshake (a record of
/// type 22); nothing is read.
async fn starts_tls(stream: &tokio::net::TcpStream, within: Duration) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] == 0x16
    )
}

/// The redirect a plain request gets when the ingress sends plain HTTP to HTTPS on `port`.
fn to_https<B>(req: &http::Request<B>, port: u16) -> http::Response<shoal_runtime::Body> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.host().to_string())
        .or_else(|| {
            let header = req.headers().get(http::header::HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = header.parse().ok()?;
            Some(authority.host().to_string())
        });
    let Some(host) = host else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "this address serves HTTPS only, and the request names no host to redirect to",
        );
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = match port {
        443 => format!("https://{host}{target}"),
        port => format!("https://{host}:{port}{target}"),
    };
    let mut response = text_response(
        StatusCode::PERMANENT_REDIRECT,
        format!("this address serves HTTPS only: {location}"),
    );
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response
}

/// One ingress connection, counted open while it lives.
struct Open(Arc<NodeMetrics>);

impl Open {
    fn new(metrics: &Arc<NodeMetrics>) -> Self {
        metrics.accepted.inc();
        metrics.connections.inc();
        Self(metrics.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

async fn dispatch(
    serving: &Serving,
    peer: SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> http::Response<shoal_runtime::Body> {
    let (routes, cluster, limits) = (&serving.routes, serving.cluster.as_deref(), &serving.limits);
    if let Some(cluster) = cluster
        && req.uri().path().starts_with(crate::forward::RESERVED)
    {
        return cluster.serve_reserved(&req);
    }
    if let Some(cluster) = cluster
        && req.headers().contains_key(crate::forward::CALL)
    {
        return crate::forward::serve_forwarded(&cluster.apps, limits, req).await;
    }
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > limits.max_uri {
        return text_response(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is {target_len} bytes; this node accepts at most {}",
                limits.max_uri
            ),
        );
    }
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_request_body) {
        return text_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than this node's limit of {} bytes",
                limits.max_request_body
            ),
        );
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let table = routes.load();
    let local = table.lookup(host.as_deref(), req.uri().path()).cloned();
    drop(table);
    let mut req =
        req.map(|body| RequestBody::new(body, limits.max_request_body, limits.body_idle_timeout));
    let Some(routed) = local else {
        // Held by other nodes of the cluster: forward it, unless it was forwarded already.
        let remote = cluster
            .map(|c| &c.forwarder)
            .filter(|_| !req.headers().contains_key(crate::forward::FORWARDED))
            .and_then(|f| {
                f.lookup(host.as_deref(), req.uri().path())
                    .map(|app| (f, app))
            });
        return match remote {
            Some((f, app)) => {
                serving.metrics.forwarded.inc();
                let mut span = server_span(&mut req, app.name());
                span.set("shoal.forwarded", true);
                let response = f.forward(&app, req).await;
                span.set("http.response.status_code", response.status().as_u16());
                response
            }
            None => text_response(
                StatusCode::NOT_FOUND,
                format!("no app is routed at {}", req.uri().path()),
            ),
        };
    };
    if let Some(spin) = &routed.spin {
        spin.set_request_headers(&mut req, host.as_deref(), Some(peer));
    }
    let app = routed.app;
    let span = server_span(&mut req, app.metrics().name());
    // A bodiless request (most) has no bytes to count: no second reference to hold.
    let req = match http_body::Body::is_end_stream(req.body()) {
        true => req,
        false => req.map(|body| body.counted(app.metrics().clone())),
    };
    answer(&app, req, span, limits.max_response_body).await
}
