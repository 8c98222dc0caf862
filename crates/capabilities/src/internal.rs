//! Calls between apps in memory: a request to `http://APP.NAMESPACE.shoal.internal/…` (or,
//! from a component of a Spin application, `http://COMPONENT.spin.internal/…` for another
//! component of it) that the caller's allow-list grants is served by that app in this process
//! — no socket, no ingress hop — on a fresh instance with the callee's own limits and
//! capabilities.
//!
//! # Rules
//! - Only an entry that names the app (`http://web.default.shoal.internal`) or the apps of a
//!   namespace (`http://*.default.shoal.internal`) grants it — or for Spin, names the
//!   component (`http://web.spin.internal`) or every component of the application
//!   (`http://*.spin.internal`), or `http://self` for requests to the application's own
//!   routes (routed by path among its components): `*` opens the internet, not the node's
//!   apps.
//! - A call stays within the caller's namespace (a Spin call within its application):
//!   another namespace's apps are not reachable this way, whatever the entry says.
//! - A chain is at most [`shoal_runtime::MAX_DEPTH`] hops (the next is refused with
//!   `loop-detected`), and the first request's deadline bounds every hop (see
//!   [`shoal_runtime::Hop`]).

use shoal_api::{Destination, HostPattern, OutboundRule};
use std::future::Future;
use std::pin::Pin;
use wasmtime_wasi_http::WasiBody;

/// The domain apps are called in memory under.
pub const DOMAIN: &str = "shoal.internal";
/// The domain a Spin component calls the other components of its application under.
pub const SPIN_DOMAIN: &str = "spin.internal";

/// The host a Spin component calls its own application at (`http://self/PATH`).
pub const SPIN_SELF: &str = "self";

/// A response an app gives an in-memory call.
pub type Answer = Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>>;

/// Who an in-memory call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee<'a> {
    /// App `name` of `namespace` (`NAME.NAMESPACE.shoal.internal`).
    App {
        /// Its namespace.
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
    /// Component `id` of the caller's Spin application (`ID.spin.internal`).
    Component(&'a str),
    /// The caller's Spin application, routed by path among its components (`self`).
    SpinSelf,
}

impl std::fmt::Display for Callee<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Callee::App { namespace, name } => write!(f, "app/{name} of namespace {namespace}"),
            Callee::Component(id) => write!(f, "component {id} of this Spin application"),
            Callee::SpinSelf => write!(
                f,
                "a component of this Spin application routed there (self)"
            ),
        }
    }
}

/// The apps a node serves, as callees of in-memory calls.
pub trait LocalApps: Send + Sync + 'static {
    /// Serves `request`, made by app `caller` of `namespace`, with `callee` (an app of the
    /// same namespace); `None` when this node does not serve it.
    fn call(
        &self,
        namespace: &str,
        caller: &str,
        callee: Callee<'_>,
        request: http::Request<WasiBody>,
    ) -> Option<Answer>;
}

/// A node that serves no app in memory (the capability tested alone).
pub struct NoApps;

impl LocalApps for NoApps {
    fn call(&self, _: &str, _: &str, _: Callee<'_>, _: http::Request<WasiBody>) -> Option<Answer> {
        None
    }
}

/// The callee a host names: `APP.NAMESPACE.shoal.internal`, `COMPONENT.spin.internal`, or
/// Spin's `self`.
pub fn target(host: &str) -> Option<Callee<'_>> {
    if host == SPIN_SELF {
        return Some(Callee::SpinSelf);
    }
    if let Some(id) = host
        .strip_suffix(SPIN_DOMAIN)
        .and_then(|h| h.strip_suffix('.'))
    {
        return (!id.is_empty() && !id.contains('.')).then_some(Callee::Component(id));
    }
    let (name, namespace) = host
        .strip_suffix(DOMAIN)?
        .strip_suffix('.')?
        .split_once('.')?;
    let valid = !name.is_empty() && !namespace.is_empty() && !namespace.contains('.');
    valid.then_some(Callee::App { namespace, name })
}

/// Whether `rule` grants calls to `dest`, whose host names an app called in memory: the
/// rule must name it, or every app of its namespace (every component of its Spin
/// application) — never `*`.
pub fn grants(rule: &OutboundRule, dest: &Destination) -> bool {
    let named = match (&rule.host, target(&dest.host)) {
        (HostPattern::Exact(_), Some(_)) => true,
        (HostPattern::Subdomain(domain), Some(Callee::App { .. })) => domain
            .strip_suffix(DOMAIN)
            .and_then(|d| d.strip_suffix('.'))
            .is_some_and(|ns| !ns.is_empty() && !ns.contains('.')),
        (HostPattern::Subdomain(domain), Some(Callee::Component(_))) => domain == SPIN_DOMAIN,
        _ => false,
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
        let web = Callee::App {
            namespace: "default",
            name: "web",
        };
        assert_eq!(target("web.default.shoal.internal"), Some(web));
        assert_eq!(target("web.spin.internal"), Some(Callee::Component("web")));
        assert_eq!(target("self"), Some(Callee::SpinSelf));
        let own = dest("http://self/x");
        assert!(grants(&OutboundRule::parse("http://self").unwrap(), &own));
        assert!(!grants(&OutboundRule::parse("http://*").unwrap(), &own));
        for not in [
            "shoal.internal",
            "default.shoal.internal",
            "a.b.c.shoal.internal",
            "web.defaultshoal.internal",
            ".default.shoal.internal",
            "web.default.shoal.internal.example.com",
            "spin.internal",
            "a.b.spin.internal",
        ] {
            assert_eq!(target(not), None, "{not}");
        }
    }

    #[test]
    fn only_an_entry_naming_the_app_or_its_namespace_grants_a_call() {
        let web = dest("http://web.default.shoal.internal/x");
        let component = dest("http://web.spin.internal/x");
        for (entry, to_app, to_component) in [
            ("http://web.default.shoal.internal", true, false),
            ("http://*.default.shoal.internal", true, false),
            ("http://web.default.shoal.internal:*", true, false),
            ("http://*", false, false),
            ("http://*:*", false, false),
            ("http://*.shoal.internal", false, false),
            ("https://web.default.shoal.internal", false, false),
            ("http://other.default.shoal.internal", false, false),
            ("http://web.default.shoal.internal:8080", false, false),
            ("http://web.spin.internal", false, true),
            ("http://*.spin.internal", false, true),
            ("http://other.spin.internal", false, false),
            ("http://self", false, false),
        ] {
            let rule = OutboundRule::parse(entry).unwrap();
            assert_eq!(grants(&rule, &web), to_app, "{entry} to an app");
            assert_eq!(
                grants(&rule, &component),
                to_component,
                "{entry} to a component"
            );
        }
    }
}
