//! The apps this node serves, as callees of the in-memory calls apps make to each other
//! (`http://APP.NAMESPACE.shoal.internal/…`; the outbound capability decides which may be
//! made, see `shoal_capabilities::internal`). The agent publishes them beside the route table,
//! every app it serves whether it has routes or not; a call is served as the ingress serves a
//! request — the app's permit, limits, metrics and a server span — without a socket.

use arc_swap::ArcSwap;
use shoal_capabilities::internal::{Answer, LocalApps};
use shoal_runtime::Body as WasiBody;
use shoal_runtime::{HttpApp, ResponseBody};
use shoal_store::ObjectKey;
use std::collections::HashMap;
use std::sync::Arc;

/// The apps served here, by namespace and name; swapped whole when they change.
pub type Apps = Arc<ArcSwap<HashMap<ObjectKey, Arc<HttpApp>>>>;

/// Serves in-memory calls with the apps of [`Apps`].
pub struct InMemory {
    /// The apps.
    pub apps: Apps,
    /// The most bytes of a response body, as at the ingress.
    pub max_response_body: u64,
}

impl LocalApps for InMemory {
    fn call(
        &self,
        namespace: &str,
        name: &str,
        mut request: http::Request<WasiBody>,
    ) -> Option<Answer> {
        let key = ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let app = self.apps.load().get(&key)?.clone();
        let limit = self.max_response_body;
        Some(Box::pin(async move {
            let mut span = crate::ingress::server_span(&mut request, app.metrics().name());
            span.set("shoal.in_memory", true);
            let mut counted = app.metrics().request();
            let response = app.handle(request).await;
            let status = response.status();
            counted.answered(status.as_u16());
            span.set("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.fail(status.to_string());
            }
            response.map(|body| {
                http_body_util::BodyExt::boxed_unsync(ResponseBody::new(body, limit, counted, span))
            })
        }))
    }
}
