//! Bodies: the ingress's response body type and the host's short answers, the wrappers that
//! bound what a client or a guest can make the node hold or wait for, and [`GuestBody`], which
//! stops a guest's work when its client goes away.

use crate::permit::Permit;
use crate::workload::Workload;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use shoal_metrics::{AppMetrics, LimitHit, Request};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use wasmtime_wasi_http::Error;

/// The response body type of the ingress: whatever a guest streams, or a short host message.
pub type Body = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A body streamed from another node (the ingress forwarding a request), as the ingress's
/// response body.
pub fn relayed_body(body: hyper::body::Incoming) -> Body {
    body.map_err(wasmtime_wasi_http::Error::Hyper)
        .boxed_unsync()
}

/// A plain-text response from the host (not the guest), e.g. 404 or 503.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut text = text.into();
    text.push('\n');
    let body = Full::new(Bytes::from(text))
        .map_err(Into::into)
        .boxed_unsync();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("static response parts are valid")
}

/// Stops a request's guest if the request is abandoned — the client goes away — before its
/// response is complete. The guest's task then says so (see [`Held`]).
pub(crate) struct Abandon {
    abort: Option<tokio::task::AbortHandle>,
    shared: Arc<Shared>,
}

/// What a request's [`Abandon`] tells its guest's task.
#[derive(Default)]
struct Shared {
    /// The response was handed to the client: a limit that ends the guest now cuts its body.
    responded: AtomicBool,
    /// The client went away first.
    abandoned: AtomicBool,
}

impl Abandon {
    /// The response is on its way to the client (its body may still be streaming).
    pub(crate) fn responded(&self) {
        self.shared.responded.store(true, Ordering::Relaxed);
    }

    /// The guest ends by itself: never stop it.
    pub(crate) fn disarm(mut self) {
        self.abort = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take() {
            self.shared.abandoned.store(true, Ordering::Relaxed);
            abort.abort();
        }
    }
}

/// What a guest's task holds for its request: the concurrency permit, released the moment the
/// task ends or is stopped. Whatever ends the guest after its response began — a limit, a trap,
/// the client going away — goes to the workload's log (the client saw only a cut-off body),
/// written after the permit is free, so whoever reads it can use the slot at once.
pub(crate) struct Held {
    permit: Option<Permit>,
    workload: Arc<Workload>,
    shared: Arc<Shared>,
    finished: bool,
}

impl Held {
    /// Holds `permit` for a guest's task, and the [`Abandon`] that stops the task once it is
    /// given the task's abort handle.
    pub(crate) fn new(
        permit: Permit,
        workload: Arc<Workload>,
    ) -> (Self, impl FnOnce(tokio::task::AbortHandle) -> Abandon) {
        let shared = Arc::new(Shared::default());
        let held = Self {
            permit: Some(permit),
            workload,
            shared: shared.clone(),
            finished: false,
        };
        (held, move |abort| Abandon {
            abort: Some(abort),
            shared,
        })
    }

    /// The task ran to its end; `cut_off` is the log line for what ended it (and `limit` the
    /// limit, if one did), should that have cut off a response already begun; before a
    /// response, the caller answers it.
    pub(crate) fn finish(mut self, cut_off: Option<String>, limit: Option<LimitHit>) {
        self.finished = true;
        drop(self.permit.take());
        if let Some(line) = cut_off
            && self.shared.responded.load(Ordering::Relaxed)
        {
            if let Some(limit) = limit {
                self.workload.metrics.limit_hit(limit);
            }
            self.workload.event(&line);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.permit.take());
        if !self.finished && self.shared.abandoned.load(Ordering::Relaxed) {
            self.workload.event(
                "the client went away before the response was complete; the request's guest work was stopped",
            );
        }
    }
}

/// A guest's response body: once it ends (or fails), the guest may finish whatever else it
/// does, within its limits; dropped before that, the client has gone away and the guest's
/// work for the request stops.
pub(crate) struct GuestBody<B> {
    inner: B,
    abandon: Option<Abandon>,
}

impl<B> GuestBody<B> {
    pub(crate) fn new(inner: B, abandon: Abandon) -> Self {
        Self {
            inner,
            abandon: Some(abandon),
        }
    }
}

impl<B> HttpBody for GuestBody<B>
where
    B: HttpBody<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if matches!(frame, None | Some(Err(_)))
            && let Some(abandon) = self.abandon.take()
        {
            abandon.disarm();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails once it passes `limit` bytes or idles past `idle`.
pub struct RequestBody<B> {
    inner: B,
    seen: u64,
    limit: u64,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Told the bytes read, once the body is dropped.
    metrics: Option<Arc<AppMetrics>>,
}

impl<B> RequestBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, limit: u64, idle: Duration) -> Self {
        Self {
            inner,
            seen: 0,
            limit,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            metrics: None,
        }
    }

    /// Counts the bytes read into `metrics` (a request of that app).
    #[must_use]
    pub fn counted(mut self, metrics: Arc<AppMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl<B> Drop for RequestBody<B> {
    fn drop(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.received(self.seen);
        }
    }
}

impl<B> HttpBody for RequestBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Error>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.limit {
                        return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(this.seen)))));
                    }
                }
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that is cut off (the connection aborted) once it passes `limit` bytes,
/// carrying its [`Request`] and the request's trace span (both finished once the body is
/// dropped: sent, or its client gone).
pub struct ResponseBody<B> {
    inner: B,
    seen: u64,
    limit: u64,
    request: Request,
    _span: shoal_trace::Span,
}

impl<B> ResponseBody<B> {
    /// Wraps `inner`, the body of the response to `request`, traced by `span`.
    pub fn new(inner: B, limit: u64, request: Request, span: shoal_trace::Span) -> Self {
        Self {
            inner,
            seen: 0,
            limit,
            request,
            _span: span,
        }
    }
}

impl<B> HttpBody for ResponseBody<B>
where
    B: HttpBody<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
        {
            this.seen += data.len() as u64;
            this.request.sent(data.len() as u64);
            if this.seen > this.limit {
                tracing::warn!(app = %this.request.app().name(), limit = this.limit, "response body exceeded the node's limit; cutting it off");
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.seen)))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
