//! Progress of blob transfers, reported to whoever shows it (the CLI's bars, the server's
//! pull stream), and the request body that reports an upload as it is sent.

use hyper::body::{Body, Bytes, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Told of each blob a pull or push moves. Every method defaults to doing nothing.
pub trait Progress: Send + Sync {
    /// The blob `digest` (`total` bytes) starts moving.
    fn start(&self, digest: &str, total: u64) {
        let _ = (digest, total);
    }
    /// `bytes` more of it moved.
    fn advance(&self, digest: &str, bytes: u64) {
        let _ = (digest, bytes);
    }
    /// It is complete (or was not needed: the other side had it).
    fn finish(&self, digest: &str) {
        let _ = digest;
    }
}

/// No progress shown.
impl Progress for () {}

/// A shared progress sink.
pub type Sink = Arc<dyn Progress>;

/// No progress shown, as a [`Sink`].
pub fn none() -> Sink {
    Arc::new(())
}

/// The most bytes one frame of an upload carries: small enough for a bar to move smoothly.
const CHUNK: usize = 64 << 10;

/// An upload's body: `bytes` in frames of [`CHUNK`], each reported to `progress` as it is
/// taken by the connection.
pub(crate) struct Upload {
    bytes: Bytes,
    report: Option<(Sink, String)>,
}

impl Upload {
    /// A body that reports nothing.
    pub(crate) fn quiet(bytes: Bytes) -> Self {
        Self {
            bytes,
            report: None,
        }
    }

    /// A body whose frames are reported as blob `digest` moving.
    pub(crate) fn reported(bytes: Bytes, progress: Sink, digest: String) -> Self {
        Self {
            bytes,
            report: Some((progress, digest)),
        }
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.bytes.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.bytes.len().min(CHUNK);
        let chunk = self.bytes.split_to(n);
        if let Some((progress, digest)) = &self.report {
            progress.advance(digest, n as u64);
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.len() as u64)
    }
}
