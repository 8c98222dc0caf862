//! Jobs: a `wasi:cli` command component, or a wasip1 core module with `_start`, run to
//! completion with arguments, environment, stdin and limits.

use crate::code::{Code, exports};
use crate::host::{Charged, Host, P1Host};
use crate::lanes::Meter;
use crate::ticker::{EPOCH_TICK, Ticker};
use crate::{Artifact, LoadError, Runtime, Workload};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{InstancePre, Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

/// A command ready to run: compiled, linked and pre-instantiated.
#[derive(Clone)]
pub struct Command {
    kind: Kind,
    /// Guest code runs only while epochs tick.
    _ticker: Arc<Ticker>,
    /// `sha256:<hex>` of the file.
    pub digest: String,
}

#[derive(Clone)]
enum Kind {
    Component(CommandPre<Host>),
    /// A `wasi:cli/run@0.3.x` command, run in the store's concurrent event loop.
    P3(wasmtime_wasi::p3::bindings::CommandPre<Host>),
    Module(InstancePre<P1Host>),
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The command exited (0 is success).
    Code(i32),
    /// It trapped; the message says how.
    Trapped(String),
    /// The host failed it (not the guest's doing); the message says how.
    Failed(String),
    /// It used more CPU than its limit.
    CpuExceeded(Duration),
    /// It ran longer than its timeout.
    TimedOut(Duration),
    /// It failed after memory growth past its limit was refused.
    OutOfMemory {
        /// The exit code, when it exited (rather than trapped).
        code: Option<i32>,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl Exit {
    /// The exit code, when the command exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(*c),
            Exit::OutOfMemory { code, .. } => *code,
            _ => None,
        }
    }

    /// True for exit code 0.
    pub fn succeeded(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Trapped(m) | Exit::Failed(m) => f.write_str(m),
            Exit::CpuExceeded(l) => {
                write!(f, "exceeded its CPU limit ({l:?}); raise spec.limits.cpu")
            }
            Exit::TimedOut(t) => write!(
                f,
                "did not finish within its timeout ({t:?}); raise spec.timeout"
            ),
            Exit::OutOfMemory { code, limit } => {
                let limit = match limit % (1 << 20) {
                    0 => format!("{}Mi", limit >> 20),
                    _ => format!("{}Ki", limit >> 10),
                };
                write!(
                    f,
                    "ran out of memory: growing past its limit of {limit} was refused"
                )?;
                if let Some(code) = code {
                    write!(f, ", then it exited with code {code}")?;
                }
                f.write_str("; raise spec.limits.memory")
            }
        }
    }
}

/// One attempt's inputs and limits.
pub struct Invocation {
    /// `argv`, the program name first.
    pub args: Vec<String>,
    /// Bytes on stdin.
    pub stdin: Bytes,
    /// Bytes per linear memory.
    pub memory: u64,
    /// Guest CPU time, when limited.
    pub cpu: Option<Duration>,
    /// Wall-clock time.
    pub timeout: Duration,
}

impl Runtime {
    /// Compiles (or loads from the cache) the command `artifact` and checks that it can run
    /// as a command. Blocks: call it off the async workers.
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load_command(&self, artifact: &Artifact) -> Result<(Command, bool), LoadError> {
        let (code, from_cache) = self.code(artifact)?;
        let kind = match code {
            Code::Component(component) => {
                let flavor = self.flavor_of(component.engine());
                let pre = self.link(flavor, &component)?;
                if let Ok(p3) = wasmtime_wasi::p3::bindings::CommandPre::new(pre.clone()) {
                    return Ok((
                        Command {
                            kind: Kind::P3(p3),
                            _ticker: self.ticker.clone(),
                            digest: artifact.digest.clone(),
                        },
                        from_cache,
                    ));
                }
                Kind::Component(CommandPre::new(pre).map_err(|_| {
                    let exports = exports(&flavor.engine, &component);
                    LoadError::NotCommand {
                        hint: if exports.contains("wasi:http/incoming-handler")
                            || exports.contains("wasi:http/handler")
                        {
                            "; this is a wasi:http component, which runs as an App, not a Job"
                        } else {
                            ""
                        },
                        exports,
                    }
                })?)
            }
            Code::Module(module) => {
                if !matches!(
                    module.get_export("_start"),
                    Some(wasmtime::ExternType::Func(_))
                ) {
                    return Err(LoadError::NotCommand {
                        exports: module
                            .exports()
                            .map(|e| e.name().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        hint: "; a wasip1 module must be a command with _start (not a reactor)",
                    });
                }
                Kind::Module(
                    self.p1_linker
                        .instantiate_pre(&module)
                        .map_err(LoadError::Link)?,
                )
            }
        };
        Ok((
            Command {
                kind,
                _ticker: self.ticker.clone(),
                digest: artifact.digest.clone(),
            },
            from_cache,
        ))
    }

    /// Runs one attempt of `workload`'s command to its end on the busy lane (the lowest
    /// priority: serving requests comes first), its output going to the workload's log.
    ///
    /// # Guarantees
    /// Never panics; the instance is dropped when the command exits, traps or runs out of
    /// time, and dropping the returned future stops it.
    pub async fn run_command(
        &self,
        command: &Command,
        workload: Workload,
        inv: Invocation,
    ) -> Exit {
        let workload = Arc::new(workload);
        let (args, stdin) = (inv.args, inv.stdin);
        let wasi = move |w: &mut wasmtime_wasi::WasiCtxBuilder| {
            w.args(&args).stdin(MemoryInputPipe::new(stdin));
        };
        let started = Instant::now();
        let limits = (inv.cpu, inv.memory);
        // Batch work starts on the busy lane: requests always come first.
        let meter = Arc::new(Meter::new(true));
        let guest: std::pin::Pin<Box<dyn Future<Output = Exit> + Send>> = match &command.kind {
            Kind::Component(pre) => {
                let host = Host::new(&workload, inv.memory, wasi);
                let mut store = metered_store(pre.engine(), host, inv.cpu, &meter);
                let pre = pre.clone();
                Box::pin(async move {
                    let run = async {
                        let command = pre.instantiate_async(&mut store).await?;
                        let result = command.wasi_cli_run().call_run(&mut store).await?;
                        Ok(i32::from(result.is_err()))
                    };
                    let result = run.await;
                    exit_of(result, store.data_mut(), limits)
                })
            }
            Kind::P3(pre) => {
                let host = Host::new(&workload, inv.memory, wasi);
                let mut store = metered_store(pre.engine(), host, inv.cpu, &meter);
                let pre = pre.clone();
                Box::pin(async move {
                    let run = async {
                        let command = pre.instantiate_async(&mut store).await?;
                        let result = store
                            .run_concurrent(async |accessor| {
                                command.wasi_cli_run().call_run(accessor).await
                            })
                            .await??;
                        Ok(i32::from(result.is_err()))
                    };
                    let result = run.await;
                    exit_of(result, store.data_mut(), limits)
                })
            }
            Kind::Module(pre) => {
                let host = P1Host::new(&workload, inv.memory, wasi);
                let mut store = metered_store(pre.module().engine(), host, inv.cpu, &meter);
                let pre = pre.clone();
                Box::pin(async move {
                    let run = async {
                        let instance = pre.instantiate_async(&mut store).await?;
                        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                        start.call_async(&mut store, ()).await?;
                        Ok(0)
                    };
                    let result = run.await;
                    exit_of(result, store.data_mut(), limits)
                })
            }
        };
        let exit =
            match tokio::time::timeout(inv.timeout, self.lane.run(Box::pin(guest), meter)).await {
                Err(_) => Exit::TimedOut(inv.timeout),
                Ok(Ok(exit)) => exit,
                Ok(Err(e)) => Exit::Failed(format!("the busy lane lost the job: {e}")),
            };
        tracing::debug!(
            "{}: attempt {exit} after {:.1?}",
            workload.name,
            started.elapsed()
        );
        exit
    }
}

/// A store for one attempt: `host`, its memory cap, and the CPU meter charging `cpu` at every
/// epoch tick (yielding each time, so that jobs share the lane's threads).
fn metered_store<T: Charged>(
    engine: &wasmtime::Engine,
    host: T,
    cpu: Option<Duration>,
    meter: &Arc<Meter>,
) -> Store<T> {
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.account().limits);
    store.set_hostcall_fuel(crate::host::MAX_HOSTCALL_BYTES);
    store.set_epoch_deadline(1);
    let meter = meter.clone();
    store.epoch_deadline_callback(move |mut ctx| {
        if !ctx
            .data_mut()
            .account()
            .charge(meter.charge(EPOCH_TICK), cpu)
        {
            return Err(Trap::Interrupt.into());
        }
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    store
}

/// How an attempt that returned `result` ended, given what its host saw.
fn exit_of(
    result: wasmtime::Result<i32>,
    host: &mut impl Charged,
    (cpu, memory): (Option<Duration>, u64),
) -> Exit {
    let account = host.account();
    let (memory_denied, cpu_exceeded) = (account.limits.memory_denied, account.cpu_exceeded);
    let code = match result {
        Ok(code) => Some(code),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Some(exit.0),
            None if cpu_exceeded => {
                return Exit::CpuExceeded(cpu.unwrap_or_default());
            }
            None if memory_denied => None,
            None => {
                return match e.downcast_ref::<Trap>() {
                    Some(Trap::StackOverflow) => Exit::Trapped("overflowed its stack".into()),
                    Some(trap) => Exit::Trapped(format!(
                        "trapped: {}",
                        trap.to_string().trim_start_matches("wasm trap: ")
                    )),
                    None => Exit::Failed(format!("failed: {}", e.root_cause())),
                };
            }
        },
    };
    match code {
        Some(code) if code == 0 || !memory_denied => Exit::Code(code),
        code => Exit::OutOfMemory {
            code,
            limit: memory,
        },
    }
}
