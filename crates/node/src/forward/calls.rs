//! Calls between apps across the cluster: an app's call (`http://APP.NAMESPACE.shoal.internal`,
//! or a Spin component's `http://COMPONENT.spin.internal`) to an app this node does not hold
//! goes to a node that holds it, by the callee's name (a private app has no route), with
//! [`CALL`] naming the callee and the hop it is on in headers. The node that receives it
//! serves it only when the connection presented a node's certificate ([`PeerNode`]): a
//! client of the ingress cannot send a call of its own, nor claim a hop.

use super::{FORWARDED, Forwarder, RemoteApp};
use shoal_runtime::Body;
use shoal_store::ObjectKey;
use std::sync::Arc;

/// (namespace, Spin application, component id): a component of a Spin application.
pub(super) type ComponentKey = (String, String, String);

/// (namespace, Spin application) → its components' routes, each naming the App.
pub(super) type SpinRoutes = std::collections::HashMap<(String, String), crate::RouteTable<String>>;

/// The header of a call between apps forwarded to the callee's node: `NAMESPACE/NAME`.
pub const CALL: &str = "shoal-call";
/// The hop a forwarded call is on (see [`shoal_runtime::Hop`]): its depth,
const CALL_DEPTH: &str = "shoal-call-depth";
/// its caller (`app/NAME`),
const CALL_CALLER: &str = "shoal-call-caller";
/// the milliseconds left before the first caller's deadline,
const CALL_DEADLINE: &str = "shoal-call-deadline-ms";
/// and, for a Spin component's call to `http://self`, `self`: the callee answers as the
/// route its path matches (its `spin-*` headers), not as its first route.
const CALL_ROUTED: &str = "shoal-call-routed";

/// In a request's extensions: the connection it came on presented the certificate of this
/// node of the cluster.
#[derive(Debug, Clone)]
pub struct PeerNode(pub Arc<str>);

impl Forwarder {
    /// Sends a call between apps (`req`, carrying its [`shoal_runtime::Hop`]) to a node that
    /// holds `app` (`namespace`/`name`), and relays its answer.
    pub async fn call(
        &self,
        app: &RemoteApp,
        namespace: &str,
        name: &str,
        routed: bool,
        mut req: http::Request<Body>,
    ) -> http::Response<Body> {
        let hop = req.extensions().get::<shoal_runtime::Hop>().cloned();
        let headers = req.headers_mut();
        let mut set = |header: &'static str, value: String| {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                headers.insert(header, v);
            }
        };
        set(CALL, format!("{namespace}/{name}"));
        if routed {
            set(CALL_ROUTED, "self".into());
        }
        if let Some(hop) = hop {
            set(CALL_DEPTH, hop.depth.to_string());
            set(CALL_CALLER, hop.caller.to_string());
            if let Some(deadline) = hop.deadline {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                set(CALL_DEADLINE, left.as_millis().to_string());
            }
        }
        self.send(app, req).await
    }
}

impl crate::calls::RemoteCalls for Forwarder {
    fn forward_call(
        &self,
        namespace: &str,
        callee: crate::calls::Remote<'_>,
        request: http::Request<Body>,
    ) -> Option<shoal_capabilities::internal::Answer> {
        use crate::calls::Remote;
        let name = match callee {
            Remote::App(name) => name.to_string(),
            Remote::Component { application, id } => {
                let component = (
                    namespace.to_string(),
                    application.to_string(),
                    id.to_string(),
                );
                self.components.load().get(&component)?.clone()
            }
            Remote::SpinSelf { application } => {
                let application = (namespace.to_string(), application.to_string());
                let tables = self.spin_routes.load();
                tables
                    .get(&application)?
                    .lookup(None, request.uri().path())?
                    .clone()
            }
        };
        let routed = matches!(callee, Remote::SpinSelf { .. });
        let app = self.remote(namespace, &name)?;
        let (forwarder, namespace) = (self.clone(), namespace.to_string());
        Some(Box::pin(async move {
            forwarder
                .call(&app, &namespace, &name, routed, request)
                .await
        }))
    }
}

/// Serves a call another node forwarded here (a request carrying
/// [`CALL`]): only when its connection presented a node's certificate, to an
/// app this node serves, with the hop its headers carry.
pub(crate) async fn serve_forwarded(
    apps: &crate::calls::Apps,
    limits: &crate::IngressLimits,
    req: hyper::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    use http::StatusCode;
    use shoal_runtime::text_response;
    let Some(PeerNode(from)) = req.extensions().get::<PeerNode>().cloned() else {
        return text_response(
            StatusCode::FORBIDDEN,
            format!(
                "{CALL} is the cluster's own header: only another node, presenting its certificate, calls an app this way"
            ),
        );
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let Some((namespace, name)) = header(CALL).and_then(|c| c.split_once('/')) else {
        return text_response(
            StatusCode::BAD_REQUEST,
            format!("{CALL} must be NAMESPACE/NAME"),
        );
    };
    let key = ObjectKey {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let hop = hop_of(&req, &from);
    let routed = header(CALL_ROUTED) == Some("self");
    let found = if routed {
        apps.load().callee_routed(&key, req.uri().path())
    } else {
        apps.load().callee(&key)
    };
    let Some((app, spin)) = found else {
        return text_response(
            StatusCode::NOT_FOUND,
            format!("app/{name} of namespace {namespace} is not served on this node"),
        );
    };
    let mut req = req.map(|body| {
        shoal_runtime::RequestBody::new(body, limits.max_request_body, limits.body_idle_timeout)
    });
    strip_call_headers(req.headers_mut());
    if let Some(route) = &spin {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        route.set_request_headers(&mut req, host.as_deref(), None);
    }
    req.extensions_mut().insert(hop);
    let mut span = crate::answer::server_span(&mut req, app.metrics().name());
    span.set("shoal.forwarded_call", &from.to_string());
    crate::answer::answer(&app, req, span, limits.max_response_body).await
}

/// The hop a call forwarded from node `from` is on, as its headers say (a call without them
/// is a first hop, with no deadline of its own).
fn hop_of<B>(req: &http::Request<B>, from: &str) -> shoal_runtime::Hop {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    // A deadline too far to add to the clock is no deadline (the callee's timeout holds).
    let deadline = header(CALL_DEADLINE)
        .and_then(|ms| ms.parse::<u64>().ok())
        .and_then(|ms| {
            tokio::time::Instant::now().checked_add(std::time::Duration::from_millis(ms))
        });
    shoal_runtime::Hop {
        depth: header(CALL_DEPTH).and_then(|d| d.parse().ok()).unwrap_or(1),
        deadline,
        caller: header(CALL_CALLER).unwrap_or("an app").into(),
        via: Some(from.into()),
    }
}

/// Removes the headers a forwarded call carried its hop in (the callee sees the request as
/// its caller sent it).
fn strip_call_headers(headers: &mut http::HeaderMap) {
    for name in [
        CALL,
        CALL_DEPTH,
        CALL_CALLER,
        CALL_DEADLINE,
        CALL_ROUTED,
        FORWARDED,
    ] {
        headers.remove(name);
    }
}
