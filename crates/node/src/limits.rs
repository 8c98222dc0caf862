//! Limits the ingress enforces on every request, whatever app it reaches.

use std::time::Duration;

/// Per-node bounds on what a client can make the node hold or wait for.
#[derive(Debug, Clone, Copy)]
pub struct IngressLimits {
    /// Largest request body (413 when declared larger; the guest's read fails past it).
    pub max_request_body: u64,
    /// Largest response body a guest may send; the response is cut off past it.
    pub max_response_body: u64,
    /// Longest request target (path and query), in bytes (414).
    pub max_uri: usize,
    /// Largest request head (request line and headers) hyper buffers (431).
    pub max_header_bytes: usize,
    /// Open client connections at once; more are closed on accept.
    pub max_connections: usize,
    /// Time a client may take to send the request head.
    pub header_timeout: Duration,
    /// Time a client may leave the request body idle between chunks.
    pub body_idle_timeout: Duration,
}

impl Default for IngressLimits {
    fn default() -> Self {
        Self {
            max_request_body: 10 << 20,
            max_response_body: 256 << 20,
            max_uri: 8 << 10,
            max_header_bytes: 64 << 10,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}
