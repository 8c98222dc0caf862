//! The request a Spin component expects: the `spin-*` headers Spin's HTTP trigger sets
//! (spinframework/spin, `trigger-http` headers), added at the node that serves the request.
//!
//! An App labelled `shoal.dev/spin-app` (what `shoal apply -f spin.toml` makes) gets them on
//! every request, computed from the route that matched: `spin-full-url`, `spin-path-info`
//! (the path below a wildcard route; empty for an exact one), `spin-matched-route` and
//! `spin-raw-component-route` (the route as Spin writes it, `/prefix/...`),
//! `spin-component-route` (without `/...`), `spin-base-path` (`/`) and `spin-client-addr`.
//! Any `spin-*` header the client sent is removed first, so a guest sees each exactly once
//! and none it could be fooled by.

use http::{HeaderMap, HeaderName, HeaderValue};
use shoal_api::Route;
use std::net::SocketAddr;

/// The Spin shape of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpinRoute {
    /// `/prefix/...` or the exact path, as in `spin.toml`.
    raw: String,
    /// The raw route without `/...`.
    component: String,
    /// The path prefix whose rest is the path info; `None` for an exact route.
    prefix: Option<String>,
}

impl SpinRoute {
    /// The Spin shape of `route` (normalised as the route table keys it).
    pub fn of(route: &Route) -> Self {
        let route = route.normalised();
        if route.exact {
            return Self {
                raw: route.path.clone(),
                component: route.path,
                prefix: None,
            };
        }
        let base = if route.path == "/" {
            ""
        } else {
            route.path.as_str()
        };
        Self {
            raw: format!("{base}/..."),
            component: base.to_string(),
            prefix: Some(base.to_string()),
        }
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
        let info = match &self.prefix {
            Some(prefix) => path.strip_prefix(prefix.as_str()).unwrap_or(""),
            None => "",
        };
        let full = format!("http://{}{path_and_query}", host.unwrap_or("localhost"));
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        set("spin-full-url", &full);
        set("spin-path-info", info);
        set("spin-matched-route", &self.raw);
        set("spin-raw-component-route", &self.raw);
        set("spin-component-route", &self.component);
        set("spin-base-path", "/");
        if let Some(client) = client {
            set("spin-client-addr", &client.to_string());
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
    }
}
