//! Semantic checks that the type system cannot express, shared by the CLI and the server.

use shoal_api::{
    App, DEFAULT_NAMESPACE, DurationSpec, FieldError, Job, JobSpec, ObjectMeta, Quantity, Schedule,
    WorkloadSpec, fail, validate_dns_label,
};
use std::collections::HashMap;

/// Checks an App beyond its shape: names, routes, limits, and each capability's part.
///
/// # Errors
/// The first invalid field.
pub fn validate_app(app: &App) -> Result<(), FieldError> {
    if app.kind != "App" {
        return fail("kind", format!("'{}' is not App", app.kind));
    }
    validate_meta(&app.metadata)?;
    let spec = &app.spec;
    let mut seen = HashMap::new();
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
        if let Some(bad) = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix(':'))
            .find(|name| !shoal_api::valid_param_name(name))
        {
            return fail(
                format!("{at}.path"),
                format!(
                    "'{}': parameter ':{bad}' must be named with letters, digits, '_' or '-', e.g. /users/:id",
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
        // `/a` and `/a/`, `/u/:id` and `/u/:name` are one route: compare what the node matches.
        if let Some(first) = seen.insert(route.shape(), i) {
            return fail(
                at,
                format!("route {route} matches what spec.routes[{first}] matches; list it once"),
            );
        }
    }
    shoal_api::capabilities::validate(WorkloadSpec::App(spec))?;
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
    for (name, d) in &spec.dependencies {
        let field = format!("spec.dependencies[\"{name}\"]");
        dependency_name(name).or_else(|m| fail(field.clone(), m))?;
        match (&d.component, &d.app) {
            (None, None) => {
                return fail(
                    field,
                    "names no component: give component (a path, sha256:<digest> or oci:// reference) or app (another app of the namespace)",
                );
            }
            (_, Some(other)) => {
                validate_dns_label(other).or_else(|m| fail(format!("{field}.app"), m))?;
                if *other == app.metadata.name {
                    return fail(
                        format!("{field}.app"),
                        "names this app itself; a component cannot satisfy its own imports",
                    );
                }
            }
            (Some(_), None) => {}
        }
        if d.export
            .as_ref()
            .is_some_and(|e| e.trim().is_empty() || e.contains(' '))
        {
            return fail(
                format!("{field}.export"),
                "must name an export, e.g. ns:pkg/iface@1.0.0",
            );
        }
    }
    if let Some(init) = &spec.init {
        let f = &init.function;
        let (interface, name) = f.rsplit_once('#').unwrap_or(("", f));
        if name.is_empty() || f.contains(char::is_whitespace) || f.matches('#').count() > 1 {
            return fail(
                "spec.init.function",
                format!(
                    "'{f}' is not an exported function's name; write NAME (e.g. wizer-initialize) or INTERFACE#NAME (e.g. my:app/setup#init)"
                ),
            );
        }
        if f.contains('#') && interface.is_empty() {
            return fail(
                "spec.init.function",
                format!("'{f}' names no interface before '#'"),
            );
        }
        if init.timeout.as_ref().is_some_and(|t| t.get().is_zero()) {
            return fail("spec.init.timeout", "must be greater than zero, e.g. 1m");
        }
    }
    if let Some(reuse) = &spec.reuse {
        let max = shoal_api::Reuse::MAX_REQUESTS;
        if let Some(n) = reuse.max_requests
            && !(2..=max).contains(&n)
        {
            return fail(
                "spec.reuse.maxRequests",
                format!(
                    "{n} is out of range; use 2 to {max} (omit spec.reuse for a fresh instance per request)"
                ),
            );
        }
        let max = shoal_api::Reuse::MAX_CONCURRENT;
        if let Some(n) = reuse.max_concurrent
            && !(1..=max).contains(&n)
        {
            return fail(
                "spec.reuse.maxConcurrent",
                format!("{n} is out of range; use 1 to {max}"),
            );
        }
    }
    Ok(())
}

/// Checks a Job beyond its shape: names, limits, retries, schedule, and each capability's
/// part.
///
/// # Errors
/// The first invalid field.
pub fn validate_job(job: &Job) -> Result<(), FieldError> {
    if job.kind != "Job" {
        return fail("kind", format!("'{}' is not Job", job.kind));
    }
    validate_meta(&job.metadata)?;
    let spec = &job.spec;
    shoal_api::capabilities::validate(WorkloadSpec::Job(spec))?;
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
    if spec.stdin.is_some() && spec.stdin_base64.is_some() {
        return fail(
            "spec.stdinBase64",
            "give stdin (text) or stdinBase64 (bytes), not both",
        );
    }
    if let Some(b64) = &spec.stdin_base64 {
        use base64::Engine as _;
        if base64::engine::general_purpose::STANDARD
            .decode(b64)
            .is_err()
        {
            return fail(
                "spec.stdinBase64",
                "is not base64 (standard alphabet, with padding)",
            );
        }
    }
    let (field, len) = match &spec.stdin {
        Some(text) => ("spec.stdin", text.len()),
        None => ("spec.stdinBase64", spec.stdin_bytes().len()),
    };
    if len > JobSpec::MAX_STDIN {
        return fail(
            field,
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

/// A dependency's name: `ns:pkg[/iface][@version]` or a plain import name, in the component
/// model's kebab case.
fn dependency_name(name: &str) -> Result<(), String> {
    // Words of lower-case letters and digits, or acronyms of upper-case ones (`HTTP-client`).
    let kebab = |s: &str| {
        !s.is_empty()
            && s.split('-').all(|w| {
                let lower = w
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
                let upper = w
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                w.starts_with(|c: char| c.is_ascii_alphabetic()) && (lower || upper)
            })
    };
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    let valid = match path.split_once(':') {
        None => version.is_none() && kebab(path),
        Some((namespace, rest)) => {
            let (package, interface) = rest.split_once('/').unwrap_or((rest, "x"));
            kebab(namespace)
                && kebab(package)
                && kebab(interface)
                && version.is_none_or(|v| !v.is_empty() && !v.contains(char::is_whitespace))
        }
    };
    match valid {
        true => Ok(()),
        false => Err(format!(
            "'{name}' is not what a dependency can satisfy: write an interface (ns:pkg/iface@1.0.0, or without the version), a package (ns:pkg) or a plain import name"
        )),
    }
}

fn validate_meta(meta: &ObjectMeta) -> Result<(), FieldError> {
    validate_dns_label(&meta.name).or_else(|m| fail("metadata.name", m))?;
    if meta.namespace != DEFAULT_NAMESPACE {
        validate_dns_label(&meta.namespace).or_else(|m| fail("metadata.namespace", m))?;
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
