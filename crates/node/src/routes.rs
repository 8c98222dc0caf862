//! The route table: (host, path prefix) → app, matched on `/` boundaries; routes and
//! requests are normalised as `shoal_api::Route::normalised` says, like the server's claims.
//! A route with parameters (`/users/:id/...`) is indexed by its literal head (`/users`) and
//! matched segment by segment when a request's path walks past that head.

use crate::spin::SpinRoute;
use arc_swap::ArcSwap;
use shoal_api::{Route, Segment, normalise_host, normalise_path, segments};
use shoal_runtime::HttpApp;
use std::cmp::Reverse;
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
    patterns: Paths<Vec<Pattern<T>>>,
}

/// A route with parameters, below its literal head.
struct Pattern<T> {
    /// The segments after the head: `None` a parameter, `Some` a literal.
    rest: Vec<Option<String>>,
    exact: bool,
    app: T,
}

impl<T> Pattern<T> {
    /// Whether the path below the head (`/a/b`, or `` for the head itself) matches.
    fn matches(&self, below: &str) -> bool {
        let mut path = below.split('/').skip(1);
        for want in &self.rest {
            match (path.next(), want) {
                (Some(got), Some(lit)) if got == lit => {}
                (Some(got), None) if !got.is_empty() => {}
                _ => return false,
            }
        }
        !self.exact || path.next().is_none()
    }

    /// The order patterns of one head are tried in, most specific first: more segments, then
    /// a literal before a parameter at the first place they differ, then exact before prefix.
    fn rank(&self) -> (Reverse<usize>, Vec<bool>, bool) {
        let params = self.rest.iter().map(Option::is_none).collect();
        (Reverse(self.rest.len()), params, !self.exact)
    }
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
            patterns: Paths::default(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Builds a table from `(route, app)` pairs; later pairs win on duplicates.
    pub fn new(entries: impl IntoIterator<Item = (Route, T)>) -> Self {
        let mut table = Self::default();
        for (route, app) in entries {
            let Route { path, host, exact } = route.normalised();
            if path.contains("/:") {
                table.add_pattern(host, &path, exact, app);
                continue;
            }
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
        for list in table.patterns.any_host.values_mut().chain(
            table
                .patterns
                .by_host
                .values_mut()
                .flat_map(HashMap::values_mut),
        ) {
            // Stable: of two routes of one shape (claims forbid it), the later pair wins.
            list.reverse();
            list.sort_by_key(Pattern::rank);
        }
        table
    }

    fn add_pattern(&mut self, host: Option<String>, path: &str, exact: bool, app: T) {
        let mut head = String::new();
        let mut rest = Vec::new();
        for segment in segments(path) {
            match (segment, rest.is_empty()) {
                (Segment::Literal(s), true) => {
                    head.push('/');
                    head.push_str(s);
                }
                (Segment::Literal(s), false) => rest.push(Some(s.to_string())),
                (Segment::Param(_), _) => rest.push(None),
            }
        }
        if head.is_empty() {
            head.push('/');
        }
        let paths = &mut self.patterns;
        let heads = match host {
            Some(h) => paths.by_host.entry(h).or_default(),
            None => &mut paths.any_host,
        };
        heads
            .entry(head)
            .or_default()
            .push(Pattern { rest, exact, app });
    }

    /// The app for a request: an exact route of its path, else the longest matching prefix
    /// (at one prefix, a route with parameters below it beats the plain prefix); a host route
    /// beats a hostless one of the same length. Costs one or two hash lookups per path segment,
    /// whatever the size, plus a match per route with parameters at a prefix the path has.
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
        let any_patterns = !self.patterns.any_host.is_empty() || !self.patterns.by_host.is_empty();
        let host_patterns = host.as_ref().and_then(|h| self.patterns.by_host.get(h));
        let full = candidate;
        loop {
            if any_patterns {
                let below = if candidate == "/" {
                    full
                } else {
                    &full[candidate.len()..]
                };
                let lists = [
                    host_patterns.and_then(|p| p.get(candidate)),
                    self.patterns.any_host.get(candidate),
                ];
                for list in lists.into_iter().flatten() {
                    if let Some(p) = list.iter().find(|p| p.matches(below)) {
                        return Some(&p.app);
                    }
                }
            }
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
        let patterns = self
            .patterns
            .any_host
            .values()
            .chain(self.patterns.by_host.values().flat_map(HashMap::values));
        self.prefix.len() + self.exact.len() + patterns.map(Vec::len).sum::<usize>()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route on `host`; a path starting with `=` is exact.
    fn route(host: Option<&str>, path: &str) -> Route {
        Route {
            host: host.map(String::from),
            path: path.trim_start_matches('=').into(),
            exact: path.starts_with('='),
        }
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
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

    #[test]
    fn parameters_match_one_segment_and_the_most_specific_route_wins() {
        let table = RouteTable::new([
            (route(None, "/"), "root"),
            (route(None, "/base"), "base"),
            (route(None, "/base/:a/:b"), "two"),
            (route(None, "/base/:a/fixed"), "fixed"),
            (route(None, "=/base/:a"), "one-exact"),
            (route(None, "/base/lit"), "lit"),
            (route(None, "/:any/tail"), "any-tail"),
            (route(Some("example.com"), "/base/:a/:b"), "example-two"),
        ]);
        let cases = [
            (None, "/base/path/end/rest", "two"),
            (None, "/base/path/end", "two"),
            (None, "/base/path/end/", "two"),
            (None, "/base/path/fixed/x", "fixed"),
            (None, "/base/path", "one-exact"),
            (None, "/base/path/", "one-exact"),
            (None, "/base", "base"),
            (None, "/base/lit/end", "lit"),
            (None, "/other/tail/x", "any-tail"),
            (None, "/other/x", "root"),
            (None, "//tail", "root"),
            (Some("example.com"), "/base/p/e", "example-two"),
            (Some("example.com"), "/base/p", "one-exact"),
        ];
        for (host, path, want) in cases {
            assert_eq!(table.lookup(host, path), Some(&want), "{host:?} {path}");
        }
        assert_eq!(table.len(), 8);
    }
}
