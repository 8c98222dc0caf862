//! Calls between apps in memory: a request to `http://APP.NAMESPACE.shoal.internal/…` that the
//! caller's allow-list grants is served by that app in this process — no socket, no ingress
//! hop — on a fresh instance with the callee's own limits and capabilities.
//!
//! # Rules
//! - Only an entry that names the app (`http://web.default.shoal.internal`) or the apps of a
//!   namespace (`http://*.default.shoal.internal`) grants it: `*` opens the internet, not the
//!   node's apps.
//! - A call stays within the caller's namespace: another namespace's apps are not reachable
//!   this way, whatever the entry says.
//! - A chain is at most [`shoal_runtime::MAX_DEPTH`] hops (the next is refused with
//!   `loop-detected`), and the first request's deadline bounds every hop (see
//!   [`shoal_runtime::Hop`]).

use shoal_api::{Destination, HostPattern, OutboundRule};
use std::future::Future;
use std::pin::Pin;
use wasmtime_wasi_http::WasiBody;

/// The domain apps are called in memory under.
pub const DOMAIN: &str = "shoal.internal";

/// A response an app gives an in-memory call.
pub type Answer = Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>>;

/// The apps a node serves, as callees of in-memory calls.
pub trait LocalApps: Send + Sync + 'static {
    /// Serves `request` with app `name` of `namespace`; `None` when this node does not
    /// serve it.
    fn call(&self, namespace: &str, name: &str, request: http::Request<WasiBody>)
    -> Option<Answer>;
}

/// A node that serves no app in memory (the capability tested alone).
pub struct NoApps;

impl LocalApps for NoApps {
    fn call(&self, _: &str, _: &str, _: http::Request<WasiBody>) -> Option<Answer> {
        None
    }
}

/// `(namespace, app)` of a host `APP.NAMESPACE.shoal.internal`.
pub fn target(host: &str) -> Option<(&str, &str)> {
    let (app, namespace) = host
        .strip_suffix(DOMAIN)?
        .strip_suffix('.')?
        .split_once('.')?;
    let valid = !app.is_empty() && !namespace.is_empty() && !namespace.contains('.');
    valid.then_some((namespace, app))
}

/// Whether `rule` grants calls to `dest`, an app in memory: it must name the app, or every
/// app of its namespace (never `*`).
pub fn grants(rule: &OutboundRule, dest: &Destination) -> bool {
    let named = match &rule.host {
        HostPattern::Exact(_) => true,
        HostPattern::Subdomain(domain) => domain
            .strip_suffix(DOMAIN)
            .and_then(|d| d.strip_suffix('.'))
            .is_some_and(|ns| !ns.is_empty() && !ns.contains('.')),
        HostPattern::Any | HostPattern::Ip(_) => false,
    };
    named && rule.allows(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(url: &str) -> Destination {
        let uri: http::Uri = url.parse().unwrap();
        Destination {
            scheme: uri.scheme_str().unwrap().to_string(),
            host: uri.host().unwrap().to_string(),
            port: uri.port_u16().unwrap_or(80),
        }
    }

    #[test]
    fn an_app_is_named_by_its_host() {
        assert_eq!(
            target("web.default.shoal.internal"),
            Some(("default", "web"))
        );
        for not in [
            "shoal.internal",
            "default.shoal.internal",
            "a.b.c.shoal.internal",
            "web.defaultshoal.internal",
            ".default.shoal.internal",
            "web.default.shoal.internal.example.com",
        ] {
            assert_eq!(target(not), None, "{not}");
        }
    }

    #[test]
    fn only_an_entry_naming_the_app_or_its_namespace_grants_a_call() {
        let web = dest("http://web.default.shoal.internal/x");
        for (entry, granted) in [
            ("http://web.default.shoal.internal", true),
            ("http://*.default.shoal.internal", true),
            ("http://web.default.shoal.internal:*", true),
            ("http://*", false),
            ("http://*:*", false),
            ("http://*.shoal.internal", false),
            ("https://web.default.shoal.internal", false),
            ("http://other.default.shoal.internal", false),
            ("http://web.default.shoal.internal:8080", false),
        ] {
            let rule = OutboundRule::parse(entry).unwrap();
            assert_eq!(grants(&rule, &web), granted, "{entry}");
        }
    }
}
