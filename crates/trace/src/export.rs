//! The tracer and its exporter: spans end into their threads' buffers ([`crate::queue`]);
//! one task takes them a batch at a time and posts each batch to the OTLP/HTTP endpoint.

use crate::queue::{BATCH_BYTES, Encoded, Queue};
use crate::{Span, SpanContext, SpanKind, Value};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How long a span waits for its batch at most.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Starts spans, or does nothing when tracing is off.
#[derive(Debug, Clone, Default)]
pub struct Tracer(Option<Arc<Queue>>);

impl Tracer {
    /// Tracing off: spans record nothing.
    pub const fn off() -> Self {
        Self(None)
    }

    /// Exports to the OTLP/HTTP endpoint `endpoint` (`http://HOST:4318`: spans are posted to
    /// `…/v1/traces`; an `https://` one is verified by the system's roots) as service
    /// `service` (its `service.name`) with the other `resource` attributes, until `shutdown`
    /// (then what is queued is sent once more). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// `endpoint` is not an `http://` or `https://` URL.
    pub fn export(
        endpoint: &str,
        service: &'static str,
        resource: &[(&str, Value<'_>)],
        shutdown: CancellationToken,
    ) -> Result<Self, String> {
        let base =
            reqwest::Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(format!(
                "{endpoint:?} is not an http:// or https:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318)"
            ));
        }
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(shoal_tls::ClientTls::system().config())
            .build()
            .map_err(|e| format!("cannot make the exporter's client: {e}"))?;
        let queue = Arc::new(Queue::default());
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let mut attributes = vec![("service.name", Value::Str(service))];
        attributes.extend_from_slice(resource);
        let resource = crate::proto::resource(&attributes);
        tokio::spawn(run(queue.clone(), url, client, resource, shutdown));
        Ok(Self(Some(queue)))
    }

    /// Whether spans are recorded.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Spans dropped because the export queue was full.
    pub fn dropped(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |q| q.dropped.load(Ordering::Relaxed))
    }

    /// A span starting now under the trace a `traceparent` value names (a header's, or one
    /// kept with an object); without one, or with one that does not parse, the root of a new
    /// trace.
    pub fn start_under(
        &'static self,
        name: &str,
        kind: SpanKind,
        traceparent: Option<&str>,
    ) -> Span {
        match &self.0 {
            None => Span::none(),
            Some(queue) => start(queue, name, kind, traceparent.and_then(SpanContext::parse)),
        }
    }

    /// A span starting now: a child of `parent` (an incoming request's context), or the root
    /// of a new trace. Spans are started by the process's tracer ([`crate::tracer`]), which
    /// outlives them.
    pub fn start(&'static self, name: &str, kind: SpanKind, parent: Option<SpanContext>) -> Span {
        match &self.0 {
            None => Span::none(),
            Some(queue) => start(queue, name, kind, parent),
        }
    }
}

/// A span id: random, never all zero.
pub(crate) fn span_id() -> [u8; 8] {
    nonzero(rand::random::<[u8; 8]>())
}

pub(crate) fn start(
    queue: &'static Queue,
    name: &str,
    kind: SpanKind,
    parent: Option<SpanContext>,
) -> Span {
    // The caller's decision stands: a trace it did not sample is not recorded here either.
    if let Some(p) = parent.filter(|p| !p.sampled) {
        return Span::passed(p);
    }
    let span_id = span_id();
    let context = match parent {
        Some(p) => SpanContext { span_id, ..p },
        None => SpanContext {
            trace_id: nonzero(rand::random::<[u8; 16]>()),
            span_id,
            sampled: true,
        },
    };
    // Most spans fit: the start's 60 bytes, a few attributes and the end.
    let mut fields = Vec::with_capacity(256);
    let parent = parent.map(|p| p.span_id);
    crate::proto::span_start(
        &mut fields,
        &context,
        parent.as_ref(),
        name,
        kind,
        SystemTime::now(),
    );
    Span(crate::Inner::Recording(Box::new(crate::Recording {
        queue,
        context,
        fields,
    })))
}

/// An id that is not all zero (an all-zero id is invalid).
fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id == [0; N] {
        id[N - 1] = 1;
    }
    id
}

/// Takes the spans of `queue` when a batch is full or [`FLUSH_EVERY`], and posts them to
/// `url`, a batch per request; at `shutdown`, what is left goes once more.
async fn run(
    queue: Arc<Queue>,
    url: String,
    client: reqwest::Client,
    resource: Vec<u8>,
    shutdown: CancellationToken,
) {
    let mut failing = false;
    loop {
        let last = tokio::select! {
            () = shutdown.cancelled() => true,
            () = queue.full.notified() => false,
            () = tokio::time::sleep(FLUSH_EVERY) => false,
        };
        for batch in batches(&queue.take()) {
            let spans: usize = batch.iter().map(|e| e.count).sum();
            let bytes: Vec<&[u8]> = batch.iter().map(|e| e.bytes.as_slice()).collect();
            match post(&client, &url, &resource, &bytes).await {
                Ok(()) if failing => {
                    tracing::info!("traces: {url} takes spans again");
                    failing = false;
                }
                Ok(()) => {}
                // Said once per outage, not per batch.
                Err(e) if !failing => {
                    tracing::warn!("traces: {url} refused {spans} spans: {e}");
                    failing = true;
                }
                Err(_) => {}
            }
        }
        if last {
            return;
        }
    }
}

/// The threads' buffers in requests of about [`BATCH_BYTES`] (a buffer is never split: a
/// request holds at most a batch and one buffer).
fn batches(taken: &[Encoded]) -> Vec<&[Encoded]> {
    let mut out = Vec::new();
    let (mut from, mut bytes) = (0, 0);
    for (i, e) in taken.iter().enumerate() {
        bytes += e.bytes.len();
        if bytes >= BATCH_BYTES {
            out.push(&taken[from..=i]);
            (from, bytes) = (i + 1, 0);
        }
    }
    if from < taken.len() {
        out.push(&taken[from..]);
    }
    out
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    resource: &[u8],
    spans: &[&[u8]],
) -> Result<(), String> {
    let body = crate::proto::export_request(resource, spans);
    let resp = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(sampled: bool) -> SpanContext {
        SpanContext {
            trace_id: [7; 16],
            span_id: [9; 8],
            sampled,
        }
    }

    #[test]
    fn a_trace_the_caller_did_not_sample_is_carried_on_but_not_recorded() {
        let queue: &'static Queue = Box::leak(Box::default());
        let span = start(queue, "server", SpanKind::Server, Some(parent(false)));
        assert!(!span.is_recording());
        let context = span.context().unwrap();
        assert_eq!(context.trace_id, [7; 16]);
        assert_ne!(context.span_id, [9; 8]);
        assert!(!context.sampled);
        let child = span.child("handler", SpanKind::Internal);
        let under = child.context().unwrap();
        assert_eq!((under.trace_id, under.sampled), ([7; 16], false));
        assert_ne!(under.span_id, context.span_id);
        drop((span, child));
        assert!(queue.take().is_empty(), "nothing was recorded");

        let sampled = start(queue, "server", SpanKind::Server, Some(parent(true)));
        assert!(sampled.is_recording());
        drop(sampled);
        assert_eq!(queue.take().iter().map(|e| e.count).sum::<usize>(), 1);
    }
}
