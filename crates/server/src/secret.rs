//! Comparing secrets (tokens, credentials) without revealing by timing how much matched.

/// Compares without an early exit, so timing does not reveal how much of a token matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
