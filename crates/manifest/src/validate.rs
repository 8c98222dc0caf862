//! Semantic checks that the type system cannot express, shared by the CLI and the server.

use shoal_api::{
    App, DEFAULT_NAMESPACE, DurationSpec, Job, JobSpec, ObjectMeta, Quantity, Schedule,
    validate_dns_label,
};
use std::collections::{BTreeMap, HashSet};

/// One invalid field: its dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// e.g. `spec.routes[1].path`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn fail(path: impl Into<String>, message: impl Into<String>) -> Result<(), FieldError> {
    Err(FieldError {
        path: path.into(),
        message: message.into(),
    })
}

/// Checks an App beyond its shape: names, routes, limits, env.
///
/// # Errors
/// The first invalid field.
pub fn validate_app(app: &App) -> Result<(), FieldError> {
    if app.kind != "App" {
        return fail("kind", format!("'{}' is not App", app.kind));
    }
    validate_meta(&app.metadata)?;
    let spec = &app.spec;
    validate_component(&spec.component)?;
    if spec.routes.is_empty() {
        return fail(
            "spec.routes",
            "must list at least one route, e.g. - path: /hello",
        );
    }
    let mut seen = HashSet::new();
    for (i, route) in spec.routes.iter().enumerate() {
        let at = format!("spec.routes[{i}]");
        if !route.path.starts_with('/') {
            return fail(
                format!("{at}.path"),
                format!("'{}' must start with '/'", route.path),
            );
        }
        if route.path.contains(['?', '#', ' ']) || route.path.contains("//") {
            return fail(
                format!("{at}.path"),
                format!(
                    "'{}' must be a plain path prefix without query, fragment, spaces or '//'",
                    route.path
                ),
            );
        }
        if let Some(host) = &route.host {
            let valid = !host.is_empty()
                && host
                    .split('.')
                    .all(|label| validate_dns_label(label).is_ok());
            if !valid {
                return fail(
                    format!("{at}.host"),
                    format!("'{host}' is not a lowercase DNS host name (no port, no scheme)"),
                );
            }
        }
        if !seen.insert(route.clone()) {
            return fail(at, format!("route {route} is listed twice"));
        }
    }
    validate_env(&spec.env)?;
    for (i, entry) in spec.capabilities.outbound.iter().enumerate() {
        if let Err(m) = shoal_api::OutboundRule::parse(entry) {
            return fail(format!("spec.capabilities.outbound[{i}]"), m);
        }
    }
    let mut buckets = HashSet::new();
    for (i, bucket) in spec.capabilities.keyvalue.iter().enumerate() {
        let valid = !bucket.is_empty()
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return fail(
                format!("spec.capabilities.keyvalue[{i}]"),
                format!(
                    "'{bucket}' is not a bucket name; use 1-63 lowercase letters, digits, '-' or '_'"
                ),
            );
        }
        if !buckets.insert(bucket) {
            return fail(
                format!("spec.capabilities.keyvalue[{i}]"),
                format!("bucket '{bucket}' is listed twice"),
            );
        }
    }
    let mut mounts = HashSet::new();
    if spec.files.len() > 16 {
        return fail("spec.files", "at most 16 mounts");
    }
    for (i, f) in spec.files.iter().enumerate() {
        let at = format!("spec.files[{i}]");
        if f.source.trim().is_empty() {
            return fail(
                format!("{at}.source"),
                "must name a directory relative to the manifest",
            );
        }
        let m = &f.mount;
        let clean = m.starts_with('/')
            && m.len() > 1
            && !m.ends_with('/')
            && m[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !clean {
            return fail(
                format!("{at}.mount"),
                format!(
                    "'{m}' must be an absolute path like /static, without '.', '..' or empty segments"
                ),
            );
        }
        if !mounts.insert(m.as_str()) {
            return fail(format!("{at}.mount"), format!("'{m}' is mounted twice"));
        }
    }
    for key in spec.config.keys() {
        if key.is_empty() {
            return fail("spec.config", "keys must not be empty");
        }
    }
    let limits = &spec.limits;
    validate_memory_cpu(limits.memory.as_ref(), limits.cpu.as_ref())?;
    if let Some(t) = &limits.timeout
        && t.get().is_zero()
    {
        return fail("spec.limits.timeout", "must be greater than zero, e.g. 30s");
    }
    if limits.concurrency == Some(0) {
        return fail("spec.limits.concurrency", "must be at least 1");
    }
    if let Some(check) = &spec.health_check
        && (!check.path.starts_with('/') || check.path.contains([' ', '#']))
    {
        return fail(
            "spec.healthCheck.path",
            format!(
                "'{}' must be a path starting with '/', without spaces or fragment, e.g. /healthz",
                check.path
            ),
        );
    }
    if let Some(idle) = spec.scale.as_ref().and_then(|s| s.idle_after.as_ref())
        && idle.get() < std::time::Duration::from_secs(1)
    {
        return fail(
            "spec.scale.idleAfter",
            format!("'{idle}' is too short; use at least 1s (or toZero: false to stay active)"),
        );
    }
    if let Some(p) = &spec.placement {
        if p.replicas == Some(shoal_api::Replicas::Count(0)) {
            return fail(
                "spec.placement.replicas",
                "must be at least 1 (delete the app to run it nowhere), or all",
            );
        }
        for k in p.node_selector.keys().chain(p.spread_by.iter()) {
            if k.is_empty() || k.contains(['=', ',']) {
                return fail(
                    "spec.placement",
                    format!("'{k}' is not a label key (no '=' or ',', not empty)"),
                );
            }
        }
    }
    if let Some(reuse) = &spec.reuse
        && !(2..=shoal_api::Reuse::MAX_REQUESTS).contains(&reuse.max_requests)
    {
        return fail(
            "spec.reuse.maxRequests",
            format!(
                "{} is out of range; use 2 to {} (omit spec.reuse for a fresh instance per request)",
                reuse.max_requests,
                shoal_api::Reuse::MAX_REQUESTS
            ),
        );
    }
    Ok(())
}

/// Checks a Job beyond its shape: names, env, limits, retries, schedule.
///
/// # Errors
/// The first invalid field.
pub fn validate_job(job: &Job) -> Result<(), FieldError> {
    if job.kind != "Job" {
        return fail("kind", format!("'{}' is not Job", job.kind));
    }
    validate_meta(&job.metadata)?;
    let spec = &job.spec;
    validate_component(&spec.component)?;
    validate_env(&spec.env)?;
    for (i, arg) in spec.args.iter().enumerate() {
        if arg.contains('\0') {
            return fail(format!("spec.args[{i}]"), "must not contain NUL");
        }
    }
    validate_memory_cpu(spec.limits.memory.as_ref(), spec.limits.cpu.as_ref())?;
    if let Some(t) = &spec.timeout
        && t.get().is_zero()
    {
        return fail("spec.timeout", "must be greater than zero, e.g. 10m");
    }
    if spec.retries.is_some_and(|r| r > JobSpec::MAX_RETRIES) {
        return fail(
            "spec.retries",
            format!("at most {} retries", JobSpec::MAX_RETRIES),
        );
    }
    if spec.history_limit.is_some_and(|h| h > JobSpec::MAX_HISTORY) {
        return fail(
            "spec.historyLimit",
            format!("at most {} finished runs are kept", JobSpec::MAX_HISTORY),
        );
    }
    if spec
        .stdin
        .as_ref()
        .is_some_and(|s| s.len() > JobSpec::MAX_STDIN)
    {
        return fail(
            "spec.stdin",
            format!(
                "is larger than {} KiB; ship bigger inputs as a file",
                JobSpec::MAX_STDIN >> 10
            ),
        );
    }
    match &spec.schedule {
        Some(text) => {
            Schedule::parse(text)
                .map(drop)
                .or_else(|m| fail("spec.schedule", m))?;
        }
        None if spec.concurrency_policy.is_some() => {
            return fail(
                "spec.concurrencyPolicy",
                "applies only to scheduled jobs; add spec.schedule or remove it",
            );
        }
        None => {}
    }
    Ok(())
}

fn validate_meta(meta: &ObjectMeta) -> Result<(), FieldError> {
    validate_dns_label(&meta.name).or_else(|m| fail("metadata.name", m))?;
    if meta.namespace != DEFAULT_NAMESPACE {
        validate_dns_label(&meta.namespace).or_else(|m| fail("metadata.namespace", m))?;
    }
    Ok(())
}

fn validate_component(component: &str) -> Result<(), FieldError> {
    if component.trim().is_empty() {
        return fail(
            "spec.component",
            "must name a .wasm file (relative to the manifest) or sha256:<digest>",
        );
    }
    Ok(())
}

fn validate_env(env: &BTreeMap<String, String>) -> Result<(), FieldError> {
    for key in env.keys() {
        let valid = !key.is_empty() && !key.contains(['=', '\0']);
        if !valid {
            return fail(
                format!("spec.env.{key}"),
                "environment variable names must be non-empty and contain no '=' or NUL",
            );
        }
    }
    Ok(())
}

fn validate_memory_cpu(
    memory: Option<&Quantity>,
    cpu: Option<&DurationSpec>,
) -> Result<(), FieldError> {
    if let Some(m) = memory
        && m.bytes() < 64 << 10
    {
        return fail(
            "spec.limits.memory",
            format!("'{m}' is less than one WebAssembly page; use at least 64Ki"),
        );
    }
    if let Some(cpu) = cpu
        && cpu.get().as_millis() < 10
    {
        return fail(
            "spec.limits.cpu",
            format!("'{cpu}' is too small to account reliably; use at least 10ms"),
        );
    }
    Ok(())
}
