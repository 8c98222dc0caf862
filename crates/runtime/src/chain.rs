//! Calls between apps in memory: a request an app makes to another app of its node
//! (`http://APP.NAMESPACE.shoal.internal/…`, sent by the outbound capability) travels as a
//! plain `http::Request` carrying the [`Hop`] it is on in its extensions. The callee's
//! instance takes the caller's deadline (the caller's timeout covers the whole chain) and its
//! depth (the requests it makes are one hop further), so that a loop ends at
//! [`MAX_DEPTH`]. A request from outside the process carries none: extensions do not travel
//! over the network — except that a cluster node forwarding a call to the node that holds the
//! callee sends its hop in headers, and that node, having verified the sender is a node,
//! puts it back (`via` the sender).

use std::sync::Arc;
use tokio::time::Instant;

/// The most hops a chain of in-memory calls may have: the request that would be one more is
/// refused with `loop-detected`.
pub const MAX_DEPTH: u32 = 10;

/// The hop an in-memory request is on, in its extensions.
#[derive(Debug, Clone)]
pub struct Hop {
    /// 1 for a call made while serving a request from outside, and one more per hop.
    pub depth: u32,
    /// When the first request of the chain times out: no hop runs past it (none when a Job
    /// began it).
    pub deadline: Option<Instant>,
    /// `app/NAME` of the caller.
    pub caller: Arc<str>,
    /// The node the call came from, when it was not made in this process (a cluster's
    /// nodes forward calls to the apps they do not hold).
    pub via: Option<Arc<str>>,
}

/// What an instance serves now: the depth and deadline its own outgoing calls inherit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Within {
    pub(crate) depth: u32,
    pub(crate) deadline: Instant,
}

/// The hop `req` is on, if another app of this process sent it.
pub(crate) fn hop_of<B>(req: &http::Request<B>) -> Option<&Hop> {
    req.extensions().get::<Hop>()
}
