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
    /// Set for a component of a Spin application.
    pub spin: Option<SpinComponent>,
}

/// What a Spin component is called by.
pub struct SpinComponent {
    /// Its application's name.
    pub application: String,
    /// Its id in the application.
    pub id: String,
    /// Its routes, each with its Spin shape (the route table's own).
    pub routes: Vec<(Route, Arc<SpinRoute>)>,
    /// The shape a call by id gets: its first route's, `/...` for a private component.
    pub called_as: Arc<SpinRoute>,
}

impl SpinComponent {
    /// Component `id` of Spin application `application`, with its `routes` and their shapes.
    pub fn new(application: &str, id: &str, routes: Vec<(Route, Arc<SpinRoute>)>) -> Self {
        // A private component (no route) is called as Spin calls one: at `/...`.
        let everything = Route {
            path: "/".into(),
            host: None,
            exact: false,
        };
        let called_as = routes.first().map_or_else(
            || Arc::new(SpinRoute::of(&everything)),
            |(_, shape)| shape.clone(),
        );
        Self {
            application: application.to_string(),
            id: id.to_string(),
            routes,
            called_as,
        }
    }
}

impl Directory {
    /// The directory of `apps`.
    pub fn new(apps: impl IntoIterator<Item = (ObjectKey, Callable)>) -> Self {
        let apps: HashMap<ObjectKey, Callable> = apps.into_iter().collect();
        let mut components = HashMap::new();
        let mut routed: HashMap<(String, String), Vec<(Route, Component)>> = HashMap::new();
        for (key, spin) in apps.iter().filter_map(|(k, c)| Some((k, c.spin.as_ref()?))) {
            let application = (key.namespace.clone(), spin.application.clone());
            let component = (
                application.0.clone(),
                application.1.clone(),
                spin.id.clone(),
            );
            components.insert(component, key.clone());
            let entries = routed.entry(application).or_default();
            let by_route = spin
                .routes
                .iter()
                .map(|(r, shape)| (r.clone(), (key.clone(), shape.clone())));
            entries.extend(by_route);
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

    /// App `key`, if this node serves it, and for a Spin component the shape a call to it
    /// gets (its first route's).
    pub(crate) fn callee(&self, key: &ObjectKey) -> Option<(Arc<HttpApp>, Option<Arc<SpinRoute>>)> {
        let c = self.apps.get(key)?;
        Some((c.app.clone(), c.spin.as_ref().map(|s| s.called_as.clone())))
    }

    /// App `key`, as a call to `http://self` at `path` that another node routed to it gets
    /// it: for a Spin component, with the shape of its route that `path` matches.
    pub(crate) fn callee_routed(
        &self,
        key: &ObjectKey,
        path: &str,
    ) -> Option<(Arc<HttpApp>, Option<Arc<SpinRoute>>)> {
        let c = self.apps.get(key)?;
        let Some(spin) = &c.spin else {
            return Some((c.app.clone(), None));
        };
        let application = (key.namespace.clone(), spin.application.clone());
        let matched = self.applications.get(&application)?.lookup(None, path);
        let shape = match matched {
            Some((found, route)) if found == key => route.clone(),
            _ => spin.called_as.clone(),
        };
        Some((c.app.clone(), Some(shape)))
    }

    /// The Spin application app `name` of `namespace` is a component of.
    fn spin_application(&self, namespace: &str, name: &str) -> Option<String> {
        let key = ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        Some(self.apps.get(&key)?.spin.as_ref()?.application.clone())
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
            |c: &Callable| (c.app.clone(), c.spin.as_ref().map(|s| s.called_as.clone()));
        let key = |name: &str| ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match callee {
            Callee::App { name, .. } => self.apps.get(&key(name)).map(with_first_route),
            Callee::Component(id) => {
                let application = &self.apps.get(&key(caller))?.spin.as_ref()?.application;
                let component = (namespace.to_string(), application.clone(), id.to_string());
                self.apps
                    .get(self.components.get(&component)?)
                    .map(with_first_route)
            }
            Callee::SpinSelf => {
                let application = &self.apps.get(&key(caller))?.spin.as_ref()?.application;
                let routes = self
                    .applications
                    .get(&(namespace.to_string(), application.clone()))?;
                let (callee, route) = routes.lookup(None, path)?;
                Some((self.apps.get(callee)?.app.clone(), Some(route.clone())))
            }
        }
    }
}

/// Who a call for an app held elsewhere is for.
#[derive(Debug, Clone, Copy)]
pub enum Remote<'a> {
    /// An app, by name.
    App(&'a str),
    /// Component `id` of Spin application `application`.
    Component {
        /// The caller's Spin application.
        application: &'a str,
        /// The component's id.
        id: &'a str,
    },
    /// Whichever component of Spin application `application` the request's path routes to
    /// (`http://self`).
    SpinSelf {
        /// The caller's Spin application.
        application: &'a str,
    },
}

/// Calls to apps this node does not hold, sent to a node that does (the cluster's
/// forwarder).
pub trait RemoteCalls: Send + Sync + 'static {
    /// Sends `request` for `callee` of `namespace`; `None` when no node holds it.
    fn forward_call(
        &self,
        namespace: &str,
        callee: Remote<'_>,
        request: http::Request<WasiBody>,
    ) -> Option<Answer>;
}

/// Serves in-memory calls with the apps of [`Apps`], and in a cluster sends those for apps
/// held elsewhere to their nodes.
pub struct InMemory {
    /// The apps.
    pub apps: Apps,
    /// The most bytes of a response body, as at the ingress.
    pub max_response_body: u64,
    /// In a cluster, once it has its identity: where calls for apps held elsewhere go.
    pub remote: Arc<std::sync::OnceLock<Arc<dyn RemoteCalls>>>,
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
        let Some((app, spin)) = directory.find(namespace, caller, callee, request.uri().path())
        else {
            // Held by another node of the cluster: an app by name, a Spin component by its
            // application and id, or (`self`) by its application and the request's path.
            let application = directory.spin_application(namespace, caller);
            drop(directory);
            let remote = match (callee, &application) {
                (Callee::App { name, .. }, _) => Remote::App(name),
                (Callee::Component(id), Some(application)) => Remote::Component { application, id },
                (Callee::SpinSelf, Some(application)) => Remote::SpinSelf { application },
                _ => return None,
            };
            return self.remote.get()?.forward_call(namespace, remote, request);
        };
        drop(directory);
        if let Some(route) = &spin {
            let host = request.uri().authority().map(|a| a.as_str().to_string());
            route.set_request_headers(&mut request, host.as_deref(), None);
        }
        let limit = self.max_response_body;
        Some(Box::pin(async move {
            let mut span = crate::answer::server_span(&mut request, app.metrics().name());
            span.set("shoal.in_memory", true);
            crate::answer::answer(&app, request, span, limit).await
        }))
    }
}
