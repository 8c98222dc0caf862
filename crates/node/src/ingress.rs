//! The HTTP ingress: one current-thread runtime per worker thread, each accepting on its own
//! `SO_REUSEPORT` socket, every request routed through the live [`Routes`].

use crate::forward::ClusterIngress;
use crate::{IngressLimits, Routes};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use shoal_runtime::text_response;
use shoal_runtime::{RequestBody, ResponseBody};
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

/// Serves HTTP on `listener` with `workers` threads until `shutdown` is cancelled, then lets
/// in-flight requests finish (up to 30 s) and returns.
///
/// # Caveats
/// Extra workers bind further `SO_REUSEPORT` sockets to the listener's address; if the caller's
/// listener was not made by [`bind`], they share the one socket instead.
///
/// # Errors
/// A worker thread or runtime could not be started.
pub async fn serve(
    listener: std::net::TcpListener,
    routes: Routes,
    cluster: Option<Arc<ClusterIngress>>,
    workers: usize,
    limits: IngressLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let mut listeners = vec![listener];
    for _ in 1..workers.max(1) {
        let extra = match bind(addr) {
            Ok(l) => l,
            Err(_) => listeners[0].try_clone()?,
        };
        listeners.push(extra);
    }
    let mut threads = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (routes, cluster, shutdown, connections) = (
            routes.clone(),
            cluster.clone(),
            shutdown.clone(),
            connections.clone(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("shoal-ingress-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            accept_loop(listener, routes, cluster, limits, connections, shutdown)
                                .await
                        }
                        Err(e) => {
                            tracing::error!("ingress worker {i} cannot use its listener: {e}")
                        }
                    }
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

async fn accept_loop(
    listener: tokio::net::TcpListener,
    routes: Routes,
    cluster: Option<Arc<ClusterIngress>>,
    limits: IngressLimits,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192));
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
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Over the connection limit: close at once rather than queue.
            tracing::debug!(
                "ingress: connection limit ({}) reached; closing a new connection",
                limits.max_connections
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (routes, cluster) = (routes.clone(), cluster.clone());
        let service = service_fn(move |req| {
            let (routes, cluster) = (routes.clone(), cluster.clone());
            async move {
                Ok::<_, Infallible>(dispatch(&routes, cluster.as_deref(), &limits, peer, req).await)
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Client resets and timeouts end here; they are the client's business.
            let _ = conn.await;
            drop(permit);
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

async fn dispatch(
    routes: &Routes,
    cluster: Option<&ClusterIngress>,
    limits: &IngressLimits,
    peer: SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> http::Response<shoal_runtime::Body> {
    if let Some(cluster) = cluster
        && req.uri().path().starts_with(crate::forward::RESERVED)
    {
        return cluster.serve_logs(&req);
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
            Some((f, app)) => f.forward(&app, req).await,
            None => text_response(
                StatusCode::NOT_FOUND,
                format!("no app is routed at {}", req.uri().path()),
            ),
        };
    };
    if let Some(spin) = &routed.spin {
        let target = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        spin.set_headers(req.headers_mut(), host.as_deref(), &target, Some(peer));
    }
    let app = routed.app;
    let response = app.handle(req).await;
    let (limit, name) = (limits.max_response_body, app.name().to_string());
    response.map(|body| ResponseBody::new(body, limit, name).boxed_unsync())
}
