//! The protobuf encoding of OTLP's `ExportTraceServiceRequest` (opentelemetry-proto's
//! `collector/trace/v1` and `trace/v1`), written by hand for the few fields Shoal sends: the
//! wire format is tags, varints and length-delimited bytes, and no code generator is needed.

use crate::{SpanContext, SpanKind, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const BYTES: u32 = 2;

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from((field << 3) | wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, BYTES);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A nested message written by `write` as field `field`, in place: its length goes before it
/// once known (one byte reserved, as most are under 128; a longer one moves its bytes up).
fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, BYTES);
    let at = out.len();
    out.push(0);
    write(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        varint(&mut prefix, len as u64);
        out.splice(at..=at, prefix);
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `KeyValue { string key = 1; AnyValue value = 2; }`, `AnyValue { string_value = 1;
/// bool_value = 2; int_value = 3; }`.
pub(crate) fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value<'_>) {
    message(out, field, |kv| {
        bytes(kv, 1, key.as_bytes());
        message(kv, 2, |v| match value {
            Value::Str(s) => bytes(v, 1, s.as_bytes()),
            Value::Bool(b) => {
                tag(v, 2, VARINT);
                varint(v, u64::from(*b));
            }
            Value::Int(n) => {
                tag(v, 3, VARINT);
                varint(v, *n as u64);
            }
        });
    });
}

// `Span`: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7 and end 8
// (fixed64 nanoseconds), attributes 9, status 15 (`message` 2, `code` 3: 2 = error). A span
// is written as it is recorded: its start, then each attribute as it is set, its end last
// (the order of a message's fields is free).

/// The fields a span starts with.
pub(crate) fn span_start(
    out: &mut Vec<u8>,
    context: &SpanContext,
    parent: Option<&[u8; 8]>,
    name: &str,
    kind: SpanKind,
    start: SystemTime,
) {
    bytes(out, 1, &context.trace_id);
    bytes(out, 2, &context.span_id);
    if let Some(parent) = parent {
        bytes(out, 4, parent);
    }
    bytes(out, 5, name.as_bytes());
    tag(out, 6, VARINT);
    varint(out, kind as u64);
    tag(out, 7, FIXED64);
    out.extend_from_slice(&nanos(start).to_le_bytes());
}

/// An attribute of a span.
pub(crate) fn attribute(out: &mut Vec<u8>, key: &str, value: &Value<'_>) {
    key_value(out, 9, key, value);
}

/// The span failed, with `message` (a later status replaces an earlier one).
pub(crate) fn error(out: &mut Vec<u8>, message: &str) {
    self::message(out, 15, |st| {
        bytes(st, 2, message.as_bytes());
        tag(st, 3, VARINT);
        varint(st, 2);
    });
}

/// The field a span ends with.
pub(crate) fn span_end(out: &mut Vec<u8>, end: SystemTime) {
    tag(out, 8, FIXED64);
    out.extend_from_slice(&nanos(end).to_le_bytes());
}

/// A span whose fields are `span`, as a `ScopeSpans.spans` field.
pub(crate) fn span_field(out: &mut Vec<u8>, span: &[u8]) {
    bytes(out, 2, span);
}

/// `Resource.attributes`.
pub(crate) fn resource(attributes: &[(&str, Value<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in attributes {
        key_value(&mut out, 1, k, v);
    }
    out
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }` of one resource
/// (`resource` 1, the fields [`resource`] wrote, then one `ScopeSpans` 2: `scope` 1 named
/// `shoal`, the spans 2, each as [`span_field`] wrote it).
pub(crate) fn export_request(resource: &[u8], spans: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(resource.len() + 64 + spans.iter().map(|s| s.len()).sum::<usize>());
    message(&mut out, 1, |rs| {
        bytes(rs, 1, resource);
        message(rs, 2, |ss| {
            message(ss, 1, |scope| {
                bytes(scope, 1, b"shoal");
                bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for s in spans {
                ss.extend_from_slice(s);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_groups_of_seven_bits() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn a_nested_message_is_prefixed_by_its_length_short_or_long() {
        for len in [0, 1, 127, 128, 300, 20_000] {
            let mut out = vec![7];
            message(&mut out, 2, |m| m.extend(std::iter::repeat_n(9, len)));
            let mut expected = vec![7, 2 << 3 | BYTES as u8];
            varint(&mut expected, len as u64);
            expected.extend(std::iter::repeat_n(9, len));
            assert_eq!(out, expected, "a message of {len} bytes");
        }
    }
}
