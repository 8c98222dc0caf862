//! The `T` of every `Store<T>`: per-request WASI and HTTP state plus limit accounting.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Host state of one instance; dropped with the instance at the end of its request.
pub struct Host {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) hooks: DenyOutbound,
    /// Epoch ticks spent running guest code in this request.
    pub(crate) cpu_ticks: u64,
    /// Set when the CPU budget ran out, so the trap can be reported as a limit, not a bug.
    pub(crate) cpu_exceeded: bool,
}

impl Host {
    /// A host granting nothing but `env`, with `memory` bytes per linear memory.
    pub(crate) fn new(env: &[(String, String)], memory: u64) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.envs(env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(usize::try_from(memory).unwrap_or(usize::MAX))
                .instances(64)
                .tables(64)
                .memories(8)
                .build(),
            hooks: DenyOutbound,
            cpu_ticks: 0,
            cpu_exceeded: false,
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

/// Outbound HTTP is denied until an app is granted hosts (a capability added later).
pub(crate) struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
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
        tracing::warn!(uri = %request.uri(), "outbound HTTP denied: no outbound capability granted");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
