//! Spin applications: a `spin.toml` (manifest version 2) read as Spin reads it and turned
//! into Shoal Apps.
//!
//! # Shape
//! One App per component that an HTTP trigger serves, named after the application and the
//! component (`APP-COMPONENT`, or `APP` when the component is named like the application),
//! labelled `shoal.dev/spin-app` and `shoal.dev/spin-component`. Its routes are its
//! triggers' routes (`/...` a prefix, anything else exact), its variables become
//! `spec.config` (or `spec.secretConfig` when a secret went into them), `environment`
//! `spec.env`, `key_value_stores` `spec.capabilities.keyvalue`, `sqlite_databases`
//! `spec.capabilities.sqlite`, `allowed_outbound_hosts`
//! `spec.capabilities.outbound` (see `hosts`). Variables are resolved here, once, at apply
//! time: the same files and values make the same Apps, so a second apply is `unchanged`.
//!
//! This module does no IO: the CLI reads the component sources and the files this returns
//! the patterns of, and uploads them.

mod content;
mod dependencies;
mod hosts;
mod ids;
pub mod locked;
mod registry;
mod routes;
#[allow(
    dead_code,
    reason = "every field Spin defines is accepted as Spin accepts it; Shoal reads only some"
)]
mod schema;
mod variables;

use crate::ManifestError;
pub use content::Content;
use registry::registry_source;
use schema::{ComponentSpec, FileEntry, HttpTrigger, Source};
use shoal_api::{API_VERSION, App, AppSpec, ComponentRef, Digest, ObjectMeta, OciRef, Route};
use std::collections::BTreeMap;
pub use variables::Values;

/// The label every App of a Spin application carries: the application's name.
pub const APP_LABEL: &str = shoal_api::SPIN_APP_LABEL;
/// The label naming the component an App runs.
pub const COMPONENT_LABEL: &str = shoal_api::SPIN_COMPONENT_LABEL;

/// A Spin application, read.
#[derive(Debug)]
pub struct SpinApp {
    /// `application.name`.
    pub name: String,
    /// One per component an HTTP trigger serves, in id order.
    pub components: Vec<SpinComponent>,
    /// What Shoal ignores or drops, for the CLI to print (as `spin up` warns).
    pub notes: Vec<String>,
}

/// One component and the App it becomes.
#[derive(Debug)]
pub struct SpinComponent {
    /// The component id (`[component.ID]`).
    pub id: String,
    /// The App, with `spec.component` and `spec.files` still to be filled by the CLI.
    pub app: App,
    /// Where its Wasm comes from.
    pub source: SpinSource,
    /// Its `files`, to be packed into one tree mounted at `/`.
    pub files: Vec<SpinFiles>,
    /// Glob patterns of files not to ship.
    pub exclude_files: Vec<String>,
    /// The content of a published application's dependencies (`spec.dependencies` names
    /// it by digest), by name: the caller finds their bytes.
    pub published_dependencies: BTreeMap<String, Content>,
}

/// A component's `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpinSource {
    /// A path relative to the manifest.
    Path(String),
    /// A URL, fetched and checked against its digest.
    Url {
        /// The URL.
        url: String,
        /// The digest it must have.
        digest: Digest,
    },
    /// A registry package (`{ registry, package, version }`): the Wasm artifact
    /// `oci://REGISTRY/NAMESPACE/NAME:VERSION`, which the server pulls at apply.
    Oci(OciRef),
    /// Content of a published application (`locked::parse_locked`), by digest.
    Content(Content),
}

/// One entry of a component's `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpinFiles {
    /// A path or glob, relative to the manifest; files keep their relative paths.
    Pattern(String),
    /// A file or directory, relative to the manifest, placed at `destination`.
    Mapping {
        /// The file or directory.
        source: String,
        /// Where the component sees it (absolute).
        destination: String,
    },
    /// A file of a published application (`locked::parse_locked`).
    Content {
        /// Its path in the tree.
        path: String,
        /// Its content.
        content: Content,
    },
}

/// Whether `text` is a Spin manifest: TOML with a `spin_manifest_version` (or Spin 1's
/// `spin_version`) at the top. Told by content, not by the file's name.
pub fn is_spin_manifest(text: &str) -> bool {
    text.parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("spin_manifest_version") || t.contains_key("spin_version"))
}

/// Reads a `spin.toml` with the variables' `values`; `namespace` is where the Apps go.
///
/// # Errors
/// What Spin refuses (an unknown manifest version or field, a trigger naming a missing
/// component, the same route twice, a bad host pattern, an invalid name, a required
/// variable without a value) and what Shoal does not run (other triggers,
/// route parameters, registry sources, SQLite, URL dependencies), each naming the field.
pub fn parse(
    source_name: &str,
    text: &str,
    values: &Values,
    namespace: &str,
) -> Result<SpinApp, ManifestError> {
    let err = |message: String| ManifestError {
        source_name: source_name.to_string(),
        message,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| err(format!("invalid TOML: {e}")))?;
    match table.get("spin_manifest_version") {
        Some(toml::Value::Integer(2)) => {}
        Some(other) => {
            let other = match other {
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::String(s) => format!("\"{s}\""),
                other => other.type_str().to_string(),
            };
            return Err(err(format!(
                "spin_manifest_version: {other} is not supported; Shoal reads version 2 (`spin_manifest_version = 2`)"
            )));
        }
        None if table.contains_key("spin_version") => {
            return Err(err(
                "spin_version: this is a version 1 Spin manifest; Shoal reads version 2 (convert it with a current `spin`, e.g. `spin doctor`)".into(),
            ));
        }
        None => return Err(err("spin_manifest_version: missing".into())),
    }
    let manifest: schema::Manifest =
        toml::from_str(text).map_err(|e| err(format!("invalid manifest: {e}")))?;
    translate(source_name, &manifest, values, namespace)
}

/// The Apps of `manifest` (read from `source_name`), errors joined with their field.
fn translate(
    source_name: &str,
    manifest: &schema::Manifest,
    values: &Values,
    namespace: &str,
) -> Result<SpinApp, ManifestError> {
    Translate::new(manifest, values, namespace)
        .and_then(|t| t.run(manifest))
        .map_err(|(field, message)| ManifestError {
            source_name: source_name.to_string(),
            message: if field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            },
        })
}

/// `(field, message)`, joined into a [`ManifestError`] at the end.
type Fail = (String, String);

struct Translate<'a> {
    app_name: String,
    namespace: &'a str,
    vars: variables::Resolved,
    notes: Vec<String>,
}

impl<'a> Translate<'a> {
    fn new(manifest: &schema::Manifest, values: &Values, namespace: &'a str) -> Result<Self, Fail> {
        let app = &manifest.application;
        let app_name = object_name(&app.name).ok_or_else(|| {
            (
                "application.name".to_string(),
                format!(
                    "\"{}\" does not make a Shoal name; use letters, digits and '-' (at most 63)",
                    app.name
                ),
            )
        })?;
        if let Some(base) = app.trigger.get("http").and_then(|h| h.get("base"))
            && base.as_str() != Some("/")
        {
            return Err((
                "application.trigger.http.base".into(),
                "the deprecated base path is not supported; prepend it to each [[trigger.http]] route".into(),
            ));
        }
        if let Some(kind) = app.trigger.keys().find(|k| *k != "http") {
            return Err((
                format!("application.trigger.{kind}"),
                format!("Shoal runs HTTP triggers only; remove the {kind} trigger settings"),
            ));
        }
        let vars = variables::Resolved::new(&manifest.variables, values)?;
        Ok(Self {
            app_name,
            namespace,
            vars,
            notes: Vec::new(),
        })
    }

    fn run(mut self, manifest: &schema::Manifest) -> Result<SpinApp, Fail> {
        if let Some(kind) = manifest.trigger.keys().find(|k| *k != "http") {
            return Err((
                format!("trigger.{kind}"),
                format!("Shoal runs HTTP triggers only; a {kind} trigger has nothing to run it"),
            ));
        }
        for id in manifest.component.keys() {
            ids::kebab(id).map_err(|m| (format!("component.{id}"), m))?;
        }
        // Each HTTP-triggered component with its routes, in trigger order.
        let mut served: BTreeMap<String, (&schema::Component, Vec<Route>)> = BTreeMap::new();
        let mut routes_seen: BTreeMap<Route, usize> = BTreeMap::new();
        let raw = manifest
            .trigger
            .get("http")
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let triggers = raw
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.clone().try_into().map_err(|e: toml::de::Error| {
                    (format!("trigger.http[{i}]"), e.message().to_string())
                })
            })
            .collect::<Result<Vec<HttpTrigger>, Fail>>()?;
        for (i, trigger) in triggers.iter().enumerate() {
            let at = format!("trigger.http[{i}]");
            let (id, component) = self.trigger_component(manifest, trigger, i, &at)?;
            if let Some(e) = &trigger.executor
                && !matches!(e.kind.as_str(), "spin" | "http")
            {
                return Err((
                    format!("{at}.executor"),
                    format!(
                        "the {} executor is not supported; Shoal runs wasi:http components",
                        e.kind
                    ),
                ));
            }
            let route = routes::route(&trigger.route).map_err(|m| (format!("{at}.route"), m))?;
            let routes = &mut served
                .entry(id)
                .or_insert_with(|| (component, Vec::new()))
                .1;
            // A private route: the component is reached only from the other components.
            let Some(route) = route else { continue };
            if let Some(first) = routes_seen.insert(route.shape(), i) {
                return Err((
                    format!("{at}.route"),
                    format!(
                        "route {route} is also trigger.http[{first}]'s; each route must lead to one component"
                    ),
                ));
            }
            routes.push(route);
        }
        if served.is_empty() {
            return Err((
                "trigger.http".into(),
                "the application has no HTTP trigger; add a [[trigger.http]] with a route and a component".into(),
            ));
        }
        let mut components = Vec::new();
        for (id, (component, routes)) in served {
            components.push(self.component(&id, component, routes, &manifest.component)?);
        }
        Ok(SpinApp {
            name: self.app_name,
            components,
            notes: self.notes,
        })
    }

    /// The component trigger `i` serves: by reference or inline.
    fn trigger_component<'m>(
        &self,
        manifest: &'m schema::Manifest,
        trigger: &'m HttpTrigger,
        i: usize,
        at: &str,
    ) -> Result<(String, &'m schema::Component), Fail> {
        if trigger.static_response.is_some() {
            return Err((
                format!("{at}.static_response"),
                "static responses are not supported; serve them from a component".into(),
            ));
        }
        if trigger.components.is_some() {
            return Err((
                format!("{at}.components"),
                "trigger-level component maps are not supported; use component".into(),
            ));
        }
        match &trigger.component {
            None => Err((
                format!("{at}.component"),
                "missing; name the [component.ID] this trigger runs".into(),
            )),
            Some(ComponentSpec::Reference(id)) => match manifest.component.get(id) {
                Some(c) => Ok((id.clone(), c)),
                None => {
                    let known: Vec<&str> = manifest.component.keys().map(String::as_str).collect();
                    Err((
                        format!("{at}.component"),
                        format!(
                            "no such component \"{id}\"; the manifest has {}",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ))
                }
            },
            Some(ComponentSpec::Inline(c)) => {
                let id = match &trigger.id {
                    Some(id) => id.clone(),
                    None => format!("trigger-http-{i}"),
                };
                ids::kebab(&id).map_err(|m| (format!("{at}.id"), m))?;
                if manifest.component.contains_key(&id) {
                    return Err((
                        format!("{at}.id"),
                        format!(
                            "\"{id}\" is also a [component.{id}]; give the inline component another id"
                        ),
                    ));
                }
                Ok((id, c))
            }
        }
    }

    /// The App of component `id`.
    fn component(
        &mut self,
        id: &str,
        c: &schema::Component,
        routes: Vec<Route>,
        all: &BTreeMap<String, schema::Component>,
    ) -> Result<SpinComponent, Fail> {
        let at = |field: &str| format!("component.{id}.{field}");
        let source = match &c.source {
            Source::Path(p) => SpinSource::Path(p.clone()),
            Source::Url(u) => {
                let digest = u
                    .digest
                    .strip_prefix("sha256:")
                    .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
                    .ok_or_else(|| {
                        (
                            at("source.digest"),
                            format!(
                                "invalid digest \"{}\"; must be sha256:<64 lowercase hex digits>",
                                u.digest
                            ),
                        )
                    })?;
                SpinSource::Url {
                    url: u.url.clone(),
                    digest,
                }
            }
            Source::Registry(r) => {
                SpinSource::Oci(registry_source(r).map_err(|m| (at("source"), m))?)
            }
            Source::Locked(content) => SpinSource::Content(content.clone()),
        };
        if !c.allowed_http_hosts.is_empty() {
            return Err((
                at("allowed_http_hosts"),
                "is Spin 1's field; use allowed_outbound_hosts".into(),
            ));
        }
        if c.build.is_some() {
            self.notes.push(format!(
                "{}: build is ignored, as `spin up` ignores it; build the component first",
                at("build")
            ));
        }
        if !c.ai_models.is_empty() {
            self.notes.push(format!(
                "{}: this node runs no AI models; LLM calls answer an error",
                at("ai_models")
            ));
        }
        if c.profile.is_some() {
            self.notes
                .push(format!("{}: profiles are ignored", at("profile")));
        }
        for label in &c.key_value_stores {
            ids::label(label).map_err(|m| (at("key_value_stores"), m))?;
        }
        let mut spec = AppSpec {
            component: match &source {
                SpinSource::Path(p) => ComponentRef::Path(p.clone()),
                SpinSource::Url { digest, .. } => ComponentRef::Digest(digest.clone()),
                SpinSource::Oci(r) => ComponentRef::Oci(r.clone()),
                SpinSource::Content(c) => ComponentRef::Digest(c.digest.clone()),
            },
            component_source: None,
            routes,
            env: c.environment.clone(),
            config: BTreeMap::new(),
            secret_config: BTreeMap::new(),
            capabilities: Default::default(),
            files: Vec::new(),
            limits: Default::default(),
            reuse: None,
            init: None,
            dependencies: dependencies::of(id, c, all)?,
            health_check: None,
            scale: None,
            placement: None,
        };
        spec.capabilities.keyvalue = c.key_value_stores.clone();
        spec.capabilities.sqlite = c.sqlite_databases.clone();
        for (name, template) in &c.variables {
            ids::lower_snake(name).map_err(|m| (at(&format!("variables.{name}")), m))?;
            let v = self
                .vars
                .expand(template)
                .map_err(|m| (at(&format!("variables.{name}")), m))?;
            if v.secret {
                spec.secret_config.insert(name.clone(), v.value);
            } else {
                spec.config.insert(name.clone(), v.value);
            }
        }
        for (i, entry) in c.allowed_outbound_hosts.iter().enumerate() {
            let field = at(&format!("allowed_outbound_hosts[{i}]"));
            let expanded = self.vars.expand(entry).map_err(|m| (field.clone(), m))?;
            if expanded.secret {
                return Err((
                    field,
                    "names a secret variable; the allow-list is shown to whoever can read the app, so name the host here or use a variable that is not secret".into(),
                ));
            }
            let t = hosts::translate(&expanded.value).map_err(|m| (field.clone(), m))?;
            if let Some(note) = t.note {
                self.notes.push(format!("{field}: {note}"));
            }
            for e in t.entries {
                if !spec.capabilities.outbound.contains(&e) {
                    spec.capabilities.outbound.push(e);
                }
            }
        }
        let mut files = Vec::new();
        for (i, f) in c.files.iter().enumerate() {
            let field = at(&format!("files[{i}]"));
            files.push(match f {
                FileEntry::Pattern(p) => {
                    if p.ends_with("..") || p.ends_with('.') || p.starts_with('/') || p.contains("../") {
                        return Err((field, format!("\"{p}\" must be a relative path or glob inside the application directory")));
                    }
                    SpinFiles::Pattern(p.clone())
                }
                FileEntry::Mapping(m) => {
                    if !m.destination.starts_with('/') {
                        return Err((
                            format!("{field}.destination"),
                            format!("\"{}\" must be absolute", m.destination),
                        ));
                    }
                    SpinFiles::Mapping {
                        source: m.source.clone(),
                        destination: m.destination.clone(),
                    }
                }
                FileEntry::Locked { path, content } => {
                    let p = std::path::Path::new(path.trim_start_matches('/'));
                    if p.as_os_str().is_empty()
                        || !p.components().all(|c| matches!(c, std::path::Component::Normal(_)))
                    {
                        return Err((field, format!("\"{path}\" is not a path inside the application")));
                    }
                    SpinFiles::Content {
                        path: path.trim_start_matches('/').to_string(),
                        content: content.clone(),
                    }
                }
            });
        }
        let name = if id == self.app_name {
            self.app_name.clone()
        } else {
            format!("{}-{id}", self.app_name)
        };
        let name = object_name(&name).ok_or_else(|| {
            (
                format!("component.{id}"),
                format!("the App name \"{name}\" (application-component) is longer than 63 characters; shorten one"),
            )
        })?;
        let mut metadata = ObjectMeta::named(name);
        metadata.namespace = self.namespace.to_string();
        metadata
            .labels
            .insert(APP_LABEL.into(), self.app_name.clone());
        metadata
            .labels
            .insert(COMPONENT_LABEL.into(), id.to_string());
        let app = App {
            api_version: API_VERSION.into(),
            kind: "App".into(),
            metadata,
            spec,
            status: Default::default(),
        };
        crate::validate_app(&app).map_err(|e| (format!("component.{id}"), e.to_string()))?;
        Ok(SpinComponent {
            id: id.to_string(),
            app,
            source,
            files,
            exclude_files: c.exclude_files.clone(),
            published_dependencies: c
                .published_dependencies
                .iter()
                .map(|(name, d)| (name.clone(), d.content.clone()))
                .collect(),
        })
    }
}

/// `name` as a DNS-1123 label: lowercase, `_` and spaces as `-`; `None` if nothing is left
/// or it is too long.
fn object_name(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '-' | '_' | ' ' | '.' => {
                if !out.ends_with('-') {
                    out.push('-');
                }
            }
            _ => return None,
        }
    }
    let out = out.trim_matches('-').to_string();
    (!out.is_empty() && out.len() <= 63 && out.starts_with(|c: char| c.is_ascii_lowercase()))
        .then_some(out)
}

#[cfg(test)]
mod tests;
