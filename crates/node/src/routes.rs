//! The route table: (host, path prefix) → app, matched on `/` boundaries; routes and
//! requests are normalised as `shoal_api::Route::normalised` says, like the server's claims.

use arc_swap::ArcSwap;
use shoal_api::{Route, normalise_host, normalise_path};
use shoal_runtime::HttpApp;
use std::collections::HashMap;
use std::sync::Arc;

/// The live route table, swapped atomically when apps change; readers never block.
pub type Routes = Arc<ArcSwap<RouteTable<Arc<HttpApp>>>>;

/// An immutable snapshot of every route on this node, mapping to `T` (an app).
pub struct RouteTable<T> {
    by_host: HashMap<String, HashMap<String, T>>,
    any_host: HashMap<String, T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            by_host: HashMap::new(),
            any_host: HashMap::new(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Builds a table from `(route, app)` pairs; later pairs win on duplicates.
    pub fn new(entries: impl IntoIterator<Item = (Route, T)>) -> Self {
        let mut table = Self::default();
        for (route, app) in entries {
            let Route { path, host } = route.normalised();
            match host {
                Some(h) => table.by_host.entry(h).or_default().insert(path, app),
                None => table.any_host.insert(path, app),
            };
        }
        table
    }

    /// The app for a request: the longest matching prefix; a host route beats a hostless one
    /// of the same length. Costs one or two hash lookups per path segment, whatever the size.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&T> {
        let host_routes = host.and_then(|h| self.by_host.get(&normalise_host(h)));
        let mut candidate = normalise_path(path);
        loop {
            if let Some(app) = host_routes.and_then(|r| r.get(candidate)) {
                return Some(app);
            }
            if let Some(app) = self.any_host.get(candidate) {
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
        self.any_host.len() + self.by_host.values().map(HashMap::len).sum::<usize>()
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
            path: path.into(),
        };
        let table = RouteTable::new([
            (route(None, "/"), "root"),
            (route(None, "/hello"), "hello"),
            (route(None, "/hello/deep/"), "deep"),
            (route(Some("example.com"), "/hello"), "example-hello"),
            (route(Some("api.example.com"), "/"), "api"),
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
