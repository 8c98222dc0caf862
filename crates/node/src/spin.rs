//! The request a Spin component expects: the `spin-*` headers Spin's HTTP trigger sets
//! (spinframework/spin, `trigger-http` headers), added at the node that serves the request.
//!
//! An App labelled `shoal.dev/spin-app` (what `shoal apply -f spin.toml` makes) gets them on
//! every request, computed from the route that matched: `spin-full-url`, `spin-path-info`
//! (the path below a wildcard route; empty for an exact one), `spin-matched-route` and
//! `spin-raw-component-route` (the route as Spin writes it, `/prefix/...`),
//! `spin-component-route` (without `/...`), `spin-base-path` (`/`), `spin-client-addr`, and
//! for each parameter of the route (`/users/:user_id/...`) the segment it matched
//! (`spin-path-match-user-id`).
//! Any `spin-*` header the client sent is removed first, so a guest sees each exactly once
//! and none it could be fooled by.

use http::{HeaderMap, HeaderName, HeaderValue};
use shoal_api::{Route, Segment, segments};
use std::net::SocketAddr;

/// The Spin shape of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpinRoute {
    /// `/prefix/...` or the exact path, as in `spin.toml`.
    raw: String,
    /// The raw route without `/...`.
    component: String,
    /// How many segments the route has: the path info is what follows them.
    depth: usize,
    /// Each parameter's place among the segments and its header name.
    params: Vec<(usize, HeaderName)>,
    /// A prefix route (`/...`); an exact one has no path info.
    wildcard: bool,
}

impl SpinRoute {
    /// The Spin shape of `route` (normalised as the route table keys it).
    pub fn of(route: &Route) -> Self {
        let route = route.normalised();
        let base = if route.path == "/" {
            ""
        } else {
            route.path.as_str()
        };
        let mut depth = 0;
        let mut params = Vec::new();
        for (i, segment) in segments(base).enumerate() {
            depth = i + 1;
            if let Segment::Param(name) = segment {
                let header =
                    format!("spin-path-match-{}", name.replace('_', "-")).to_ascii_lowercase();
                if let Ok(header) = HeaderName::try_from(header) {
                    params.push((i, header));
                }
            }
        }
        let (raw, component) = if route.exact {
            (route.path.clone(), route.path.clone())
        } else {
            (format!("{base}/..."), base.to_string())
        };
        Self {
            raw,
            component,
            depth,
            params,
            wildcard: !route.exact,
        }
    }

    /// Sets the headers of `req`, for `host`, from `client`.
    pub fn set_request_headers<B>(
        &self,
        req: &mut http::Request<B>,
        host: Option<&str>,
        client: Option<SocketAddr>,
    ) {
        let target = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        self.set_headers(req.headers_mut(), host, &target, client);
    }

    /// Sets the headers for a request to `path_and_query` on `host` from `client`.
    pub fn set_headers(
        &self,
        headers: &mut HeaderMap,
        host: Option<&str>,
        path_and_query: &str,
        client: Option<SocketAddr>,
    ) {
        let stale: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for k in stale {
            headers.remove(k);
        }
        let path = path_and_query.split('?').next().unwrap_or("");
        // The route's segments, then the path info: `/rest` below `/base/:a/:b/...`.
        let mut end = 0;
        let mut matched = Vec::with_capacity(self.depth);
        for _ in 0..self.depth {
            let start = (end + 1).min(path.len());
            end = path[start..].find('/').map_or(path.len(), |i| start + i);
            matched.push(&path[start..end]);
        }
        let info = if self.wildcard { &path[end..] } else { "" };
        let full = format!("http://{}{path_and_query}", host.unwrap_or("localhost"));
        let mut set = |name: HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        set(HeaderName::from_static("spin-full-url"), &full);
        set(HeaderName::from_static("spin-path-info"), info);
        set(HeaderName::from_static("spin-matched-route"), &self.raw);
        set(
            HeaderName::from_static("spin-raw-component-route"),
            &self.raw,
        );
        set(
            HeaderName::from_static("spin-component-route"),
            &self.component,
        );
        set(HeaderName::from_static("spin-base-path"), "/");
        for (i, name) in &self.params {
            set(name.clone(), matched.get(*i).copied().unwrap_or(""));
        }
        if let Some(client) = client {
            set(
                HeaderName::from_static("spin-client-addr"),
                &client.to_string(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(route: Route, path: &str) -> Vec<(String, String)> {
        let mut h = HeaderMap::new();
        h.insert("spin-path-info", HeaderValue::from_static("/forged"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        let client = "127.0.0.1:54321".parse().ok();
        SpinRoute::of(&route).set_headers(&mut h, Some("h"), path, client);
        let mut out: Vec<_> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        out.sort();
        out
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn spin_headers_as_spin_sets_them() {
        let wildcard = Route {
            path: "/foo".into(),
            host: None,
            exact: false,
        };
        assert_eq!(
            headers(wildcard.clone(), "/foo/bar?x=1"),
            pairs(&[
                ("accept", "*/*"),
                ("spin-base-path", "/"),
                ("spin-client-addr", "127.0.0.1:54321"),
                ("spin-component-route", "/foo"),
                ("spin-full-url", "http://h/foo/bar?x=1"),
                ("spin-matched-route", "/foo/..."),
                ("spin-path-info", "/bar"),
                ("spin-raw-component-route", "/foo/..."),
            ])
        );
        let info = |route: &Route, path: &str| {
            headers(route.clone(), path)
                .into_iter()
                .find(|(k, _)| k == "spin-path-info")
                .unwrap()
                .1
        };
        assert_eq!(info(&wildcard, "/foo"), "");
        assert_eq!(info(&wildcard, "/foo/"), "/");
        assert_eq!(info(&wildcard, "/foo/hello/"), "/hello/");
        let root = Route {
            path: "/".into(),
            host: None,
            exact: false,
        };
        assert_eq!(info(&root, "/a/b"), "/a/b");
        let exact = Route {
            path: "/exact".into(),
            host: None,
            exact: true,
        };
        assert_eq!(info(&exact, "/exact"), "");
        assert_eq!(SpinRoute::of(&root).raw, "/...");
        assert_eq!(SpinRoute::of(&exact).raw, "/exact");
        let params = Route {
            path: "/base/:path_segment/:path_end".into(),
            host: None,
            exact: false,
        };
        assert_eq!(
            headers(params, "/base/path/end/rest?key=value"),
            pairs(&[
                ("accept", "*/*"),
                ("spin-base-path", "/"),
                ("spin-client-addr", "127.0.0.1:54321"),
                ("spin-component-route", "/base/:path_segment/:path_end"),
                ("spin-full-url", "http://h/base/path/end/rest?key=value"),
                ("spin-matched-route", "/base/:path_segment/:path_end/..."),
                ("spin-path-info", "/rest"),
                ("spin-path-match-path-end", "end"),
                ("spin-path-match-path-segment", "path"),
                (
                    "spin-raw-component-route",
                    "/base/:path_segment/:path_end/..."
                ),
            ])
        );
        let exact_param = Route {
            path: "/users/:id".into(),
            host: None,
            exact: true,
        };
        let got = headers(exact_param, "/users/7");
        assert!(
            got.contains(&("spin-path-match-id".into(), "7".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&("spin-path-info".into(), "".into())),
            "{got:?}"
        );
    }
}
