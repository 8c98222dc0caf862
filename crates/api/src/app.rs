//! The App kind: a `wasi:http` component served on routes.

use crate::{AppStatus, ComponentRef, DurationSpec, ObjectMeta, ObjectRef, Quantity, Route};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// An HTTP application: one `wasi:http` component and the routes it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    /// Always `shoal/v1alpha1`.
    pub api_version: String,
    /// Always `App`.
    pub kind: String,
    /// Name, namespace and bookkeeping.
    pub metadata: ObjectMeta,
    /// What the user asked for.
    pub spec: AppSpec,
    /// What the system observed; never written by users.
    #[serde(default)]
    pub status: AppStatus,
}

/// The label of an App that runs a Spin component: the Spin application's name. Its
/// requests carry Spin's `spin-*` headers.
pub const SPIN_APP_LABEL: &str = "shoal.dev/spin-app";

/// The label of an App that runs a Spin component: the component's id in its application
/// (what `http://ID.spin.internal` names from the application's other components).
pub const SPIN_COMPONENT_LABEL: &str = "shoal.dev/spin-component";

/// What the API returns in place of a `secretConfig` value.
pub const SECRET: &str = "(secret)";

impl App {
    /// The app as the API shows it: every `spec.secretConfig` value replaced by [`SECRET`].
    pub fn redacted(mut self) -> Self {
        self.spec.redact();
        self
    }

    /// The `app/NAME` reference used in messages.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: "app".into(),
            namespace: self.metadata.namespace.clone(),
            name: self.metadata.name.clone(),
        }
    }
}

/// The user's description of an App.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSpec {
    /// A path relative to the manifest (the CLI uploads it), `sha256:<hex>` of an uploaded
    /// blob, or an `oci://` image (the server pulls it at apply time and stores its digest
    /// here).
    pub component: ComponentRef,
    /// Where the component came from, set by the server when `component` named an OCI
    /// reference: that reference with the manifest digest it resolved to
    /// (`oci://REGISTRY/REPO:TAG@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_source: Option<String>,
    /// Where the app is reachable from outside. None (`routes: []`): a private app, reached
    /// only by in-memory calls from the apps of its namespace
    /// (`http://NAME.NAMESPACE.shoal.internal`).
    pub routes: Vec<Route>,
    /// Environment variables visible to the component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Values for the `wasi:config/store` interface (and Spin's variables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Values read exactly as `config`'s are, that the API never shows: what it returns
    /// (`get`, `describe`, `rollout history`) has [`SECRET`] in their place.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_config: BTreeMap<String, String>,
    /// What the component may use beyond computing; everything is denied unless listed.
    #[serde(default, skip_serializing_if = "Capabilities::is_empty")]
    pub capabilities: Capabilities,
    /// Read-only directories the component sees (deny by default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileMount>,
    /// Resource limits per instance and per request.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// Opt-in instance reuse: one instance answers several requests, one at a time (a WASI
    /// 0.3 one several at once, up to `maxConcurrent`). Weaker isolation (state a request
    /// leaves in the instance is seen by later ones); the default is a fresh instance for
    /// every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<Reuse>,
    /// Pre-initialisation: a function the component exports, run once when a revision is
    /// deployed in a sandbox that grants nothing; the component's memory and globals after
    /// it are where every instance starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
    /// Components that satisfy the component's imports, composed with it before it compiles
    /// (typed calls, in memory), keyed by what each satisfies: `ns:pkg/iface@version` (or
    /// without the version), `ns:pkg` for every interface of a package, or a plain import
    /// name. A dependency's own imports may be satisfied by the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, Dependency>,
    /// A request a new revision must answer with 2xx before it gets traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// When an app without requests releases its memory (scale to zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// Which nodes of a cluster hold the app (a single node holds every app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

impl AppSpec {
    /// Replaces every `secretConfig` value with [`SECRET`].
    pub fn redact(&mut self) {
        for value in self.secret_config.values_mut() {
            *value = SECRET.to_string();
        }
    }

    /// Puts back the stored value of every `secretConfig` entry that reads [`SECRET`] (a
    /// spec the API returned, applied again), so that a round trip keeps the secrets.
    pub fn restore_secrets(&mut self, stored: &AppSpec) {
        for (key, value) in &mut self.secret_config {
            if value == SECRET
                && let Some(kept) = stored.secret_config.get(key)
            {
                value.clone_from(kept);
            }
        }
    }
}

/// Where in a cluster an app runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    /// Nodes that hold the app: a number (default 1), or `all` for every node that fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Replicas>,
    /// Only nodes with all these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Spread the replicas across the values of this node label (e.g. `zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_by: Option<String>,
}

/// How many nodes hold an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// This many.
    Count(u32),
    /// Every node that fits.
    All,
}

impl Serialize for Replicas {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Replicas::Count(n) => s.serialize_u32(*n),
            Replicas::All => s.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for Replicas {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(Replicas::Count(n)),
            Raw::Word(w) if w == "all" => Ok(Replicas::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "'{w}' is not a number of nodes or all"
            ))),
        }
    }
}

/// Scale to zero: an app idle for `idleAfter` keeps only what it needs to come back fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scale {
    /// Time without a request after which the app goes idle; default 5m, at least 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_after: Option<DurationSpec>,
    /// False keeps the app active however long it is idle; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_zero: Option<bool>,
}

impl Scale {
    /// Default time without a request before an app goes idle.
    pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(300);

    /// How long `spec` lets an app sit without requests before it goes idle; `None`: never.
    pub fn idle_after(spec: Option<&Scale>) -> Option<Duration> {
        match spec {
            Some(Scale {
                to_zero: Some(false),
                ..
            }) => None,
            Some(Scale {
                idle_after: Some(d),
                ..
            }) => Some(d.get()),
            _ => Some(Self::DEFAULT_IDLE_AFTER),
        }
    }
}

/// How a node checks a new revision before it serves (see [`AppSpec::health_check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Path (and query) of a GET the component must answer with 2xx, e.g. `/healthz`.
    pub path: String,
}

/// A component that satisfies imports of an App's component (see [`AppSpec::dependencies`]).
/// Written `{component: ./lib.wasm}`, `{app: other}`, or a reference alone (`./lib.wasm`,
/// `oci://…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The component: a path relative to the manifest (the CLI uploads it), `sha256:<hex>`
    /// of an uploaded blob, or an `oci://` image (the server pulls it). With `app`, the
    /// server sets it to that app's component at apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentRef>,
    /// Another App of the namespace whose component this is, as it is at apply (a later
    /// change to that app is picked up by applying this one again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The dependency's export that satisfies the import, when its name is not the import's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    /// Whether the dependency may use the app's capabilities (outbound HTTP, key-value, files,
    /// environment, config, Spin's interfaces); by default it may use none, and its calls to
    /// them are answered as denials (as Spin's `dependencies_inherit_configuration`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inherit_capabilities: bool,
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Full {
            #[serde(default)]
            component: Option<ComponentRef>,
            #[serde(default)]
            app: Option<String>,
            #[serde(default)]
            export: Option<String>,
            #[serde(default)]
            inherit_capabilities: bool,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Dependency;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a component reference, or {component: …} or {app: NAME}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dependency, E> {
                let component = ComponentRef::parse(v).map_err(E::custom)?;
                Ok(Dependency {
                    component: Some(component),
                    app: None,
                    export: None,
                    inherit_capabilities: false,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Dependency, A::Error> {
                let f = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Dependency {
                    component: f.component,
                    app: f.app,
                    export: f.export,
                    inherit_capabilities: f.inherit_capabilities,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What runs before a revision serves (see [`AppSpec::init`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Init {
    /// The exported function of type `func()` that initialises: a name the component exports
    /// (`wizer-initialize`, as Wizer names it), or `INTERFACE#NAME` for a function of an
    /// exported interface.
    pub function: String,
    /// Longest it may run; default 1m (a node's `--compile-timeout` bounds it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
}

impl Init {
    /// Default longest run of an init function.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// `timeout`, defaulted.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(Self::DEFAULT_TIMEOUT, DurationSpec::get)
    }
}

/// How far one instance may be reused (see [`AppSpec::reuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reuse {
    /// Requests one instance answers before it is dropped and a fresh one takes its place;
    /// 2 to 1,000,000 (default 128, as `wasmtime serve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Requests one instance answers at once, 1 to 1,000 (default 1): WASI 0.3 components
    /// only; a 0.2 instance answers one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

impl Reuse {
    /// The largest accepted `maxRequests`.
    pub const MAX_REQUESTS: u32 = 1_000_000;
    /// `maxRequests` when omitted.
    pub const DEFAULT_MAX_REQUESTS: u32 = 128;
    /// The largest accepted `maxConcurrent`.
    pub const MAX_CONCURRENT: u32 = 1_000;

    /// `maxRequests`, defaulted.
    pub fn max_requests(&self) -> u32 {
        self.max_requests.unwrap_or(Self::DEFAULT_MAX_REQUESTS)
    }

    /// `maxConcurrent`, defaulted.
    pub fn max_concurrent(&self) -> u32 {
        self.max_concurrent.unwrap_or(1)
    }
}

/// A directory shipped with the app and mounted read-only inside the component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileMount {
    /// A directory relative to the manifest (the CLI packs and uploads it), or `sha256:<hex>` of
    /// an uploaded tree.
    pub source: ComponentRef,
    /// Where the component sees it: a path such as `/static`, or a name relative to the
    /// working directory such as `data` (as `wasmtime run --dir HOST::GUEST` names it).
    pub mount: String,
    /// `ro` (the default) or, for a Job, `rw`: a writable copy for each attempt, discarded
    /// after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MountMode>,
}

/// Whether a mount is writable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountMode {
    /// Read-only.
    #[default]
    Ro,
    /// A writable scratch copy (Jobs only).
    Rw,
}

/// Grants beyond pure computation; the default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Outbound HTTP destinations, `scheme://host[:port]` (see [`crate::capabilities::outbound`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<String>,
    /// Key-value buckets the app may open; each is private to this app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyvalue: Vec<String>,
    /// SQLite databases the app may open, by label; each is a database of this app's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite: Vec<String>,
}

impl Capabilities {
    fn is_empty(&self) -> bool {
        *self == Capabilities::default()
    }
}

/// Limits the node enforces; every field has a documented default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Linear memory per instance (each memory of the instance); default 128Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Guest CPU time per request (the thread CPU it really used, checked every 1 ms); default 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<DurationSpec>,
    /// Wall-clock time per request; default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// In-flight requests per node; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

impl Limits {
    /// Default memory per instance.
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    /// Default guest compute per request.
    pub const DEFAULT_CPU: Duration = Duration::from_secs(1);
    /// Default wall-clock time per request.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default in-flight requests per node.
    pub const DEFAULT_CONCURRENCY: u32 = 100;

    fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The limits with defaults filled in.
    pub fn resolve(&self) -> ResolvedLimits {
        ResolvedLimits {
            memory: self
                .memory
                .as_ref()
                .map_or(Self::DEFAULT_MEMORY, Quantity::bytes),
            cpu: self
                .cpu
                .as_ref()
                .map_or(Self::DEFAULT_CPU, DurationSpec::get),
            timeout: self
                .timeout
                .as_ref()
                .map_or(Self::DEFAULT_TIMEOUT, DurationSpec::get),
            concurrency: self.concurrency.unwrap_or(Self::DEFAULT_CONCURRENCY),
        }
    }
}

/// [`Limits`] with every default applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedLimits {
    /// Bytes of linear memory per memory of an instance.
    pub memory: u64,
    /// Guest compute per request.
    pub cpu: Duration,
    /// Wall clock per request.
    pub timeout: Duration,
    /// In-flight requests per node.
    pub concurrency: u32,
}

/// What an apply did, as kubectl words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyResult {
    /// The object did not exist.
    Created,
    /// The object changed.
    Configured,
    /// The object already matched.
    Unchanged,
}

/// The answer to an apply of an object of type `T`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyResponse<T = App> {
    /// What happened.
    pub result: ApplyResult,
    /// The stored object after the apply.
    pub object: T,
}
