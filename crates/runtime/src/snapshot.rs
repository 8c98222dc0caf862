//! Pre-initialisation itself: a component's init function run once in a sandbox that grants
//! nothing — every import traps — and the component's memories and globals after it written
//! into a new component, the image every instance of it starts from.
//!
//! `wasmtime-wizer` instruments the component (exports that read its state) and rewrites it
//! with the state it read; this module runs the instrumented component under bounds (memory,
//! time) and reads its state through [`Reader`].
//!
//! What an init may do: compute, allocate memory up to the app's limit, and write globals.
//! What it may not: call any import (no clock, no randomness, no environment, no files, no
//! output), create resources or handles that outlive it (they are not in the snapshot), or
//! run longer than its timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Instance, Lift, Linker, WasmList};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// What to run before a component serves, and within which bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// The exported function that initialises, of type `func()`: a name exported by the
    /// component (`wizer-initialize`), or `INTERFACE#NAME` for one in an exported interface.
    pub function: String,
    /// Bytes of linear memory the init may grow to (the app's memory limit: the snapshot's
    /// memory is where every instance starts).
    pub memory: u64,
    /// How long instantiating the component and running the function may take.
    pub timeout: Duration,
}

/// How often the init's epoch advances: the resolution of its deadline.
const TICK: Duration = Duration::from_millis(10);

/// The state the init may use: its memory bound.
struct Sandbox {
    limits: StoreLimits,
}

/// Runs `init` on the component `wasm` and returns the component rewritten with the state it
/// left. Every import traps; the init may grow memory to `init.memory` and run for
/// `init.timeout`. `config` is the node's engine configuration (epoch interruption on).
///
/// # Errors
/// What went wrong, for the user: the function is missing or of the wrong type, it trapped
/// (an import it called, a memory it could not grow, the deadline), or the component is not
/// one wizer can snapshot.
pub(crate) fn wizen(
    wasm: &[u8],
    init: &Init,
    mut config: wasmtime::Config,
) -> Result<Vec<u8>, String> {
    let mut wizer = Wizer::new();
    wizer.init_func(init.function.clone()).keep_init_func(true);
    let (context, instrumented) = wizer
        .instrument_component(wasm)
        .map_err(|e| format!("cannot be pre-initialised: {e:#}"))?;
    // Memories reserve only what they use (bounds-checked code, which runs once): the
    // compiler child's address space is capped, and a 4 GiB reservation would not fit.
    config
        .memory_reservation(0)
        .memory_guard_size(0)
        .memory_reservation_for_growth(1 << 20);
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    let component = Component::new(&engine, &instrumented)
        .map_err(|e| format!("cannot be pre-initialised: it does not compile: {e:#}"))?;
    let memory = usize::try_from(init.memory).unwrap_or(usize::MAX);
    let mut store = Store::new(
        &engine,
        Sandbox {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .trap_on_grow_failure(true)
                .build(),
        },
    );
    store.limiter(|s| &mut s.limits);
    let ticks = u64::try_from(init.timeout.as_millis() / TICK.as_millis()).unwrap_or(u64::MAX);
    store.set_epoch_deadline(ticks.max(1));
    store.epoch_deadline_trap();
    let _ticking = Ticking::start(&engine);
    let mut linker = Linker::new(&engine);
    linker
        .define_unknown_imports_as_traps(&component)
        .map_err(|e| format!("cannot be pre-initialised: {e:#}"))?;
    futures::executor::block_on(async {
        let instance = linker
            .instantiate_async(&mut store, &component)
            .await
            .map_err(|e| explain(&e, init, "instantiating the component"))?;
        let func = init_func(&mut store, &instance, &init.function)?;
        func.call_async(&mut store, ())
            .await
            .map_err(|e| explain(&e, init, &format!("`{}`", init.function)))?;
        let mut reader = Reader {
            store: &mut store,
            instance,
            failed: None,
        };
        let snapshot = wizer
            .snapshot_component(&context, &mut reader)
            .await
            .map_err(|e| format!("its state cannot be snapshotted: {e:#}"))?;
        match reader.failed {
            Some(e) => Err(format!("its state cannot be read: {e}")),
            None => Ok(snapshot),
        }
    })
}

/// The exported `func()` named `name` (`NAME` or `INTERFACE#NAME`).
fn init_func(
    store: &mut Store<Sandbox>,
    instance: &Instance,
    name: &str,
) -> Result<wasmtime::component::TypedFunc<(), ()>, String> {
    let (interface, func) = match name.split_once('#') {
        Some((interface, func)) => (Some(interface), func),
        None => (None, name),
    };
    let parent = match interface {
        Some(interface) => Some(
            instance
                .get_export_index(&mut *store, None, interface)
                .ok_or_else(|| format!("the component exports no interface `{interface}`"))?,
        ),
        None => None,
    };
    let (item, index) = instance
        .get_export(&mut *store, parent.as_ref(), func)
        .ok_or_else(|| format!("the component exports no function `{name}`"))?;
    let ComponentItem::ComponentFunc(ty) = item else {
        return Err(format!("the component's export `{name}` is not a function"));
    };
    if ty.params().len() != 0 || ty.results().len() != 0 {
        return Err(format!(
            "the component's function `{name}` takes or returns values; an init function has type func()"
        ));
    }
    instance
        .get_typed_func(&mut *store, index)
        .map_err(|e| format!("`{name}`: {e:#}"))
}

/// What a trap during `doing` means for the user: its cause, without the wasm backtrace.
fn explain(e: &wasmtime::Error, init: &Init, doing: &str) -> String {
    let cause = e.root_cause().to_string();
    if cause.contains("forcing trap when growing memory") {
        format!(
            "{doing} needed more memory than the app's limit of {} MiB (spec.limits.memory)",
            init.memory >> 20
        )
    } else if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref() {
        format!(
            "{doing} ran longer than {:?} (spec.init.timeout)",
            init.timeout
        )
    } else if let Some(import) = cause
        .strip_prefix("unknown import: `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(import, _)| import)
    {
        format!(
            "{doing} called the import {import}, and an init may call none (nothing is granted at deploy time)"
        )
    } else {
        format!("{doing} trapped: {cause}")
    }
}

/// Advances `engine`'s epoch every [`TICK`] while it lives.
struct Ticking(Arc<AtomicBool>);

impl Ticking {
    fn start(engine: &Engine) -> Self {
        let (stop, engine) = (Arc::new(AtomicBool::new(false)), engine.clone());
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        Self(stop)
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Reads the initialised instance's state through the accessors wizer exported; the first
/// failure is kept (the trait's methods cannot return one) and fails the snapshot.
struct Reader<'a> {
    store: &'a mut Store<Sandbox>,
    instance: Instance,
    failed: Option<String>,
}

impl Reader<'_> {
    async fn call<R: Lift + Send + Sync + 'static + Default>(
        &mut self,
        interface: &str,
        func: &str,
    ) -> R {
        match self.try_call(interface, func).await {
            Ok(r) => r,
            Err(e) => {
                self.failed.get_or_insert(e);
                R::default()
            }
        }
    }

    async fn try_call<R: Lift + Send + Sync + 'static>(
        &mut self,
        interface: &str,
        func: &str,
    ) -> Result<R, String> {
        let parent = self
            .instance
            .get_export_index(&mut *self.store, None, interface)
            .ok_or_else(|| format!("no `{interface}` export"))?;
        let index = self
            .instance
            .get_export_index(&mut *self.store, Some(&parent), func)
            .ok_or_else(|| format!("no `{interface}#{func}` export"))?;
        let typed = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, index)
            .map_err(|e| format!("{interface}#{func}: {e:#}"))?;
        let (r,) = typed
            .call_async(&mut *self.store, ())
            .await
            .map_err(|e| format!("{interface}#{func}: {e:#}"))?;
        Ok(r)
    }
}

impl ComponentInstanceState for Reader<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        interface: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.try_call::<WasmList<u8>>(interface, func).await {
            Ok(list) => contents(list.as_le_slice(&*self.store)),
            Err(e) => {
                self.failed.get_or_insert(e);
                contents(&[]);
            }
        }
    }

    async fn call_func_ret_s32(&mut self, interface: &str, func: &str) -> i32 {
        self.call(interface, func).await
    }

    async fn call_func_ret_s64(&mut self, interface: &str, func: &str) -> i64 {
        self.call(interface, func).await
    }

    async fn call_func_ret_f32(&mut self, interface: &str, func: &str) -> u32 {
        self.call::<f32>(interface, func).await.to_bits()
    }

    async fn call_func_ret_f64(&mut self, interface: &str, func: &str) -> u64 {
        self.call::<f64>(interface, func).await.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(path: &str) -> Vec<u8> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        std::fs::read(format!("{root}/{path}")).unwrap()
    }

    /// What the node's engines are configured with that matters here.
    fn config() -> wasmtime::Config {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true).concurrency_support(true);
        config
    }

    fn init(function: &str, timeout: Duration) -> Init {
        Init {
            function: function.into(),
            memory: 64 << 20,
            timeout,
        }
    }

    #[test]
    fn a_snapshot_holds_what_the_init_built_and_keeps_the_component_whole() {
        let wasm = guest("examples/init-c/table.wasm");
        let snapshot = wizen(
            &wasm,
            &init("wizer-initialize", Duration::from_secs(60)),
            config(),
        )
        .unwrap();
        // The tables the init filled are data now; the component still validates and still
        // exports its handler (and its init, which nothing calls again).
        assert!(
            snapshot.len() > wasm.len() + (1 << 20),
            "{}",
            snapshot.len()
        );
        let engine = Engine::new(&config()).unwrap();
        let component = Component::new(&engine, &snapshot).unwrap();
        let exports: Vec<String> = component
            .component_type()
            .exports(&engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports = exports.join(", ");
        assert!(exports.contains("wasi:http/incoming-handler"), "{exports}");
        assert!(exports.contains("wizer-initialize"), "{exports}");
    }

    #[test]
    fn an_init_that_fails_says_how() {
        let long = Duration::from_secs(60);
        let cases = [
            (
                "tests/fixtures/init-traps.wasm",
                long,
                "`wizer-initialize` trapped: wasm trap: wasm `unreachable` instruction executed",
            ),
            (
                "tests/fixtures/init-prints.wasm",
                long,
                "`wizer-initialize` called the import wasi:cli/stdin@0.2.12#get-stdin, and an init may call none",
            ),
            (
                "tests/fixtures/init-spins.wasm",
                Duration::from_millis(200),
                "`wizer-initialize` ran longer than 200ms (spec.init.timeout)",
            ),
        ];
        for (path, timeout, said) in cases {
            let e = wizen(&guest(path), &init("wizer-initialize", timeout), config()).unwrap_err();
            assert!(e.contains(said), "{path}: {e}");
        }
        let table = guest("examples/init-c/table.wasm");
        let e = wizen(&table, &init("setup", long), config()).unwrap_err();
        assert!(e.contains("exports no function `setup`"), "{e}");
        let handle = init("wasi:http/incoming-handler@0.2.12#handle", long);
        let e = wizen(&table, &handle, config()).unwrap_err();
        assert!(e.contains("takes or returns values"), "{e}");
        let small = Init {
            memory: 1 << 20,
            ..init("wizer-initialize", long)
        };
        let e = wizen(&table, &small, config()).unwrap_err();
        assert!(
            e.contains("more memory than the app's limit of 1 MiB"),
            "{e}"
        );
    }
}
