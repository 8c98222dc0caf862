//! The engines: one for WASI 0.2 components and wasip1 modules, one with the component
//! model's concurrency for WASI 0.3 components, one for pre-initialised snapshots of WASI 0.2
//! components; each a pooling allocator sized per node and a linker. The epoch ticker and the
//! compile cache location.

use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::absent::AbsentImports;
use crate::component::LoadedSet;
use crate::host::{Host, P1Host};
use crate::lanes::{BusyLane, COMPILE_NICE, lower_priority};
use crate::reuse::Budget;
use crate::ticker::Ticker;

/// Node-level settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Instances that may exist at once on this node (across all apps); sizes the pool.
    pub max_instances: u32,
    /// Where compiled code is cached, keyed by component digest and engine compatibility.
    pub cache_dir: PathBuf,
    /// Threads of the busy lane, where a request that has computed for more than a few
    /// milliseconds finishes at the lowest priority (see `lanes`). One less than the number of
    /// cores keeps a core free of guest computation, which on the bench halved the latency
    /// tail short requests see beside busy guests.
    pub busy_threads: usize,
    /// Instances come from the pooling allocator (the default: reserved slots, keep-resident
    /// pages, no mmap per request). Off, every instance maps and unmaps its own memory; for
    /// hosts short of virtual address space, and to measure what the pool is worth.
    pub pooling: bool,
    /// Bytes of linear memory a warm pool slot keeps mapped (reset by copying the image back
    /// and zeroing, not by unmapping; a snapshot's slots restore only the written pages).
    pub keep_resident: u64,
    /// Imports that nothing links and that are answered as denials rather than refused at
    /// load (see [`AbsentImports`]).
    pub absent_imports: AbsentImports,
    /// Compile in a child process within these bounds (see [`crate::compiler`]); `None`
    /// compiles in this process, unbounded (for tests and embedders without the program).
    pub compile_limits: Option<crate::compiler::CompileLimits>,
}

impl RuntimeConfig {
    /// What `shoal up --keep-resident` defaults to: enough for a fresh Python or JavaScript
    /// instance to take no page faults (3.2× and 2.9× `wasmtime serve`, against 2.2× and 2.0×
    /// at 10 MiB). A slot keeps no more than the memory its last instance had, so small
    /// guests are not charged for it.
    pub const DEFAULT_KEEP_RESIDENT: &str = "64Mi";
}

/// Bytes at the top of a pooled async stack zeroed in place when it is returned (the rest is
/// decommitted): see `Flavor::new`.
const STACK_KEPT: usize = 64 << 10;

/// Idle pool slots that keep their memory (wasmtime's `max_unused_warm_slots`, whose default
/// this is, stated here because the memory bound depends on it).
const WARM_SLOTS: u32 = 100;

/// One engine and its linker: what a component is compiled for and linked against.
pub(crate) struct Flavor {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<Host>>,
    /// The engine's compatibility hash, part of every compile-cache file name.
    pub(crate) compat: String,
}

/// How a pool slot's linear memory is made as it was for the next instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryReset {
    /// The image copied back and the rest zeroed, up to keep-resident (the rest unmapped): no
    /// page faults for the next instance, at the cost of copying all the memory the last
    /// one had. For components whose requests write much of their memory (Python's do).
    Copy,
    /// Only the pages the instance wrote, as the kernel tells them (`PAGEMAP_SCAN`): for a
    /// snapshot, whose requests read a large image and write little of it.
    Written,
}

/// Which of the two engines a linker belongs to, and so which host functions it can hold:
/// only `Concurrent` can define functions whose WIT type is `async func` (Spin 3's
/// interfaces, say), which only components compiled for it can import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// WASI 0.2 components and wasip1 modules.
    Sync,
    /// WASI 0.3 components: the component model's concurrency on.
    Concurrent,
}

/// The wasmtime engines and linkers shared by every workload on a node.
///
/// # Why three engines
/// The component model's concurrency (what WASI 0.3 needs: `stream`, `future`, async
/// exports) makes every store and call of an engine that enables it pay for it: measured on
/// the HTTP bench, a WASI 0.2 C component served a quarter slower from such an engine. So
/// 0.2 components and wasip1 modules compile for `sync`, an engine without it, and only
/// components that need it (their validation says so) compile for `concurrent`.
///
/// How a pool resets a slot's memory is the engine's too, and no one way suits every
/// component (see [`MemoryReset`]): `snapshot` is `sync` with the reset that suits
/// pre-initialised snapshots. Its code is `sync`'s (one compatibility hash, one cached file);
/// its pool is address space reserved, not memory, until a snapshot runs.
///
/// # Guarantees
/// With `pooling` (as `shoal up` runs), every instance comes from a pooling allocator (one per
/// engine, each of `max_instances` slots) with copy-on-write memory images; memory, tables and
/// stacks up to the keep-resident sizes stay mapped between uses so that a fresh instance
/// takes no page faults on them. An epoch ticker thread and the busy lane run while the
/// `Runtime` lives.
pub struct Runtime {
    /// WASI 0.2 components and wasip1 modules.
    pub(crate) sync: Flavor,
    /// WASI 0.3 components (the component model's concurrency on).
    pub(crate) concurrent: Flavor,
    /// Pre-initialised snapshots of WASI 0.2 components (and compositions of them): `sync`,
    /// but a slot restores only the pages its instance wrote ([`MemoryReset::Written`]).
    pub(crate) snapshot: Flavor,
    /// WASI preview 1 for Jobs that are core modules (on the `sync` engine).
    pub(crate) p1_linker: Arc<wasmtime::Linker<P1Host>>,
    pub(crate) cache_dir: PathBuf,
    /// Bounds of a compile, run in a child process; `None`: in this process.
    pub(crate) compile_limits: Option<crate::compiler::CompileLimits>,
    pub(crate) ticker: Arc<Ticker>,
    pub(crate) lane: Arc<BusyLane>,
    /// The HTTP components loaded now, shared by digest.
    pub(crate) loaded: LoadedSet,
    /// Bounds the idle instances that apps opting into reuse keep, node-wide.
    pub(crate) reuse_budget: Arc<Budget>,
    /// Imports answered as denials when nothing links them.
    pub(crate) absent: AbsentImports,
    /// Compiles and compile cache hits.
    pub(crate) stats: crate::stats::Stats,
}

impl Runtime {
    /// Builds the engines and their linkers — WASI (0.2, and 0.3 for the concurrent engine)
    /// and `wasi:http`, then whatever `link` adds (the capabilities' host interfaces) — and
    /// starts the epoch ticker.
    ///
    /// # Errors
    /// A pool cannot be reserved (e.g. too little address space for `max_instances`), `link`
    /// fails, or the cache directory cannot be created.
    pub fn new(
        cfg: RuntimeConfig,
        link: impl Fn(&mut Linker<Host>, EngineKind) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let n = cfg.max_instances.max(1);
        let sync = Flavor::new(&cfg, false, MemoryReset::Copy, &link)?;
        let concurrent = Flavor::new(&cfg, true, MemoryReset::Copy, &link)?;
        let snapshot = Flavor::new(&cfg, false, MemoryReset::Written, &link)?;
        let mut p1_linker = wasmtime::Linker::new(&sync.engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, P1Host::wasi)?;
        // Exit codes 0–255 as the program gives them (wasmtime's preview 1 refuses 126 and
        // up, where WASI 0.2 and 0.3 take any u8).
        p1_linker.allow_shadowing(true).func_wrap(
            "wasi_snapshot_preview1",
            "proc_exit",
            |_: wasmtime::Caller<'_, P1Host>, status: i32| -> wasmtime::Result<()> {
                match u8::try_from(status) {
                    Ok(code) => Err(wasmtime_wasi::I32Exit(code.into()).into()),
                    Err(_) => Err(wasmtime::Error::msg(format!(
                        "exit with invalid status {status} (outside 0..=255)"
                    ))),
                }
            },
        )?;
        std::fs::create_dir_all(&cfg.cache_dir)?;

        // Cranelift compiles on rayon's global pool: build it first, at a lower priority, so
        // that compiling a new app slows neither serving apps nor busy guests much. (Another
        // `Runtime` in this process may have built it already; then it stays as it is.)
        let _ = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("shoal-compile-{i}"))
            .start_handler(|_| lower_priority(COMPILE_NICE))
            .build_global();

        // A loaded component keeps its compiled file open (wasmtime maps the code and the
        // memory images from it, shared through the page cache): one descriptor per app, so
        // 10,000 apps need more than the usual soft limit of 1,024.
        raise_open_files_limit();

        let ticker = Arc::new(Ticker::start(&[
            sync.engine.clone(),
            concurrent.engine.clone(),
            snapshot.engine.clone(),
        ])?);
        Ok(Self {
            sync,
            concurrent,
            snapshot,
            p1_linker: Arc::new(p1_linker),
            cache_dir: cfg.cache_dir,
            compile_limits: cfg.compile_limits,
            ticker,
            lane: Arc::new(BusyLane::start(cfg.busy_threads)?),
            loaded: LoadedSet::default(),
            // Half the slots at most, so that fresh instances always find one.
            reuse_budget: Budget::start(n as usize / 2)?,
            absent: cfg.absent_imports,
            stats: crate::stats::Stats::default(),
        })
    }

    /// The flavor `engine` is.
    pub(crate) fn flavor_of(&self, engine: &Engine) -> &Flavor {
        if Engine::same(engine, &self.concurrent.engine) {
            &self.concurrent
        } else if Engine::same(engine, &self.snapshot.engine) {
            &self.snapshot
        } else {
            &self.sync
        }
    }
}

impl Flavor {
    /// An engine with the component model's concurrency on or off, and its linker.
    fn new(
        cfg: &RuntimeConfig,
        concurrency: bool,
        reset: MemoryReset,
        link: &impl Fn(&mut Linker<Host>, EngineKind) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let n = cfg.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_memories_per_module(2)
            .max_tables_per_module(4)
            // Measured: keeping these resident removes every page fault of a fresh instance.
            .linear_memory_keep_resident(usize::try_from(cfg.keep_resident).unwrap_or(usize::MAX))
            // PAGEMAP_SCAN (reset only the dirtied pages) stays off but for snapshots: measured
            // on Linux 6.18, it lifted JavaScript from 2.0× to 2.75× `wasmtime serve` at 10 MiB
            // but cut Python from 2.2× to 1.3× (and to 1.35× at 64 MiB, against 3.2× without
            // it): a scan stops after 32 dirty regions and everything past them is decommitted
            // and faults again. A snapshot's requests read its image and write a few pages:
            // copying the image back cost the table example 1.9× hello's request, the scan 1.1×.
            .pagemap_scan(match reset {
                MemoryReset::Copy => wasmtime::Enabled::No,
                // Where the kernel has no PAGEMAP_SCAN (before 6.7), by copying.
                MemoryReset::Written => wasmtime::Enabled::Auto,
            })
            // Slots that keep their memory between uses: those in use at the peak, plus this
            // many idle ones; so warm memory is bounded by (peak + WARM_SLOTS) × keep-resident.
            .max_unused_warm_slots(WARM_SLOTS.min(n))
            .table_keep_resident(1 << 20)
            .async_stack_keep_resident(STACK_KEPT);
        let mut config = crate::compiler::engine_config(concurrency);
        // A pooled stack serves every app in turn: zero it before the next one runs on it, so
        // that no stack slot a miscompiled read could reach holds another tenant's bytes. The
        // top STACK_KEPT bytes (all a request's frames, as a rule) are zeroed in place and stay
        // resident; the rest is handed back to the kernel.
        config.async_stack_zeroing(true);
        config.allocation_strategy(if cfg.pooling {
            InstanceAllocationStrategy::Pooling(pool)
        } else {
            InstanceAllocationStrategy::OnDemand
        });
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        if concurrency {
            // WASI 0.3 beside 0.2: a component imports one version or the other, or both.
            wasmtime_wasi::p3::add_to_linker(&mut linker)?;
            wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        }
        let kind = if concurrency {
            EngineKind::Concurrent
        } else {
            EngineKind::Sync
        };
        link(&mut linker, kind)?;
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            compat,
        })
    }
}

#[cfg(test)]
impl RuntimeConfig {
    /// A small runtime's settings for tests: two instances, its cache in `dir`, compiling in
    /// this process.
    pub(crate) fn for_tests(dir: &std::path::Path, pooling: bool) -> Self {
        Self {
            max_instances: 2,
            cache_dir: dir.join("compiled"),
            busy_threads: 1,
            pooling,
            keep_resident: 0,
            absent_imports: AbsentImports::none(),
            compile_limits: None,
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, as Go's runtime does at
/// start; a refusal is only reported, and loads past the limit then fail naming the app.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct they are given and this
    // process's own limit.
    #[allow(
        unsafe_code,
        reason = "getrlimit/setrlimit have no safe wrapper in std"
    )]
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) != 0 {
            false
        } else if limit.rlim_cur >= limit.rlim_max {
            true
        } else {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) == 0
        }
    };
    if !raised {
        tracing::warn!(
            "cannot raise the open-files limit ({}): each loaded app holds one file open",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_stacks_are_zeroed_between_uses() {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig::for_tests(dir.path(), true);
        let runtime = Runtime::new(config, |_, _| Ok(())).unwrap();
        // wasmtime counts the stack bytes it keeps resident (zeroed) only when it zeroes them.
        for engine in [
            &runtime.sync.engine,
            &runtime.concurrent.engine,
            &runtime.snapshot.engine,
        ] {
            let metrics = engine.pooling_allocator_metrics().unwrap();
            assert_eq!(metrics.unused_stack_bytes_resident(), Some(0));
        }
    }
}
