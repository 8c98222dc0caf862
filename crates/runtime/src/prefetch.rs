//! The start of a request body, read before the request takes anything of its app: a client
//! slow to send its body holds a connection, never one of the app's concurrency slots or an
//! instance, until the body has ended or its first [`PREFETCH`] bytes have arrived (as a
//! proxy buffers a request before it reaches its upstream). Bodies that small — most
//! — reach the guest whole; longer ones stream on from there.

use crate::bodies::{Body, text_response};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Bytes of a request body read before the request takes an instance.
pub const PREFETCH: usize = 16 << 10;

/// A request body whose first frames were read ahead: those, then the rest of the stream.
pub struct Prefetched<B> {
    head: VecDeque<Frame<Bytes>>,
    rest: Option<Pin<Box<B>>>,
}

/// Reads `req`'s body until it ends or [`PREFETCH`] bytes have arrived, for at most
/// `within`.
///
/// # Errors
/// The answer to give when the body failed meanwhile (stalled past the client timeout, or
/// not there within `within`: 408; larger than the node's limit: 413; anything else: 400),
/// naming `app`.
pub async fn prefetch<B>(
    req: hyper::Request<B>,
    app: &str,
    within: std::time::Duration,
) -> Result<hyper::Request<Prefetched<B>>, Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    if req.body().is_end_stream() {
        // No body (most requests): nothing to wait for, no timer, no allocation.
        let (parts, _) = req.into_parts();
        let empty = Prefetched {
            head: VecDeque::new(),
            rest: None,
        };
        return Ok(hyper::Request::from_parts(parts, empty));
    }
    match tokio::time::timeout(within, read_ahead(req, app)).await {
        Ok(read) => read,
        Err(_) => Err(text_response(
            StatusCode::REQUEST_TIMEOUT,
            format!("{app}: the request body did not arrive within the app's timeout ({within:?})"),
        )),
    }
}

async fn read_ahead<B>(
    req: hyper::Request<B>,
    app: &str,
) -> Result<hyper::Request<Prefetched<B>>, Response<Body>>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let (parts, body) = req.into_parts();
    let mut body = Box::pin(body);
    let (mut head, mut read) = (VecDeque::new(), 0usize);
    while read < PREFETCH && !body.is_end_stream() {
        match body.frame().await {
            None => {
                return Ok(hyper::Request::from_parts(
                    parts,
                    Prefetched { head, rest: None },
                ));
            }
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, Bytes::len);
                head.push_back(frame);
            }
            Some(Err(e)) => return Err(refusal(e.into(), app)),
        }
    }
    let rest = (!body.is_end_stream()).then_some(body);
    Ok(hyper::Request::from_parts(parts, Prefetched { head, rest }))
}

/// The answer to a request whose body failed before it reached the guest.
fn refusal(e: wasmtime_wasi_http::Error, app: &str) -> Response<Body> {
    use wasmtime_wasi_http::Error;
    let (status, why) = match e {
        Error::ConnectionReadTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "the request body stalled for longer than this node's --client-timeout".to_string(),
        ),
        Error::HttpRequestBodySize(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than this node's --max-request-body".to_string(),
        ),
        other => (
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {other:?}"),
        ),
    };
    text_response(status, format!("{app}: {why}"))
}

impl<B> HttpBody for Prefetched<B>
where
    B: HttpBody<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.head.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.rest.as_mut() {
            Some(rest) => rest.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let head: u64 = self
            .head
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        let mut hint = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |r| r.size_hint());
        // The upper bound first: each setter checks lower <= upper.
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + head);
        }
        hint.set_lower(hint.lower() + head);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    const A_MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

    #[tokio::test]
    async fn a_small_body_is_read_whole_and_a_long_one_streams_on() {
        let req = hyper::Request::new(Full::new(Bytes::from_static(b"hello")));
        let req = prefetch(req, "app/a", A_MINUTE).await.unwrap();
        assert!(req.body().rest.is_none());
        assert_eq!(req.body().size_hint().exact(), Some(5));
        let got = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"hello");

        let chunks: Vec<Result<Frame<Bytes>, wasmtime_wasi_http::Error>> = (0..8)
            .map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; 4 << 10]))))
            .collect();
        let req = hyper::Request::new(StreamBody::new(futures::stream::iter(chunks)));
        let req = prefetch(req, "app/a", A_MINUTE).await.unwrap();
        assert_eq!(req.body().head.len(), 4, "16 KiB read ahead of 32");
        let got = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), 32 << 10);
    }

    #[tokio::test]
    async fn a_body_that_fails_before_the_guest_is_answered_by_the_host() {
        let chunks: Vec<Result<Frame<Bytes>, wasmtime_wasi_http::Error>> =
            vec![Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)];
        let req = hyper::Request::new(StreamBody::new(futures::stream::iter(chunks)));
        let resp = prefetch(req, "app/a", A_MINUTE).await.err().unwrap();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    }
}
