//! The HTTP ingress: one current-thread runtime per worker thread, each accepting on its own
//! `SO_REUSEPORT` socket, every request routed through the live [`Routes`].

use crate::Routes;
use http::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use shoal_runtime::text_response;
use socket2::{Domain, Socket, Type};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send a request's headers before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
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
    workers: usize,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
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
        let (routes, shutdown) = (routes.clone(), shutdown.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("shoal-ingress-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, routes, shutdown).await,
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
    shutdown: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!("ingress accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let routes = routes.clone();
        let service = service_fn(move |req| {
            let routes = routes.clone();
            async move { Ok::<_, Infallible>(dispatch(&routes, req).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Client resets and timeouts end here; they are the client's business.
            let _ = conn.await;
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
    req: hyper::Request<hyper::body::Incoming>,
) -> http::Response<shoal_runtime::Body> {
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
    match table.lookup(host.as_deref(), req.uri().path()) {
        Some(app) => {
            let app = app.clone();
            drop(table);
            app.handle(req).await
        }
        None => text_response(
            StatusCode::NOT_FOUND,
            format!("no app is routed at {}", req.uri().path()),
        ),
    }
}
