//! The apps this node serves, as callees of the in-memory calls apps make to each other
//! (`http://APP.NAMESPACE.shoal.internal/…`, and a Spin component's
//! `http://COMPONENT.spin.internal/…`; the outbound capability decides which may be made, see
//! `shoal_capabilities::internal`). The agent publishes them beside the route table, every
//! app it serves whether it has routes or not; a call is served as the ingress serves a
//! request — the app's permit, limits, metrics, a server span, a Spin component's `spin-*`
//! headers — without a socket.

use crate::RouteTable;
use crate::spin::SpinRoute;
use arc_swap::ArcSwap;
use shoal_api::Route;
use shoal_capabilities::internal::{Answer, Callee, LocalApps};
use shoal_runtime::Body as WasiBody;
use shoal_runtime::HttpApp;
use shoal_store::ObjectKey;
use std::collections::HashMap;
use std::sync::Arc;

/// The apps served here, swapped whole when they change.
pub type Apps = Arc<ArcSwap<Directory>>;

/// Every app served here, by namespace and name, and a Spin application's components by id
/// and by route (for `http://self`).
#[derive(Default)]
pub struct Directory {
    apps: HashMap<ObjectKey, Callable>,
    /// (namespace, Spin application, component id) → the App running it.
    components: HashMap<(String, String, String), ObjectKey>,
    /// (namespace, Spin application) → its components' routes, each with its Spin shape.
    applications: HashMap<(String, String), RouteTable<Component>>,
}

/// A Spin component by one of its routes: its App and the route's Spin shape.
type Component = (ObjectKey, Arc<SpinRoute>);

/// One app, as a callee.
pub struct Callable {
    /// The app.
    pub app: Arc<HttpApp>,
    /// For a Spin component: its application's name and its id, and the shape of its first
    /// route, whose headers a call gets.
    pub spin: Option<(String, String, Arc<SpinRoute>)>,
    /// Its routes.
    pub routes: Vec<Route>,
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
        let mut routed: HashMap<(String, String), Vec<(Route, Component)>> = HashMap::new();
        for (key, c) in &apps {
            if let Some((app, _, _)) = &c.spin {
                let entries = routed
                    .entry((key.namespace.clone(), app.clone()))
                    .or_default();
                entries.extend(
                    c.routes
                        .iter()
                        .map(|r| (r.clone(), (key.clone(), Arc::new(SpinRoute::of(r))))),
                );
            }
        }
        let applications = routed
            .into_iter()
            .map(|(application, entries)| (application, RouteTable::new(entries)))
            .collect();
        Self {
            apps,
            components,
            applications,
        }
    }

    /// What `callee` is, called at `path` by app `caller` of `namespace`: the app, and for a
    /// Spin component the route whose `spin-*` headers the call gets.
    fn find(
        &self,
        namespace: &str,
        caller: &str,
        callee: Callee<'_>,
        path: &str,
    ) -> Option<(Arc<HttpApp>, Option<Arc<SpinRoute>>)> {
        let with_first_route =
            |c: &Callable| (c.app.clone(), c.spin.as_ref().map(|(_, _, r)| r.clone()));
        let key = |name: &str| ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match callee {
            Callee::App { name, .. } => self.apps.get(&key(name)).map(with_first_route),
            Callee::Component(id) => {
                let (application, _, _) = self.apps.get(&key(caller))?.spin.as_ref()?;
                let component = (namespace.to_string(), application.clone(), id.to_string());
                self.apps
                    .get(self.components.get(&component)?)
                    .map(with_first_route)
            }
            Callee::SpinSelf => {
                let (application, _, _) = self.apps.get(&key(caller))?.spin.as_ref()?;
                let routes = self
                    .applications
                    .get(&(namespace.to_string(), application.clone()))?;
                let (callee, route) = routes.lookup(None, path)?;
                Some((self.apps.get(callee)?.app.clone(), Some(route.clone())))
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
        let (app, spin) = directory.find(namespace, caller, callee, request.uri().path())?;
        drop(directory);
        if let Some(route) = &spin {
            let host = request.uri().authority().map(|a| a.as_str().to_string());
            route.set_request_headers(&mut request, host.as_deref(), None);
        }
        let limit = self.max_response_body;
        Some(Box::pin(async move {
            let mut span = crate::ingress::server_span(&mut request, app.metrics().name());
            span.set("shoal.in_memory", true);
            crate::ingress::answer(&app, request, span, limit).await
        }))
    }
}
