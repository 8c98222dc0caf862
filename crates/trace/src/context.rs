//! The W3C trace context (`traceparent: 00-TRACEID-SPANID-FLAGS`).

/// The header a request carries its trace context in.
pub const TRACEPARENT: &str = "traceparent";

/// Which trace a span belongs to, and which span it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace's id (never all zero).
    pub trace_id: [u8; 16],
    /// The span's id (never all zero).
    pub span_id: [u8; 8],
    /// The caller asked for this trace to be recorded.
    pub sampled: bool,
}

impl SpanContext {
    /// A `traceparent` header's context; `None` when it is not one (a malformed header starts
    /// a new trace, as the W3C recommendation says). Versions after `00` are read by their
    /// `00` prefix; version `ff` is invalid.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut parts = header.splitn(4, '-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let flags = match version {
            "00" if flags.len() == 2 => flags,
            "ff" => return None,
            v if v.len() == 2 && hex(v).is_some() && flags.len() >= 2 && version != "00" => {
                if flags.len() > 2 && !flags[2..].starts_with('-') {
                    return None;
                }
                &flags[..2]
            }
            _ => return None,
        };
        let trace_id: [u8; 16] = hex(trace)?.try_into().ok()?;
        let span_id: [u8; 8] = hex(span)?.try_into().ok()?;
        let flags = *hex(flags)?.first()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header value of this context.
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.span_id);
        out.push_str(if self.sampled { "-01" } else { "-00" });
        out
    }
}

/// Appends `bytes` in lowercase hex, as the W3C header spells ids.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The bytes of lowercase hex `s` (uppercase is invalid in a traceparent).
fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2)
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_and_writes_back() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = SpanContext::parse(h).unwrap();
        assert!(c.sampled);
        assert_eq!(c.traceparent(), h);
        assert_eq!(c.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        assert_eq!(
            SpanContext::parse(unsampled).unwrap().traceparent(),
            unsampled
        );
    }

    #[test]
    fn malformed_traceparents_are_none() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(SpanContext::parse(bad), None, "{bad}");
        }
        // A later version is read by the fields it shares with 00.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-whatever";
        assert!(!SpanContext::parse(later).unwrap().sampled);
    }
}
