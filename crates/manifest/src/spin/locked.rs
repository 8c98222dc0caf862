//! A Spin application's locked form: the JSON (`spin.lock`) that `spin registry push`
//! publishes as the application's config layer, read into the same Apps as its `spin.toml`,
//! and written from a `spin.toml` for `shoal push -f spin.toml`.
//!
//! The locked form is Spin's (spinframework/spin, `crates/locked-app`): triggers with their
//! config as a table (the component by id), components whose `source` and `files` name
//! content by digest (or inline, base64, when small), and their settings in `metadata`
//! (`allowed_outbound_hosts`, `key_value_stores`, `databases`, `ai_models`). It is read by
//! building the manifest schema it came from and translating that as `parse` does: the same
//! checks, the same Apps.

use super::content::{Content, PublishedDependency};
use super::schema::{self, FileEntry, Source};
use super::{SpinApp, Values};
use crate::ManifestError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shoal_api::Digest;
use std::collections::BTreeMap;

/// The locked application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockedApp {
    /// 0, or 1 when `must_understand` or `host_requirements` are used.
    pub spin_lock_version: u32,
    /// Features a reader must understand or refuse the application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_understand: Vec<String>,
    /// `name`, `version`, `description`, `authors`, `triggers` (global trigger settings).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// What the host must support (e.g. `local_service_chaining`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
    /// The application's variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, LockedVariable>,
    /// Every trigger.
    pub triggers: Vec<LockedTrigger>,
    /// Every component.
    pub components: Vec<LockedComponent>,
}

/// A variable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockedVariable {
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its default; a variable without one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether its value is a secret.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// A trigger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockedTrigger {
    /// Its id.
    pub id: String,
    /// `http`, …
    pub trigger_type: String,
    /// Its settings (`route`, `component`, `executor`).
    pub trigger_config: Value,
    /// Components it composes with its own (middleware).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger_dependencies: Map<String, Value>,
}

/// A component.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockedComponent {
    /// Its id.
    pub id: String,
    /// Its settings.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Its Wasm.
    pub source: LockedSource,
    /// `environment`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Its files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    /// Its `variables` (templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Components satisfying its imports, by the import they satisfy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, LockedDependency>,
    /// Components its triggers compose with it (middleware).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger_dependencies: Map<String, Value>,
    /// What the host must support for it.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
}

/// A component satisfying imports of another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockedDependency {
    /// Its Wasm.
    pub source: LockedSource,
    /// The export of it that satisfies the import, when not the import's own name.
    #[serde(default)]
    pub export: Option<String>,
    /// Which of the component's capabilities it gets.
    #[serde(default, skip_serializing_if = "Inherit::is_none")]
    pub inherit: Inherit,
}

impl LockedDependency {
    /// The dependency `wasm` as Spin publishes one: its content by digest, the `export` it
    /// names, and all of its component's capabilities or none.
    pub fn of(wasm: &[u8], export: Option<String>, inherit: bool) -> Self {
        Self {
            source: LockedSource {
                content_type: "application/wasm".into(),
                content: ContentRef::of(wasm),
            },
            export,
            inherit: if inherit {
                Inherit::All
            } else {
                Inherit::default()
            },
        }
    }
}

/// Which of a component's capabilities (`allowed_outbound_hosts`, `key_value_stores`, …)
/// its dependencies get: all, or those listed (none by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inherit {
    /// Every capability (`dependencies_inherit_configuration = true`).
    All,
    /// Only these.
    Some(Vec<String>),
}

impl Default for Inherit {
    fn default() -> Self {
        Self::Some(Vec::new())
    }
}

impl Inherit {
    fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// A component's Wasm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockedSource {
    /// `application/wasm`.
    pub content_type: String,
    /// Where its bytes are.
    #[serde(flatten)]
    pub content: ContentRef,
}

/// Content, by digest (a layer) or inline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContentRef {
    /// A URL (`file://…` in a locked app on disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The bytes, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// `sha256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A file: its content and its path under the component's root.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentPath {
    /// Its bytes.
    #[serde(flatten)]
    pub content: ContentRef,
    /// Where the component sees it, relative to `/`.
    pub path: String,
}

/// The most bytes Spin inlines in a locked app instead of a layer.
pub const INLINE_MAX: usize = 128;

impl ContentRef {
    /// `bytes` as Spin publishes them: by digest, and inline when small.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            source: None,
            inline: (bytes.len() <= INLINE_MAX)
                .then(|| base64::engine::general_purpose::STANDARD.encode(bytes)),
            digest: Some(Digest::of(bytes).to_string()),
        }
    }

    /// What it names, checked: an inline content's digest must be its bytes'.
    fn content(&self, field: &str) -> Result<Content, (String, String)> {
        let fail = |m: String| (field.to_string(), m);
        let inline = match &self.inline {
            None => None,
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| fail(format!("inline content is not base64: {e}")))?,
            ),
        };
        let digest = match (&self.digest, &inline) {
            (Some(d), _) => {
                Digest::parse(d).map_err(|_| fail(format!("\"{d}\" is not a sha256 digest")))?
            }
            (None, Some(bytes)) => Digest::of(bytes),
            (None, None) => {
                return Err(fail(match &self.source {
                    Some(s) => format!(
                        "names {s}, not content; a locked app from disk is not a published one: apply its spin.toml"
                    ),
                    None => "names no content (no digest, no inline bytes)".into(),
                }));
            }
        };
        if let Some(bytes) = &inline
            && Digest::of(bytes) != digest
        {
            return Err(fail(format!(
                "inline content does not have its digest {digest}"
            )));
        }
        Ok(Content { digest, inline })
    }
}

/// Host requirements Shoal meets: calls between the components of one application
/// (`*.spin.internal`, served in memory by the node).
const MET_HOST_REQUIREMENTS: &[&str] = &["local_service_chaining"];

/// `must_understand` features Shoal understands (it reads both kinds of host requirements).
const UNDERSTOOD: &[&str] = &["host_requirements", "component_host_requirements"];

/// Reads a locked app (`source_name` names it in errors) with the variables' `values` into
/// the Apps of `namespace`, as [`super::parse`] reads a `spin.toml`. Components and files
/// are [`super::SpinSource::Content`] and [`super::SpinFiles::Content`]: the caller finds
/// their bytes by digest.
///
/// # Errors
/// What `parse` refuses, and a locked app that is not JSON of Spin's form, of a later
/// version, or needs what Shoal does not do (`must_understand`, `host_requirements`).
pub fn parse_locked(
    source_name: &str,
    json: &[u8],
    values: &Values,
    namespace: &str,
) -> Result<SpinApp, ManifestError> {
    let err = |message: String| ManifestError {
        source_name: source_name.to_string(),
        message,
    };
    let locked: LockedApp =
        serde_json::from_slice(json).map_err(|e| err(format!("not a Spin locked app: {e}")))?;
    let manifest =
        schema_of(&locked).map_err(|(field, message)| err(format!("{field}: {message}")))?;
    super::translate(source_name, &manifest, values, namespace)
}

/// The manifest schema a locked app was made from.
fn schema_of(locked: &LockedApp) -> Result<schema::Manifest, (String, String)> {
    if locked.spin_lock_version > 1 {
        return Err((
            "spin_lock_version".into(),
            format!(
                "{} is newer than Shoal reads (0 and 1)",
                locked.spin_lock_version
            ),
        ));
    }
    if let Some(m) = locked
        .must_understand
        .iter()
        .find(|m| !UNDERSTOOD.contains(&m.as_str()))
    {
        return Err((
            "must_understand".into(),
            format!("the application needs \"{m}\", which Shoal does not know"),
        ));
    }
    requirements("host_requirements", &locked.host_requirements)?;
    let text = |key: &str| {
        locked
            .metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = text("name").ok_or_else(|| {
        (
            "metadata.name".to_string(),
            "missing: the application has no name".to_string(),
        )
    })?;
    let global = match locked.metadata.get("triggers") {
        Some(v) => table(v).map_err(|m| ("metadata.triggers".to_string(), m))?,
        None => toml::Table::new(),
    };
    let mut trigger: BTreeMap<String, Vec<toml::Table>> = BTreeMap::new();
    for (i, t) in locked.triggers.iter().enumerate() {
        let field = format!("triggers[{i}]");
        if !t.trigger_dependencies.is_empty() {
            return Err((
                format!("{field}.trigger_dependencies"),
                "trigger dependencies (middleware) are not supported yet".into(),
            ));
        }
        let mut config =
            table(&t.trigger_config).map_err(|m| (format!("{field}.trigger_config"), m))?;
        config.insert("id".into(), toml::Value::String(t.id.clone()));
        trigger
            .entry(t.trigger_type.clone())
            .or_default()
            .push(config);
    }
    let mut component = BTreeMap::new();
    for c in &locked.components {
        let at = |f: &str| format!("component.{}.{f}", c.id);
        requirements(&at("host_requirements"), &c.host_requirements)?;
        let strings = |key: &str| -> Result<Vec<String>, (String, String)> {
            match c.metadata.get(key) {
                None => Ok(Vec::new()),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|_| (at(key), "must be a list of strings".into())),
            }
        };
        let source = c.source.content.content(&at("source"))?;
        let mut files = Vec::new();
        for (i, f) in c.files.iter().enumerate() {
            let field = at(&format!("files[{i}]"));
            let content = f.content.content(&field)?;
            files.push(FileEntry::Locked {
                path: f.path.clone(),
                content,
            });
        }
        if !c.trigger_dependencies.is_empty() {
            return Err((
                at("trigger_dependencies"),
                "trigger dependencies (middleware) are not supported yet".into(),
            ));
        }
        let mut published_dependencies = BTreeMap::new();
        for (name, d) in &c.dependencies {
            let field = at(&format!("dependencies.\"{name}\""));
            let inherit = match &d.inherit {
                Inherit::All => true,
                Inherit::Some(none) if none.is_empty() => false,
                Inherit::Some(some) => {
                    return Err((
                        format!("{field}.inherit"),
                        format!(
                            "inherits only {}; a dependency in Shoal gets all of its component's capabilities or none",
                            some.join(", ")
                        ),
                    ));
                }
            };
            let dependency = PublishedDependency {
                content: d.source.content.content(&format!("{field}.source"))?,
                export: d.export.clone(),
                inherit,
            };
            published_dependencies.insert(name.clone(), dependency);
        }
        component.insert(
            c.id.clone(),
            schema::Component {
                source: Source::Locked(source),
                description: None,
                variables: c.config.clone(),
                environment: c.env.clone(),
                files,
                exclude_files: Vec::new(),
                allowed_http_hosts: Vec::new(),
                allowed_outbound_hosts: strings("allowed_outbound_hosts")?,
                key_value_stores: strings("key_value_stores")?,
                sqlite_databases: strings("databases")?,
                ai_models: strings("ai_models")?,
                targets: None,
                build: None,
                tool: None,
                dependencies_inherit_configuration: false,
                dependencies: None,
                profile: None,
                published_dependencies,
            },
        );
    }
    Ok(schema::Manifest {
        spin_manifest_version: toml::Value::Integer(2),
        application: schema::Application {
            name,
            version: text("version"),
            description: text("description"),
            authors: Vec::new(),
            targets: Vec::new(),
            trigger: global,
            tool: None,
        },
        variables: locked
            .variables
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    schema::Variable {
                        description: v.description.clone(),
                        required: v.default.is_none(),
                        default: v.default.clone(),
                        secret: v.secret,
                    },
                )
            })
            .collect(),
        trigger,
        component,
    })
}

/// Refuses host requirements Shoal does not meet (`optional` ones are no requirement).
fn requirements(field: &str, reqs: &Map<String, Value>) -> Result<(), (String, String)> {
    for (key, value) in reqs {
        if value.as_str() == Some("optional") || MET_HOST_REQUIREMENTS.contains(&key.as_str()) {
            continue;
        }
        return Err((
            field.to_string(),
            format!("\"{key}\" is not something Shoal provides"),
        ));
    }
    Ok(())
}

/// A JSON object as a TOML table.
fn table(v: &Value) -> Result<toml::Table, String> {
    if !v.is_object() {
        return Err("must be an object".into());
    }
    toml::Table::try_from(v).map_err(|e| format!("cannot be read as a table: {e}"))
}

/// The locked form of the `spin.toml` `text` (`source_name` names it in errors), as `spin
/// registry push` publishes it, except content: each component's `source` and `files` are
/// left empty for the caller to fill with the digests of what it reads (see
/// [`ContentRef::of`]). Inline trigger components get their ids as [`super::parse`] gives
/// them.
///
/// # Errors
/// A manifest that is not TOML of Spin's schema; [`super::parse`] it first for everything
/// else.
pub fn lock(source_name: &str, text: &str) -> Result<LockedApp, ManifestError> {
    let err = |message: String| ManifestError {
        source_name: source_name.to_string(),
        message,
    };
    let manifest: schema::Manifest =
        toml::from_str(text).map_err(|e| err(format!("invalid manifest: {e}")))?;
    let json = |v: &toml::Table| serde_json::to_value(v).map_err(|e| err(e.to_string()));
    let app = &manifest.application;
    let mut metadata = Map::new();
    metadata.insert("name".into(), app.name.clone().into());
    if let Some(v) = &app.version {
        metadata.insert("version".into(), v.clone().into());
    }
    if let Some(d) = &app.description {
        metadata.insert("description".into(), d.clone().into());
    }
    if !app.authors.is_empty() {
        metadata.insert("authors".into(), app.authors.clone().into());
    }
    if !app.trigger.is_empty() {
        metadata.insert("triggers".into(), json(&app.trigger)?);
    }
    let mut components = BTreeMap::new();
    for (id, c) in &manifest.component {
        components.insert(id.clone(), locked_component(id, c));
    }
    let mut triggers = Vec::new();
    for (kind, tables) in &manifest.trigger {
        for (i, table) in tables.iter().enumerate() {
            let mut config = table.clone();
            let id = match config.remove("id") {
                Some(toml::Value::String(id)) => id,
                _ => format!("trigger-{kind}-{i}"),
            };
            if let Some(toml::Value::Table(inline)) = config.get("component") {
                let component: schema::Component =
                    inline.clone().try_into().map_err(|e: toml::de::Error| {
                        err(format!("trigger.{kind}[{i}].component: {e}"))
                    })?;
                // Named as `parse` names it, so both read one application alike.
                let cid = match table.get("id") {
                    Some(toml::Value::String(id)) => id.clone(),
                    _ => format!("trigger-{kind}-{i}"),
                };
                components.insert(cid.clone(), locked_component(&cid, &component));
                config.insert("component".into(), toml::Value::String(cid));
            }
            triggers.push(LockedTrigger {
                id,
                trigger_type: kind.clone(),
                trigger_config: json(&config)?,
                trigger_dependencies: Map::new(),
            });
        }
    }
    Ok(LockedApp {
        spin_lock_version: 0,
        must_understand: Vec::new(),
        metadata,
        host_requirements: Map::new(),
        variables: manifest
            .variables
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    LockedVariable {
                        description: v.description.clone(),
                        default: v.default.clone(),
                        secret: v.secret,
                    },
                )
            })
            .collect(),
        triggers,
        components: components.into_values().collect(),
    })
}

/// A component's locked form, without its content.
fn locked_component(id: &str, c: &schema::Component) -> LockedComponent {
    let mut metadata = Map::new();
    if let Some(d) = &c.description {
        metadata.insert("description".into(), d.clone().into());
    }
    for (key, list) in [
        ("allowed_outbound_hosts", &c.allowed_outbound_hosts),
        ("key_value_stores", &c.key_value_stores),
        ("databases", &c.sqlite_databases),
        ("ai_models", &c.ai_models),
    ] {
        if !list.is_empty() {
            metadata.insert(key.into(), list.clone().into());
        }
    }
    LockedComponent {
        id: id.to_string(),
        metadata,
        source: LockedSource {
            content_type: "application/wasm".into(),
            content: ContentRef::default(),
        },
        env: c.environment.clone(),
        files: Vec::new(),
        config: c.variables.clone(),
        dependencies: BTreeMap::new(),
        trigger_dependencies: Map::new(),
        host_requirements: Map::new(),
    }
}
