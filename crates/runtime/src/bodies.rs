//! Body wrappers that bound what a client or a guest can make the node hold or wait for.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use wasmtime_wasi_http::Error;

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

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
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

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
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
