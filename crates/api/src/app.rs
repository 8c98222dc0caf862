//! The App kind: a `wasi:http` component served on routes.

use crate::{DurationSpec, ObjectMeta, ObjectRef, Quantity};
use chrono::{DateTime, Utc};
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

impl App {
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
    /// A path relative to the manifest (the CLI uploads it), or `sha256:<hex>` of an uploaded blob.
    pub component: String,
    /// Where the app is reachable; at least one.
    pub routes: Vec<Route>,
    /// Environment variables visible to the component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Values for the `wasi:config/store` interface.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// What the component may use beyond computing; everything is denied unless listed.
    #[serde(default, skip_serializing_if = "Capabilities::is_empty")]
    pub capabilities: Capabilities,
    /// Read-only directories the component sees (deny by default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileMount>,
    /// Resource limits per instance and per request.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// Opt-in instance reuse: one instance answers several requests, one at a time. Weaker
    /// isolation (state a request leaves in the instance is seen by later ones); the default is
    /// a fresh instance for every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<Reuse>,
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

/// How far one instance may be reused (see [`AppSpec::reuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reuse {
    /// Requests one instance answers before it is dropped and a fresh one takes its place;
    /// 2 to 1,000,000.
    pub max_requests: u32,
}

impl Reuse {
    /// The largest accepted `maxRequests`.
    pub const MAX_REQUESTS: u32 = 1_000_000;
}

/// A directory shipped with the app and mounted read-only inside the component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileMount {
    /// A directory relative to the manifest (the CLI packs and uploads it), or `sha256:<hex>` of
    /// an uploaded tree.
    pub source: String,
    /// Where the component sees it, an absolute path such as `/static`.
    pub mount: String,
}

/// Grants beyond pure computation; the default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Outbound HTTP destinations, `scheme://host[:port]` (see [`crate::OutboundRule`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<String>,
    /// Key-value buckets the app may open; each is private to this app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keyvalue: Vec<String>,
}

impl Capabilities {
    fn is_empty(&self) -> bool {
        *self == Capabilities::default()
    }
}

/// One route: an optional host and a path prefix matched on `/` boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// Path prefix, starting with `/`; `/` matches everything.
    pub path: String,
    /// Exact host (without port) this route applies to; any host when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host}{}", self.path),
            None => f.write_str(&self.path),
        }
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

/// Coarse lifecycle of an App.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Accepted; not yet compiled and checked.
    #[default]
    Pending,
    /// The component compiled, exports a supported handler, and serves its routes.
    Ready,
    /// The latest spec cannot run; `message` says why.
    Failed,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the system observed about an App.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// Pending, Ready or Failed.
    #[serde(default)]
    pub phase: Phase,
    /// Why the app is not Ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default)]
    pub observed_generation: u64,
    /// The generation whose component currently serves traffic (0: none).
    #[serde(default)]
    pub serving_generation: u64,
    /// Digest of the component that currently serves traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_component: Option<String>,
    /// What each node that holds the app last reported (one entry on a single node).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeAppStatus>,
    /// The nodes of a cluster chosen to hold the app (written by the leading server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
    /// Whether the serving generation is loaded (Active) or released while idle (Idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleStatus>,
    /// Detailed conditions, Kubernetes style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One node's report about an app it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAppStatus {
    /// The generation the report is about.
    pub generation: u64,
    /// Ready (serves it), Failed (cannot) or Pending (loading, or the node is starting).
    pub phase: Phase,
    /// CamelCase reason, as in the Ready condition.
    pub reason: String,
    /// Why it is not Ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where the leading server placed an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// The nodes that hold it.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Why it holds fewer nodes than asked (or none: Unschedulable), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Scale-to-zero state of an App on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStatus {
    /// Active or Idle.
    pub state: Activity,
    /// When it entered that state.
    pub since: DateTime<Utc>,
    /// Times it went idle since it was deployed on the node.
    #[serde(default)]
    pub scaled_to_zero: u64,
    /// Times a request brought it back from idle since it was deployed on the node.
    #[serde(default)]
    pub activations: u64,
}

/// Whether an app holds its compiled code in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    /// Loaded: requests instantiate at once.
    Active,
    /// Released after `idleAfter` without requests; the next request reloads it from the
    /// compile cache.
    Idle,
}

impl std::fmt::Display for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A named boolean fact about an object, with the reason it last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
}

impl AppStatus {
    /// Sets condition `type_`, keeping its transition time when the status did not change.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
    ) {
        let status = if status { "True" } else { "False" }.to_string();
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now;
                }
                c.status = status;
                c.reason = reason.into();
                c.message = message.into();
            }
            None => self.conditions.push(Condition {
                type_: type_.into(),
                status,
                reason: reason.into(),
                message: message.into(),
                last_transition_time: now,
            }),
        }
    }
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
