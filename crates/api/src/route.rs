//! Routes, and how hosts and paths are compared: one normalisation for the server's route
//! claims, the node's route table and the outbound allow-list.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One route: an optional host and a path prefix matched on `/` boundaries, or with `exact`
/// the path alone (Spin's routes without `/...`). A segment `:name` is a parameter: it matches
/// any one non-empty segment (`/users/:id` matches `/users/7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// Path prefix, starting with `/`; `/` matches everything.
    pub path: String,
    /// Exact host (without port) this route applies to; any host when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Matches only the path itself, not the paths under it; an exact route wins over a
    /// prefix route of the same path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
}

impl Route {
    /// The route as the node matches it: `/a/` and `/a` are one prefix, hosts compare
    /// without case, port or trailing dot. Two routes with the same normal form are one route.
    pub fn normalised(&self) -> Route {
        Route {
            path: normalise_path(&self.path).to_string(),
            host: self.host.as_deref().map(normalise_host),
            exact: self.exact,
        }
    }

    /// The normalised route with its parameters unnamed (`/users/:id` → `/users/:`): routes of
    /// one shape match the same requests, so they are one route to claims and duplicate checks.
    pub fn shape(&self) -> Route {
        let mut route = self.normalised();
        if route.path.contains(':') {
            route.path = route
                .path
                .split('/')
                .map(|s| if s.starts_with(':') { ":" } else { s })
                .collect::<Vec<_>>()
                .join("/");
        }
        route
    }
}

/// One segment of a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Matches itself.
    Literal(&'a str),
    /// `:name`: matches any one non-empty segment.
    Param(&'a str),
}

/// The segments of a normalised route path (`/` has none).
pub fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix(':') {
            Some(name) => Segment::Param(name),
            None => Segment::Literal(s),
        })
}

/// Whether `name` can name a route parameter: ASCII letters, digits, `_` and `-` (it becomes
/// part of a header name, `spin-path-match-NAME`).
pub fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host}{}", self.path)?,
            None => f.write_str(&self.path)?,
        }
        if self.exact {
            f.write_str(" (exact)")?;
        }
        Ok(())
    }
}

/// A path prefix without its trailing `/` (except for the root): `/a/` and `/a` are the same
/// prefix.
pub fn normalise_path(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

/// The host part of a Host header, authority or URL host, as Shoal compares hosts: no port,
/// lowercase, no trailing dot; an IPv6 literal keeps its brackets (`[::1]:8080` → `[::1]`).
pub fn normalise_host(host: &str) -> String {
    let without_port = match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || host.starts_with('[') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }
        _ => host,
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// The IP address a normalised host is, if it is one (`[::1]` and `::1` alike).
pub fn host_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for (input, want) in [
            ("example.com", "example.com"),
            ("Example.COM:8080", "example.com"),
            ("example.com.", "example.com"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
        ] {
            assert_eq!(normalise_host(input), want, "{input}");
        }
        assert_eq!(host_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(host_ip("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(host_ip("example.com"), None);
    }

    #[test]
    fn one_route_one_normal_form() {
        let route = |host: Option<&str>, path: &str| Route {
            host: host.map(String::from),
            path: path.into(),
            exact: false,
        };
        assert_eq!(route(None, "/api/").normalised(), route(None, "/api"));
        assert_eq!(route(None, "/").normalised(), route(None, "/"));
        assert_eq!(
            route(Some("Example.com."), "/x//").normalised(),
            route(Some("example.com"), "/x")
        );
        assert_eq!(
            route(None, "/users/:id/posts/:post/").shape(),
            route(None, "/users/:/posts/:")
        );
        assert_eq!(
            segments("/users/:id").collect::<Vec<_>>(),
            [Segment::Literal("users"), Segment::Param("id")]
        );
        assert_eq!(segments("/").count(), 0);
        assert!(
            valid_param_name("path_segment") && !valid_param_name("a b") && !valid_param_name("")
        );
    }
}
