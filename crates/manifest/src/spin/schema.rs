//! `spin.toml` as Spin's manifest schema version 2 defines it (spinframework/spin,
//! `crates/manifest`), read strictly: a field Spin does not know is an error, as in Spin.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub spin_manifest_version: toml::Value,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    #[serde(default)]
    pub trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

/// `[application]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub trigger: toml::Table,
    #[serde(default)]
    pub tool: Option<toml::Value>,
}

/// One entry of `[variables]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Variable {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub component: Option<ComponentSpec>,
    #[serde(default)]
    pub components: Option<toml::Value>,
    #[serde(default)]
    pub static_response: Option<toml::Value>,
    pub route: RouteSpec,
    #[serde(default)]
    pub executor: Option<Executor>,
}

/// A trigger's component: an id of `[component.ID]`, or the component inline.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ComponentSpec {
    Reference(String),
    Inline(Box<Component>),
}

/// A trigger's `route`: a pattern, or `{ private = true }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RouteSpec {
    Pattern(String),
    Private(Private),
}

/// `{ private = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Private {
    pub private: bool,
}

/// `executor = { type = "…" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Executor {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub argv: Option<String>,
}

/// `[component.ID]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Component {
    pub source: Source,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub targets: Option<toml::Value>,
    #[serde(default)]
    pub build: Option<toml::Value>,
    #[serde(default)]
    pub tool: Option<toml::Value>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
    #[serde(default)]
    pub profile: Option<toml::Table>,
    /// A published application's dependencies (no manifest has them), by name.
    #[serde(skip)]
    pub published_dependencies: BTreeMap<String, super::content::PublishedDependency>,
}

/// `source`: a path, a URL with its digest, or a registry package.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Source {
    Path(String),
    Url(UrlSource),
    Registry(RegistrySource),
    /// Content a locked app names (never written in a `spin.toml`).
    #[serde(skip)]
    Locked(super::content::Content),
}

/// `source = { url, digest }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UrlSource {
    pub url: String,
    pub digest: String,
}

/// `source = { registry, package, version }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrySource {
    #[serde(default)]
    pub registry: Option<String>,
    pub package: String,
    pub version: String,
}

/// One entry of `files`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum FileEntry {
    Pattern(String),
    Mapping(FileMapping),
    /// A file a locked app names (never written in a `spin.toml`).
    #[serde(skip)]
    Locked {
        path: String,
        content: super::content::Content,
    },
}

/// `{ source, destination }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileMapping {
    pub source: String,
    pub destination: String,
}
