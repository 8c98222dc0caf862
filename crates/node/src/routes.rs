//! The route table: (host, path prefix) → app, matched on `/` boundaries; routes and
//! requests are normalised as `shoal_api::Route::normalised` says, like the server's claims.

use crate::spin::SpinRoute;
use arc_swap::ArcSwap;
use shoal_api::{Route, normalise_host, normalise_path};
use shoal_runtime::HttpApp;
use std::collections::HashMap;
use std::sync::Arc;

/// The live route table, swapped atomically when apps change; readers never block.
pub type Routes = Arc<ArcSwap<RouteTable<Routed>>>;

/// What a route leads to on this node: the app, and for a Spin component the Spin shape of
/// the route, whose headers its requests get.
#[derive(Clone)]
pub struct Routed {
    /// The app.
    pub app: Arc<HttpApp>,
    /// Set for an app labelled as a Spin component.
    pub spin: Option<Arc<SpinRoute>>,
}

/// An immutable snapshot of every route on this node, mapping to `T` (an app).
pub struct RouteTable<T> {
    prefix: Paths<T>,
    exact: Paths<T>,
}

/// Paths to apps, for one host each and for any host.
struct Paths<T> {
    by_host: HashMap<String, HashMap<String, T>>,
    any_host: HashMap<String, T>,
}

impl<T> Default for Paths<T> {
    fn default() -> Self {
        Self {
            by_host: HashMap::new(),
            any_host: HashMap::new(),
        }
    }
}

impl<T> Paths<T> {
    /// The app of `path`: for `host`, else for any host.
    fn get<'a>(&'a self, host: Option<&'a HashMap<String, T>>, path: &str) -> Option<&'a T> {
        host.and_then(|r| r.get(path))
            .or_else(|| self.any_host.get(path))
    }

    fn len(&self) -> usize {
        self.any_host.len() + self.by_host.values().map(HashMap::len).sum::<usize>()
    }
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            prefix: Paths::default(),
            exact: Paths::default(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Builds a table from `(route, app)` pairs; later pairs win on duplicates.
    pub fn new(entries: impl IntoIterator<Item = (Route, T)>) -> Self {
        let mut table = Self::default();
        for (route, app) in entries {
            let Route { path, host, exact } = route.normalised();
            let paths = if exact {
                &mut table.exact
            } else {
                &mut table.prefix
            };
            match host {
                Some(h) => paths.by_host.entry(h).or_default().insert(path, app),
                None => paths.any_host.insert(path, app),
            };
        }
        table
    }

    /// The app for a request: an exact route of its path, else the longest matching prefix;
    /// a host route beats a hostless one of the same length. Costs one or two hash lookups
    /// per path segment, whatever the size.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&T> {
        let host = host.map(normalise_host);
        let mut candidate = normalise_path(path);
        if !self.exact.any_host.is_empty() || !self.exact.by_host.is_empty() {
            let exact_host = host.as_ref().and_then(|h| self.exact.by_host.get(h));
            if let Some(app) = self.exact.get(exact_host, candidate) {
                return Some(app);
            }
        }
        let host_routes = host.as_ref().and_then(|h| self.prefix.by_host.get(h));
        loop {
            if let Some(app) = self.prefix.get(host_routes, candidate) {
                return Some(app);
            }
            if candidate == "/" {
                return None;
            }
            candidate = match candidate.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &candidate[..i],
            };
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.prefix.len() + self.exact.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let route = |host: Option<&str>, path: &str| Route {
            host: host.map(String::from),
            path: path.trim_start_matches('=').into(),
            exact: path.starts_with('='),
        };
        let table = RouteTable::new([
            (route(None, "/"), "root"),
            (route(None, "/hello"), "hello"),
            (route(None, "/hello/deep/"), "deep"),
            (route(Some("example.com"), "/hello"), "example-hello"),
            (route(Some("api.example.com"), "/"), "api"),
            (route(None, "=/exact"), "exact"),
            (route(None, "/exact"), "under-exact"),
            (route(Some("example.com"), "=/only"), "example-exact"),
        ]);
        let cases = [
            (None, "/hello", "hello"),
            (None, "/hello/", "hello"),
            (None, "/hello/x?q=1", "hello"),
            (None, "/helloworld", "root"),
            (None, "/hello/deep/er", "deep"),
            (None, "/other", "root"),
            (Some("example.com"), "/hello/x", "example-hello"),
            (Some("EXAMPLE.com:8080"), "/hello", "example-hello"),
            (Some("example.com"), "/", "root"),
            (Some("example.com"), "/hello/deep", "deep"),
            (Some("api.example.com"), "/hello", "hello"),
            (Some("api.example.com"), "/x", "api"),
            (Some("other.com"), "/hello", "hello"),
            (None, "/exact", "exact"),
            (None, "/exact/", "exact"),
            (None, "/exact/x", "under-exact"),
            (Some("example.com"), "/only", "example-exact"),
            (Some("example.com"), "/only/x", "root"),
            (Some("other.com"), "/exact", "exact"),
        ];
        for (host, path, want) in cases {
            let path_only = path.split('?').next().unwrap();
            assert_eq!(
                table.lookup(host, path_only),
                Some(&want),
                "{host:?} {path}"
            );
        }
        let empty: RouteTable<&str> = RouteTable::new([(route(None, "/a"), "a")]);
        assert_eq!(empty.lookup(None, "/b"), None);
        assert_eq!(empty.lookup(None, "/"), None);
    }
}
