//! Spin's HTTP routes (`/...` wildcards, exact paths, `:name` parameters) as Shoal routes.

use super::schema::RouteSpec;
use shoal_api::{Route, valid_param_name};

/// A Spin route as a Shoal route: `/...` (or a trailing `/*`) is a prefix, anything else
/// exact; `None` for `{ private = true }` (the component is reached only from the
/// application's other components, `http://ID.spin.internal`).
pub(super) fn route(spec: &RouteSpec) -> Result<Option<Route>, String> {
    let pattern = match spec {
        RouteSpec::Pattern(p) => p,
        RouteSpec::Private(p) if p.private => return Ok(None),
        RouteSpec::Private(_) => {
            return Err("route must be a string pattern or '{ private = true }'".into());
        }
    };
    let path = if pattern.starts_with('/') {
        pattern.clone()
    } else {
        format!("/{pattern}")
    };
    if let Some(bad) = path
        .split('/')
        .filter_map(|s| s.strip_prefix(':'))
        .find(|name| !valid_param_name(name))
    {
        return Err(format!(
            "\"{pattern}\": route parameter ':{bad}' must be named with letters, digits, '_' or '-' (/users/:id)"
        ));
    }
    let (path, exact) = match path
        .strip_suffix("/...")
        .or_else(|| path.strip_suffix("/*"))
    {
        Some(prefix) => (
            if prefix.is_empty() { "/" } else { prefix }.to_string(),
            false,
        ),
        None => (path.clone(), true),
    };
    if path.contains("...") || path.contains('*') || path.contains(['?', '#', ' ']) {
        return Err(format!(
            "\"{pattern}\": a wildcard may only end a route (/prefix/...)"
        ));
    }
    let trimmed = path.trim_end_matches('/');
    let path = if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    };
    // `/` exact is the root only; as a prefix it is everything.
    Ok(Some(Route {
        path,
        host: None,
        exact,
    }))
}
