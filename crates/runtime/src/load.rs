//! From component bytes to a pre-instantiated, checked `wasi:http` handler.

use crate::Runtime;
use crate::host::Host;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime::Module;
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// Why a component cannot be served. Messages are written for the user who deployed it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("is not a WebAssembly file (it does not start with the \\0asm magic bytes)")]
    NotWasm,
    /// A core module where a component is needed.
    #[error(
        "is a core WebAssembly module, not a component; an App needs a wasi:http component (encode the module with the wasi_snapshot_preview1 proxy adapter, or use a component toolchain)"
    )]
    CoreModule,
    /// Cranelift or validation rejected it.
    #[error("failed to compile: {0:#}")]
    Compile(wasmtime::Error),
    /// It imports something this node does not provide.
    #[error(
        "cannot be linked: {0:#}; Shoal provides WASI 0.2 and wasi:http, and grants no other imports"
    )]
    Link(wasmtime::Error),
    /// It does not export a supported incoming handler.
    #[error(
        "does not export wasi:http/incoming-handler@0.2.x (its exports: {exports}); an App must be a wasi:http proxy component{hint}"
    )]
    NotHttp {
        /// The exports it has instead.
        exports: String,
        /// Extra advice for a recognisable kind of component.
        hint: &'static str,
    },
    /// It is not a `wasi:cli` command.
    #[error(
        "is not a wasi:cli command (its exports: {exports}); a Job runs a component exporting wasi:cli/run@0.2.x or a wasip1 module with _start{hint}"
    )]
    NotCommand {
        /// The exports it has instead.
        exports: String,
        /// Extra advice for a recognisable kind of component.
        hint: &'static str,
    },
    /// The component file could not be read.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
}

/// A component ready to serve: compiled, linked, checked and pre-instantiated. A cheap handle:
/// clones share one compiled component, which is released when the last handle goes (see
/// [`HttpApp`](crate::HttpApp) scaling to zero).
#[derive(Clone)]
pub struct HttpComponent {
    pub(crate) inner: Arc<Prepared>,
}

pub(crate) struct Prepared {
    pub(crate) pre: ProxyPre<Host>,
    /// Guest code of this component can run only while epochs tick.
    _ticker: Arc<crate::engine::Ticker>,
    /// `sha256:<hex>` of the component bytes.
    pub(crate) digest: String,
    /// The component file it was loaded from (to load it again after scaling to zero).
    pub(crate) source: std::path::PathBuf,
}

impl HttpComponent {
    /// `sha256:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }
}

/// How [`Runtime::load_http`] obtained the compiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Another app on this node has it loaded: shared, nothing was read.
    Shared,
    /// Read from the on-disk compile cache.
    Cache,
    /// Compiled now (and cached).
    Compiled,
}

/// The result of [`Runtime::load_http`], with how the compiled code was obtained.
pub struct Loaded {
    /// The component.
    pub component: HttpComponent,
    /// Where the compiled code came from.
    pub origin: Origin,
    /// Time spent compiling or loading.
    pub elapsed: Duration,
}

/// The components loaded on a node, by digest, held weakly: apps with the same component share
/// it, and it is released when no app holds it.
#[derive(Default)]
pub(crate) struct LoadedSet {
    by_digest: Mutex<HashMap<String, Weak<Prepared>>>,
}

impl Runtime {
    /// Compiles (or loads from the cache) the component at `path`, whose content digest is
    /// `digest`, and checks that it can serve HTTP.
    ///
    /// # Caveats
    /// Blocks for as long as compilation takes (seconds for big components): call it from a
    /// blocking thread, never from an async worker.
    ///
    /// # Errors
    /// See [`LoadError`]; each says what the user should change.
    pub fn load_http(&self, digest: &str, path: &Path) -> Result<Loaded, LoadError> {
        let start = Instant::now();
        if let Some(inner) = self.loaded.get(digest) {
            return Ok(Loaded {
                component: HttpComponent { inner },
                origin: Origin::Shared,
                elapsed: start.elapsed(),
            });
        }
        let (code, from_cache) = self.code(digest, path)?;
        let Code::Component(component) = code else {
            return Err(LoadError::CoreModule);
        };
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(LoadError::Link)?;
        let pre = ProxyPre::new(instance_pre).map_err(|_| LoadError::NotHttp {
            hint: if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
                "; this is a wasi:cli command component, which runs as a Job, not an App"
            } else {
                ""
            },
            exports: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        })?;
        let inner = self.loaded.insert(Prepared {
            pre,
            _ticker: self.ticker.clone(),
            digest: digest.to_string(),
            source: path.to_path_buf(),
        });
        Ok(Loaded {
            component: HttpComponent { inner },
            origin: if from_cache {
                Origin::Cache
            } else {
                Origin::Compiled
            },
            elapsed: start.elapsed(),
        })
    }

    /// The compiled code of the file at `path` (content digest `digest`): from the cache
    /// when it is there, compiled (and cached) otherwise; and whether it came from the cache.
    pub(crate) fn code(&self, digest: &str, path: &Path) -> Result<(Code, bool), LoadError> {
        let mut head = [0u8; 8];
        let n = std::io::Read::read(&mut std::fs::File::open(path)?, &mut head)?;
        if n < 8 || !head.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        // Core modules have layer 0 in bytes 6..8; components have layer 1.
        let module = head[6..8] == [0, 0];
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let kind = if module { "module" } else { "component" };
        let cached = self
            .cache_dir
            .join(format!("{hex}-{}.{kind}.cwasm", self.compat));
        if let Some(code) = self.load_cached(&cached, module) {
            return Ok((code, true));
        }
        Ok((self.compile(path, &cached, module)?, false))
    }

    fn load_cached(&self, cached: &Path, module: bool) -> Option<Code> {
        if !cached.exists() {
            return None;
        }
        // SAFETY: the file is written only by `compile` below, into the node's own data dir,
        // and is named after the engine compatibility hash; wasmtime re-checks its header.
        #[allow(unsafe_code, reason = "deserializing our own precompiled code")]
        let result = unsafe {
            if module {
                Module::deserialize_file(&self.engine, cached).map(Code::Module)
            } else {
                Component::deserialize_file(&self.engine, cached).map(Code::Component)
            }
        };
        match result {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %cached.display(), "ignoring unusable compile cache entry: {e:#}");
                None
            }
        }
    }

    fn compile(&self, path: &Path, cached: &Path, module: bool) -> Result<Code, LoadError> {
        let bytes = std::fs::read(path)?;
        let code = if module {
            Code::Module(Module::new(&self.engine, &bytes).map_err(LoadError::Compile)?)
        } else {
            Code::Component(Component::new(&self.engine, &bytes).map_err(LoadError::Compile)?)
        };
        let serialized = match &code {
            Code::Module(m) => m.serialize(),
            Code::Component(c) => c.serialize(),
        };
        match serialized {
            Ok(compiled) => {
                // A unique temporary name: two nodes or threads may compile the same digest.
                let tmp = cached.with_extension(format!(
                    "tmp{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                let written =
                    std::fs::write(&tmp, compiled).and_then(|()| std::fs::rename(&tmp, cached));
                if let Err(e) = written {
                    tracing::warn!(path = %cached.display(), "cannot write compile cache: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize compiled code: {e:#}"),
        }
        Ok(code)
    }
}

impl LoadedSet {
    fn get(&self, digest: &str) -> Option<Arc<Prepared>> {
        self.lock().get(digest).and_then(Weak::upgrade)
    }

    /// Registers `prepared`, unless another thread loaded the same digest meanwhile (then that
    /// one is shared and `prepared` dropped).
    fn insert(&self, prepared: Prepared) -> Arc<Prepared> {
        let mut map = self.lock();
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(existing) = map.get(&prepared.digest).and_then(Weak::upgrade) {
            return existing;
        }
        let inner = Arc::new(prepared);
        map.insert(inner.digest.clone(), Arc::downgrade(&inner));
        inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Prepared>>> {
        self.by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Compiled code: a component, or a core module (only Jobs run those).
pub(crate) enum Code {
    Component(Component),
    Module(Module),
}
