//! The `T` of every `Store<T>`: per-request WASI and HTTP state, the app's grants, and limit
//! accounting.

use shoal_capabilities::keyvalue::{AppKeyValue, KvStore, KvView};
use shoal_capabilities::logs::LogStream;
use shoal_capabilities::outbound::{Denial, OutboundPolicy};
use shoal_store::{AppLog, LogDir};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Largest in-memory size of one `fields` resource (headers) a guest can build or receive.
const FIELD_SIZE_LIMIT: usize = 64 * 1024;

/// What one deployed app is granted; built once per deployment, shared by its instances.
pub struct Grants {
    /// `app/NAME`, for log lines.
    pub(crate) app: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) config: WasiConfigVariables,
    pub(crate) outbound: Option<Arc<OutboundPolicy>>,
    pub(crate) keyvalue: Option<AppKeyValue>,
    /// The app's log: guest output and runtime events.
    pub(crate) log: Arc<AppLog>,
    /// Read-only directories: (host directory, path the guest sees).
    pub(crate) files: Vec<(std::path::PathBuf, String)>,
}

impl Grants {
    /// The grants of `app` as its spec states them.
    ///
    /// # Errors
    /// An outbound entry does not parse (the server validates them, so this means a bug).
    pub(crate) fn of(
        app: &shoal_api::App,
        kv: &Arc<KvStore>,
        logs: &LogDir,
        files: Vec<(std::path::PathBuf, String)>,
    ) -> Result<Self, String> {
        let spec = &app.spec;
        let caps = &spec.capabilities;
        let outbound = match caps.outbound.is_empty() {
            true => None,
            false => Some(Arc::new(OutboundPolicy::new(&caps.outbound)?)),
        };
        let keyvalue = (!caps.keyvalue.is_empty()).then(|| {
            AppKeyValue::new(
                kv.clone(),
                &app.metadata.namespace,
                &app.metadata.name,
                &caps.keyvalue,
            )
        });
        Ok(Self {
            app: app.object_ref().to_string(),
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            config: spec
                .config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            outbound,
            keyvalue,
            log: logs.app(&app.metadata.namespace, &app.metadata.name),
            files,
        })
    }

    /// What a Job's command is granted: its environment and its run's log; nothing else.
    pub(crate) fn of_job(job: &shoal_api::Job, log: Arc<AppLog>) -> Self {
        Self {
            app: job.object_ref().to_string(),
            env: job
                .spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            config: WasiConfigVariables::new(),
            outbound: None,
            keyvalue: None,
            log,
            files: Vec::new(),
        }
    }

    /// Records a runtime event about this app: a warning in the node's log and a `shoal` line
    /// in the app's own log.
    pub(crate) fn event(&self, message: &str) {
        tracing::warn!(app = %self.app, "{message}");
        self.log.write_line("shoal", message.as_bytes());
    }
}

/// The WASI context `grants` allow: their environment, output into their log, their read-only
/// mounts, and no sockets or name lookup.
pub(crate) fn wasi_builder(grants: &Grants) -> WasiCtxBuilder {
    let mut wasi = WasiCtx::builder();
    wasi.envs(&grants.env)
        .stdout(LogStream::new(grants.log.clone(), "stdout"))
        .stderr(LogStream::new(grants.log.clone(), "stderr"))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (host_dir, mount) in &grants.files {
        // Read-only: cap-std confines every lookup under the directory, `..` and symlinks included.
        if let Err(e) = wasi.preopened_dir(host_dir, mount, FsPerms::ReadOnly) {
            grants.event(&format!("cannot mount {mount}: {e:#}"));
        }
    }
    wasi
}

/// The resource limits of one instance: `StoreLimits`, remembering whether memory was refused
/// so that a failure after it can be reported as the limit it is.
pub(crate) struct Cap {
    inner: StoreLimits,
    memory: usize,
    /// A memory was refused growth past the limit.
    pub(crate) memory_denied: bool,
}

impl Cap {
    pub(crate) fn new(memory: u64) -> Self {
        let memory = usize::try_from(memory).unwrap_or(usize::MAX);
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory)
                .instances(64)
                .tables(64)
                .memories(8)
                .build(),
            memory,
            memory_denied: false,
        }
    }
}

impl ResourceLimiter for Cap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed && desired > self.memory {
            self.memory_denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Host state of one instance; dropped with the instance at the end of its request.
pub struct Host {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: Cap,
    pub(crate) hooks: AppHooks,
    /// CPU spent on this request so far, charged at every epoch tick.
    pub(crate) cpu_used: std::time::Duration,
    /// Set when the CPU budget ran out, so the trap can be reported as a limit, not a bug.
    pub(crate) cpu_exceeded: bool,
}

impl Host {
    /// A host granting `grants` and nothing else, with `memory` bytes per linear memory.
    pub(crate) fn new(grants: Arc<Grants>, memory: u64) -> Self {
        Self::with_wasi(wasi_builder(&grants), grants, memory)
    }

    /// A host whose WASI context comes from `wasi` (see [`wasi_builder`]).
    pub(crate) fn with_wasi(mut wasi: WasiCtxBuilder, grants: Arc<Grants>, memory: u64) -> Self {
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        Self {
            wasi: wasi.build(),
            http,
            table: ResourceTable::new(),
            limits: Cap::new(memory),
            hooks: AppHooks { grants },
            cpu_used: std::time::Duration::ZERO,
            cpu_exceeded: false,
        }
    }

    /// The `wasi:config` view.
    pub(crate) fn config(&mut self) -> WasiConfig<'_> {
        WasiConfig::from(&self.hooks.grants.config)
    }

    /// The `wasi:keyvalue` view.
    pub(crate) fn keyvalue(&mut self) -> KvView<'_> {
        KvView {
            grant: self.hooks.grants.keyvalue.as_ref(),
            table: &mut self.table,
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// `wasi:http` hooks of one instance: outbound requests go through the app's policy.
pub(crate) struct AppHooks {
    grants: Arc<Grants>,
}

impl WasiHttpHooks for AppHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let grants = self.grants.clone();
        let uri = request.uri().to_string();
        let denied = move |d: &Denial| grants.event(&format!("outbound HTTP to {uri} denied: {d}"));
        match self.grants.outbound.clone() {
            Some(policy) => Box::new(policy.send(request, options, denied)),
            None => {
                denied(&Denial::NotGranted);
                Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
            }
        }
    }
}
