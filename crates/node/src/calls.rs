//! The apps this node serves, as callees of the in-memory calls apps make to each other
//! (`http://APP.NAMESPACE.shoal.internal/…`, and a Spin component's
//! `http://COMPONENT.spin.internal/…`; the outbound capability decides which may be made, see
//! `shoal_capabilities::internal`). The agent publishes them beside the route table, every
//! app it serves whether it has routes or not; a call is served as the ingress serves a
//! request — the app's permit, limits, metrics, a server span, a Spin component's `spin-*`
//! headers — without a socket.

use crate::spin::SpinRoute;
use arc_swap::ArcSwap;
use shoal_capabilities::internal::{Answer, Callee, LocalApps};
use shoal_runtime::Body as WasiBody;
use shoal_runtime::{HttpApp, ResponseBody};
use shoal_store::ObjectKey;
use std::collections::HashMap;
use std::sync::Arc;

/// The apps served here, swapped whole when they change.
pub type Apps = Arc<ArcSwap<Directory>>;

/// Every app served here, by namespace and name, and a Spin application's components by id.
#[derive(Default)]
pub struct Directory {
    apps: HashMap<ObjectKey, Callable>,
    /// (namespace, Spin application, component id) → the App running it.
    components: HashMap<(String, String, String), ObjectKey>,
}

/// One app, as a callee.
pub struct Callable {
    /// The app.
    pub app: Arc<HttpApp>,
    /// For a Spin component: its application's name and its id, and the shape of its first
    /// route, whose headers a call gets.
    pub spin: Option<(String, String, Arc<SpinRoute>)>,
}

impl Directory {
    /// The directory of `apps`.
    pub fn new(apps: impl IntoIterator<Item = (ObjectKey, Callable)>) -> Self {
        let apps: HashMap<ObjectKey, Callable> = apps.into_iter().collect();
        let components = apps
            .iter()
            .filter_map(|(key, c)| {
                let (app, id, _) = c.spin.as_ref()?;
                Some((
                    (key.namespace.clone(), app.clone(), id.clone()),
                    key.clone(),
                ))
            })
            .collect();
        Self { apps, components }
    }

    /// What `callee` is, called by app `caller` of `namespace`.
    fn find(&self, namespace: &str, caller: &str, callee: Callee<'_>) -> Option<&Callable> {
        let key = |name: &str| ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match callee {
            Callee::App { name, .. } => self.apps.get(&key(name)),
            Callee::Component(id) => {
                let (application, _, _) = self.apps.get(&key(caller))?.spin.as_ref()?;
                let component = (namespace.to_string(), application.clone(), id.to_string());
                self.apps.get(self.components.get(&component)?)
            }
        }
    }
}

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
        caller: &str,
        callee: Callee<'_>,
        mut request: http::Request<WasiBody>,
    ) -> Option<Answer> {
        let directory = self.apps.load();
        let found = directory.find(namespace, caller, callee)?;
        let app = found.app.clone();
        if let Some((_, _, route)) = &found.spin {
            let host = request.uri().authority().map(|a| a.as_str().to_string());
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            route.set_headers(request.headers_mut(), host.as_deref(), &target, None);
        }
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
