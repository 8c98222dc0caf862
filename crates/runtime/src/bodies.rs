//! Bodies: the ingress's response body type and the host's short answers, the wrappers that
//! bound what a client or a guest can make the node hold or wait for, and [`GuestBody`], which
//! stops a guest's work when its client goes away.

use crate::workload::Workload;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use std::pin::Pin;
use std::sync::Arc;
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
/// response is complete, and says so in the workload's log.
pub(crate) struct Abandon {
    abort: Option<tokio::task::AbortHandle>,
    workload: Arc<Workload>,
}

impl Abandon {
    /// Guards the guest task that `abort` stops.
    pub(crate) fn new(abort: tokio::task::AbortHandle, workload: Arc<Workload>) -> Self {
        Self {
            abort: Some(abort),
            workload,
        }
    }

    /// The guest ends by itself: never stop it.
    pub(crate) fn disarm(mut self) {
        self.abort = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take()
            && !abort.is_finished()
        {
            abort.abort();
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

/// A response body that is cut off (the connection aborted) once it passes `limit` bytes.
pub struct ResponseBody<B> {
    inner: B,
    seen: u64,
    limit: u64,
    app: String,
}

impl<B> ResponseBody<B> {
    /// Wraps `inner`, a response of `app`.
    pub fn new(inner: B, limit: u64, app: String) -> Self {
        Self {
            inner,
            seen: 0,
            limit,
            app,
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
            if this.seen > this.limit {
                tracing::warn!(app = %this.app, limit = this.limit, "response body exceeded the node's limit; cutting it off");
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
