//! OpenTelemetry traces.
//!
//! A [`Tracer`] is off (the default: every call is a branch on `None`, nothing is allocated)
//! or exports to an OTLP/HTTP endpoint (`--otlp-endpoint URL`): a span is encoded as it is
//! recorded and ends into a bounded buffer of its thread, which a task takes from in batches
//! and posts as protobuf to `URL/v1/traces`. A full buffer drops spans (counted) rather than
//! slow a request. [`SpanContext`] is the W3C trace context a
//! request carries in its `traceparent` header, taken from incoming requests and passed on.
//!
//! A process has one tracer, [`tracer`], as OpenTelemetry's SDKs have a global provider: what
//! is traced (the ingress, the runtime, outgoing requests) is reached from too many places to
//! hand a tracer to each. [`install`] sets it once, at the process's start.

mod context;
mod export;
mod proto;
mod queue;

pub use context::{SpanContext, TRACEPARENT};
pub use export::Tracer;

use std::time::SystemTime;

static TRACER: std::sync::OnceLock<Tracer> = std::sync::OnceLock::new();
static OFF: Tracer = Tracer::off();

/// Makes `tracer` the process's; false if one was installed already (which stays).
pub fn install(tracer: Tracer) -> bool {
    TRACER.set(tracer).is_ok()
}

/// The process's tracer: off unless [`install`]ed.
pub fn tracer() -> &'static Tracer {
    TRACER.get().unwrap_or(&OFF)
}

/// What a span stands for, as OTLP's `SpanKind` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the process.
    Internal = 1,
    /// A request this process answers.
    Server = 2,
    /// A request this process makes.
    Client = 3,
}

/// An attribute's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A flag.
    Bool(bool),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Self::Str(s)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Self::Str(s)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<u16> for Value<'_> {
    fn from(n: u16) -> Self {
        Self::Int(n.into())
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// A span being recorded: it ends, and is exported, when dropped. With tracing off it is
/// empty and every method does nothing. Under a caller that did not sample its trace
/// (`traceparent` flags `00`) it records nothing either, as OpenTelemetry's default
/// parent-based sampler has it, but carries the trace on: its children and outgoing
/// requests keep the caller's trace and its decision.
#[derive(Debug, Default)]
pub struct Span(Inner);

#[derive(Debug, Default)]
enum Inner {
    #[default]
    Off,
    /// Not sampled: only the context, passed on.
    Passed(SpanContext),
    Recording(Box<Recording>),
}

/// A recorded span: its fields are encoded as they are given (OTLP protobuf), so that
/// ending it is one append to its thread's export buffer.
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) queue: &'static queue::Queue,
    pub(crate) context: SpanContext,
    /// The `Span` message's fields so far: all but its end.
    pub(crate) fields: Vec<u8>,
}

impl Span {
    /// A span that records nothing.
    pub fn none() -> Self {
        Self(Inner::Off)
    }

    /// A span under `parent` that records nothing but carries `parent`'s trace on.
    pub(crate) fn passed(parent: SpanContext) -> Self {
        Self(Inner::Passed(SpanContext {
            span_id: export::span_id(),
            ..parent
        }))
    }

    /// Whether this span records anything (tracing is on, and its trace is sampled).
    pub fn is_recording(&self) -> bool {
        matches!(self.0, Inner::Recording(_))
    }

    /// Its trace context: what a child span or an outgoing request is made under.
    pub fn context(&self) -> Option<SpanContext> {
        match &self.0 {
            Inner::Off => None,
            Inner::Passed(context) => Some(*context),
            Inner::Recording(s) => Some(s.context),
        }
    }

    /// Sets attribute `key`.
    pub fn set<'a>(&mut self, key: &'static str, value: impl Into<Value<'a>>) {
        if let Inner::Recording(s) = &mut self.0 {
            proto::attribute(&mut s.fields, key, &value.into());
        }
    }

    /// Marks the span failed, with `message`.
    pub fn fail(&mut self, message: &str) {
        if let Inner::Recording(s) = &mut self.0 {
            proto::error(&mut s.fields, message);
        }
    }

    /// A span of `kind` under this one, starting now.
    pub fn child(&self, name: &str, kind: SpanKind) -> Span {
        match &self.0 {
            Inner::Off => Span::none(),
            Inner::Passed(context) => Span::passed(*context),
            Inner::Recording(s) => export::start(s.queue, name, kind, Some(s.context)),
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Inner::Recording(s) = &mut self.0 {
            proto::span_end(&mut s.fields, SystemTime::now());
            s.queue.push(&s.fields);
        }
    }
}
