//! The `T` of every `Store<T>`: one instance's WASI and HTTP state, what its grants gave it,
//! and its limit accounting. Dropped with the instance.

use crate::chain::{Hop, Within};
use crate::workload::{OutgoingHttp, Workload, shape};
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Largest in-memory size of one `fields` resource (headers) a guest can build or receive.
const FIELD_SIZE_LIMIT: usize = 64 * 1024;

/// Most bytes the host takes from a guest in one call of an import (wasmtime's hostcall
/// fuel): counted as the arguments are lifted, before anything is copied, so that a list of
/// a million entries aliasing one region of linear memory costs the host at most this, not
/// terabytes; past it the call traps. 16 MiB carries any legitimate call here (a key-value
/// value is at most 1 MiB, header sets 64 KiB; body bytes are written in chunks).
pub const MAX_HOSTCALL_BYTES: usize = 16 << 20;

/// Whether `e` is a call that passed the host more than [`MAX_HOSTCALL_BYTES`].
pub(crate) fn passed_too_much(e: &wasmtime::Error) -> bool {
    // wasmtime 48 keeps the error's type private; its message is stable within the pinned line.
    e.chain().any(|c| {
        c.to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    })
}

/// Host state of one component instance.
pub struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outgoing: Outgoing,
    /// State the grants gave this instance (see [`Host::granted`]).
    granted: Vec<Arc<dyn Any + Send + Sync>>,
    pub(crate) account: Account,
}

impl Host {
    /// A host for one instance of `workload`, shaped by its grants, with `memory` bytes per
    /// linear memory; `wasi` adds what the caller sets beyond the grants (a job's arguments).
    pub(crate) fn new(
        workload: &Arc<Workload>,
        memory: u64,
        wasi: impl FnOnce(&mut WasiCtxBuilder),
    ) -> Self {
        let mut shaped = shape(workload, wasi);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        Self {
            wasi: shaped.wasi.build(),
            http,
            table: ResourceTable::new(),
            outgoing: Outgoing {
                workload: workload.clone(),
                send: shaped.outgoing,
                trace: None,
                within: None,
            },
            granted: shaped.granted,
            account: Account::new(memory, workload.metrics.alive()),
        }
    }

    /// The state of type `T` a grant gave this instance, if one did.
    pub fn granted<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.granted.iter().find_map(|s| s.downcast_ref::<T>())
    }

    /// The span the instance's outgoing requests are made under (the request it serves).
    pub(crate) fn trace_under(&mut self, span: Option<shoal_trace::SpanContext>) {
        self.outgoing.trace = span;
    }

    /// The request the instance serves: its outgoing calls to other apps are one hop further
    /// along the same chain, within the same deadline.
    pub(crate) fn serve_within(&mut self, within: Within) {
        self.outgoing.within = Some(within);
    }

    /// [`Host::serve_within`] for an instance that serves several requests at once: the
    /// deepest of them counts (a loop through shared instances still ends), and the latest
    /// deadline.
    pub(crate) fn serve_also(&mut self, within: Within) {
        let merged = match self.outgoing.within {
            Some(w) => Within {
                depth: w.depth.max(within.depth),
                deadline: w.deadline.max(within.deadline),
            },
            None => within,
        };
        self.outgoing.within = Some(merged);
    }

    /// The workload this instance belongs to.
    pub(crate) fn workload(&self) -> &Arc<Workload> {
        &self.outgoing.workload
    }

    /// [`Host::granted`], and the instance's resource table beside it.
    pub fn granted_with_table<T: Any + Send + Sync>(&mut self) -> (Option<&T>, &mut ResourceTable) {
        let state = self.granted.iter().find_map(|s| s.downcast_ref::<T>());
        (state, &mut self.table)
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
            hooks: &mut self.outgoing,
        }
    }
}

/// `wasi:http` hooks of one instance: outgoing requests go where its grants send them, each
/// traced under the span of the request the instance serves (and carrying it on, in
/// `traceparent`).
struct Outgoing {
    workload: Arc<Workload>,
    send: Option<Arc<dyn OutgoingHttp>>,
    trace: Option<shoal_trace::SpanContext>,
    within: Option<Within>,
}

impl WasiHttpHooks for Outgoing {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<crate::Sent, wasmtime_wasi_http::Error>> + Send> {
        let mut span = match self.trace {
            Some(under) => {
                let method = request.method().as_str();
                let mut span =
                    shoal_trace::tracer().start(method, shoal_trace::SpanKind::Client, Some(under));
                span.set("http.request.method", method);
                span.set("url.full", &request.uri().to_string());
                if let Some(ctx) = span.context()
                    && let Ok(v) = http::HeaderValue::try_from(ctx.traceparent())
                {
                    request.headers_mut().insert(shoal_trace::TRACEPARENT, v);
                }
                span
            }
            None => shoal_trace::Span::none(),
        };
        request.extensions_mut().insert(Hop {
            depth: self.within.map_or(0, |w| w.depth) + 1,
            deadline: self.within.map(|w| w.deadline),
            caller: self.workload.name.as_str().into(),
            via: None,
        });
        let sent = self
            .send
            .as_ref()
            .map(|send| Box::into_pin(send.send(self.workload.clone(), request, options)));
        let metrics = self.workload.metrics.clone();
        let started = std::time::Instant::now();
        Box::new(async move {
            let result = match sent {
                Some(sent) => sent.await,
                None => Err(wasmtime_wasi_http::Error::HttpRequestDenied),
            };
            match &result {
                Err(wasmtime_wasi_http::Error::HttpRequestDenied) => {
                    metrics.denied(shoal_metrics::Denial::Outbound);
                    span.fail("denied: no outbound grant allows it");
                }
                Err(e) => {
                    metrics.outbound(started.elapsed());
                    span.fail(&e.to_string());
                }
                Ok((response, _)) => {
                    metrics.outbound(started.elapsed());
                    span.set("http.response.status_code", response.status().as_u16());
                }
            }
            result
        })
    }
}

/// Store state of a wasip1 module: its WASI context and the same limits a component gets.
pub(crate) struct P1Host {
    wasi: WasiP1Ctx,
    pub(crate) account: Account,
}

impl P1Host {
    /// A host for one wasip1 instance of `workload` (see [`Host::new`]).
    pub(crate) fn new(
        workload: &Arc<Workload>,
        memory: u64,
        wasi: impl FnOnce(&mut WasiCtxBuilder),
    ) -> Self {
        Self {
            wasi: shape(workload, wasi).wasi.build_p1(),
            account: Account::new(memory, workload.metrics.alive()),
        }
    }

    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

/// What an instance is charged: its memory cap and the CPU it used.
pub(crate) struct Account {
    pub(crate) limits: Cap,
    /// CPU spent so far (this request, or this attempt), charged at every epoch tick.
    pub(crate) cpu_used: Duration,
    /// Set when the CPU budget ran out, so the trap can be reported as a limit, not a bug.
    pub(crate) cpu_exceeded: bool,
}

impl Account {
    fn new(memory: u64, alive: shoal_metrics::Alive) -> Self {
        Self {
            limits: Cap::new(memory, alive),
            cpu_used: Duration::ZERO,
            cpu_exceeded: false,
        }
    }

    /// Adds `used` CPU; false once past `limit`.
    pub(crate) fn charge(&mut self, used: Duration, limit: Option<Duration>) -> bool {
        self.cpu_used += used;
        self.cpu_exceeded = limit.is_some_and(|l| self.cpu_used > l);
        !self.cpu_exceeded
    }
}

/// Store state that limits are charged to.
pub(crate) trait Charged: Send + 'static {
    fn account(&mut self) -> &mut Account;
}

impl Charged for Host {
    fn account(&mut self) -> &mut Account {
        &mut self.account
    }
}

impl Charged for P1Host {
    fn account(&mut self) -> &mut Account {
        &mut self.account
    }
}

/// The resource limits of one instance: `StoreLimits`, remembering whether memory was refused
/// so that a failure after it can be reported as the limit it is, and counting the instance
/// and its memory into its app's figures while it lives.
pub(crate) struct Cap {
    inner: StoreLimits,
    memory: usize,
    /// A memory was refused growth past the limit.
    pub(crate) memory_denied: bool,
    alive: shoal_metrics::Alive,
}

impl Cap {
    pub(crate) fn new(memory: u64, alive: shoal_metrics::Alive) -> Self {
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
            alive,
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
        if allowed {
            self.alive.grew(desired.saturating_sub(current) as u64);
        } else if desired > self.memory {
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
