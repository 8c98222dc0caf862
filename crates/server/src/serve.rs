//! The API's connections, guarded as the ingress guards its own: at most `max_connections`
//! at once (one more is closed on accept), a request's header read within `client_timeout`
//! (an idle kept-alive connection too), and a request body that stalls for `client_timeout`
//! ended. Long answers (`watch`, followed logs) are not bounded: they are the server's to end.

use crate::{ApiState, router};
use axum::body::Body;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What the API accepts from clients.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's header, or between two chunks of its
    /// body.
    pub client_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            client_timeout: Duration::from_secs(30),
        }
    }
}

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API on `listener` — over TLS with `tls` (HTTP/1.1 by ALPN), else plain — until
/// `shutdown` resolves, then gives in-flight requests [`DRAIN_TIMEOUT`] to finish.
///
/// # Errors
/// None today: a failed accept is logged and retried.
pub async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<shoal_tls::rustls::ServerConfig>>,
    state: Arc<ApiState>,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = tls.map(shoal_tls::TlsAcceptor::from);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let transport = crate::ui::Transport { tls: tls.is_some() };
    let app = router(state)
        .layer(axum::Extension(transport))
        .layer(axum::middleware::map_request(
            move |req: axum::extract::Request| async move {
                req.map(|body| Body::new(Idle::new(body, limits.client_timeout)))
            },
        ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.client_timeout);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!("API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!(
                "API: connection limit ({}) reached; closing a new connection",
                limits.max_connections
            );
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            // Client resets, timeouts and failed handshakes end here; they are the client's
            // business.
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(tls) => {
                    let handshake = tokio::time::timeout(limits.client_timeout, tls.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API: in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
    Ok(())
}

/// A request body that fails once no frame has come for `timeout`.
struct Idle {
    inner: Body,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Idle {
    fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl hyper::body::Body for Idle {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.timeout;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(format!(
                    "the request body sent nothing for {:?}",
                    this.timeout
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
