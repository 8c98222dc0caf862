//! What the runtime is told about what it runs: a [`Workload`] (its name, its log and its
//! [`Grants`]), never an API object.
//!
//! A grant is what one capability allows one deployment, built once per deployment by the
//! capability (in `shoal-capabilities`) and asked to [`prepare`](Grant::prepare) every new
//! instance: put variables, mounts or output streams into its WASI context, send its outgoing
//! HTTP, or hand it state that the capability's host functions find again through
//! [`Host::granted`](crate::Host::granted). The runtime knows no capability by name.

use shoal_logs::AppLog;
use shoal_metrics::AppMetrics;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// One deployment's (or one job attempt's) identity and grants, shared by its instances.
pub struct Workload {
    /// `app/NAME` or `job/NAME`, for messages and the node's log.
    pub name: String,
    /// Where its output and the runtime's events about it go.
    pub log: Arc<AppLog>,
    /// What it may do beyond computing.
    pub grants: Grants,
    /// What it is measured by (the same for every deployment of one app on a node).
    pub metrics: Arc<AppMetrics>,
    /// How many of its events the node's log still takes this minute.
    node_log: crate::node_log::Budget,
}

impl Workload {
    /// Workload `name` (`app/NAME`, `job/NAME`) with its log, grants and metrics.
    pub fn new(name: String, log: Arc<AppLog>, grants: Grants, metrics: Arc<AppMetrics>) -> Self {
        Self {
            name,
            log,
            grants,
            metrics,
            node_log: crate::node_log::Budget::default(),
        }
    }

    /// Records a runtime event about this workload: a `shoal` line in the workload's own log,
    /// and a warning in the node's log — at most ten a minute,
    /// so that a guest causing one per request does not flood the log every tenant shares.
    pub fn event(&self, message: &str) {
        use crate::node_log::Echo;
        self.log.write_line("shoal", message.as_bytes());
        match self.node_log.admit(std::time::Instant::now()) {
            Echo::Yes => tracing::warn!(app = %self.name, "{message}"),
            Echo::Last => {
                tracing::warn!(app = %self.name, "{message}");
                tracing::warn!(
                    app = %self.name,
                    "{} events within a minute: the rest of this minute's are in its own log only (shoal logs)",
                    crate::node_log::PER_MINUTE
                );
            }
            Echo::No => {}
        }
    }

    /// Writes `message` into the app's log only: routine, not for the node's log.
    pub fn note(&self, message: &str) {
        self.log.write_line("shoal", message.as_bytes());
    }
}

/// What one capability grants one deployment; see the module docs.
pub trait Grant: Send + Sync + 'static {
    /// Shapes one new instance; called once per instance, before it starts.
    fn prepare(&self, instance: &mut InstanceBuilder<'_>);
}

/// Every grant of one deployment, in the order the capabilities are listed.
#[derive(Clone, Default)]
pub struct Grants(Arc<[Arc<dyn Grant>]>);

impl Grants {
    /// The grants `each` holds.
    pub fn new(each: Vec<Arc<dyn Grant>>) -> Self {
        Self(each.into())
    }
}

/// Sends a guest's outgoing HTTP requests (`wasi:http/outgoing-handler`). Without one, every
/// outgoing request is refused with `HttpRequestDenied`.
pub trait OutgoingHttp: Send + Sync + 'static {
    /// Sends `request` for `workload`, or refuses it.
    fn send(
        &self,
        workload: Arc<Workload>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Box<dyn Future<Output = Result<Sent, Error>> + Send>;
}

/// A response head, and the future that drives the rest of its connection.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// A new instance as the grants shape it (see [`Grant::prepare`]).
pub struct InstanceBuilder<'a> {
    pub(crate) workload: &'a Workload,
    pub(crate) wasi: &'a mut WasiCtxBuilder,
    pub(crate) outgoing: &'a mut Option<Arc<dyn OutgoingHttp>>,
    pub(crate) granted: &'a mut Vec<Arc<dyn Any + Send + Sync>>,
}

impl InstanceBuilder<'_> {
    /// The instance's WASI context, before it is built.
    pub fn wasi(&mut self) -> &mut WasiCtxBuilder {
        self.wasi
    }

    /// The workload's log.
    pub fn log(&self) -> &Arc<AppLog> {
        &self.workload.log
    }

    /// Records an event about the workload (see [`Workload::event`]).
    pub fn event(&self, message: &str) {
        self.workload.event(message);
    }

    /// Sends the instance's outgoing HTTP through `outgoing`.
    pub fn send_outgoing_http_with(&mut self, outgoing: Arc<dyn OutgoingHttp>) {
        *self.outgoing = Some(outgoing);
    }

    /// Gives the instance `state`, which host functions find again with
    /// [`Host::granted`](crate::Host::granted) by its type.
    pub fn grant<T: Any + Send + Sync>(&mut self, state: Arc<T>) {
        self.granted.push(state);
    }
}

/// Builds the WASI context and the rest of an instance's host state from `workload`'s grants:
/// environment, output, mounts, outgoing HTTP and capability state come only from them, and
/// `wasi` adds what the caller sets beyond them (a job's arguments and stdin). No sockets and
/// no name lookup, whatever is granted.
pub(crate) fn shape(workload: &Workload, wasi: impl FnOnce(&mut WasiCtxBuilder)) -> Shaped {
    let mut builder = WasiCtxBuilder::new();
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let (mut outgoing, mut granted) = (None, Vec::new());
    let mut instance = InstanceBuilder {
        workload,
        wasi: &mut builder,
        outgoing: &mut outgoing,
        granted: &mut granted,
    };
    for grant in workload.grants.0.iter() {
        grant.prepare(&mut instance);
    }
    wasi(&mut builder);
    Shaped {
        wasi: builder,
        outgoing,
        granted,
    }
}

/// An instance's host state as its grants made it, before the store is built.
pub(crate) struct Shaped {
    pub(crate) wasi: WasiCtxBuilder,
    pub(crate) outgoing: Option<Arc<dyn OutgoingHttp>>,
    pub(crate) granted: Vec<Arc<dyn Any + Send + Sync>>,
}

/// How a deployed HTTP workload is served.
#[derive(Debug, Clone)]
pub struct Serving {
    /// What each request may use.
    pub limits: Limits,
    /// How far an instance is reused; `None`: a fresh instance per request.
    pub reuse: Option<Reuse>,
    /// Time without a request after which the component is released (scale to zero).
    pub idle_after: Option<Duration>,
    /// A limit on instances at once it shares with other deployments, if any.
    pub shared: Option<std::sync::Arc<crate::SharedLimit>>,
}

/// How far one instance of a deployment is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Requests one instance answers in all (see [`crate::reuse`]).
    pub max_requests: u32,
    /// Requests one instance answers at once: WASI 0.3 components only (see `share`); a 0.2
    /// instance answers one at a time.
    pub max_concurrent: u32,
}

/// The limits of every request of one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory per memory of an instance.
    pub memory: u64,
    /// Guest compute per request.
    pub cpu: Duration,
    /// Wall clock per request.
    pub timeout: Duration,
    /// Requests in flight at once; more are answered 503.
    pub concurrency: u32,
}
