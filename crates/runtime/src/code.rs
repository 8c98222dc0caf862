//! Compiled code and its cache: what a component or module file becomes, loaded from
//! `DATA/compiled/<hex>-<engine hash>.<kind>.cwasm` when it is there, compiled (and cached)
//! when it is not.

use crate::Runtime;
use crate::engine::Flavor;
use std::path::{Path, PathBuf};
use wasmparser::Parser;
use wasmtime::Module;
use wasmtime::component::Component;

/// A WebAssembly file to run, named by its content digest (the compile cache's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `sha256:<hex>` of the file's bytes, as the caller verified it.
    pub digest: String,
    /// Where the bytes are.
    pub path: PathBuf,
    /// The file is a pre-initialised snapshot ([`Runtime::pre_initialise`]) or a composition
    /// of one: its memory image is most of what its requests read, so its instances come
    /// from the pool whose slots restore only the pages an instance wrote (see
    /// [`Runtime`]'s `snapshot` engine).
    pub snapshot: bool,
}

impl Artifact {
    /// `sha256:` and the first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        self.digest.get(..19).unwrap_or(&self.digest)
    }
}

/// Why a component cannot be run. Messages are written for the user who deployed it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("is not a WebAssembly file (it does not start with the \\0asm magic bytes)")]
    NotWasm,
    /// WebAssembly, but neither a core module nor a component of a version wasmtime runs.
    #[error(
        "is WebAssembly of a version this node cannot run (neither a core module nor a component)"
    )]
    UnknownVersion,
    /// A core module where a component is needed.
    #[error(
        "is a core WebAssembly module, not a component; an App needs a wasi:http component (encode the module with the wasi_snapshot_preview1 proxy adapter, or use a component toolchain)"
    )]
    CoreModule,
    /// Cranelift or validation rejected it.
    #[error("failed to compile: {0:#}")]
    Compile(wasmtime::Error),
    /// Compiling it ran past one of the node's bounds (time, memory), or its compiler failed.
    #[error("was not compiled: {0}")]
    CompileLimit(String),
    /// It imports something this node does not provide.
    #[error(
        "cannot be linked: {0:#}; Shoal provides WASI 0.2 and 0.3, wasi:http, and the capabilities its spec grants"
    )]
    Link(wasmtime::Error),
    /// It does not export a supported incoming handler.
    #[error(
        "does not export wasi:http/incoming-handler@0.2.x or wasi:http/handler@0.3.x (its exports: {exports}); an App must be a wasi:http proxy or service component{hint}"
    )]
    NotHttp {
        /// The exports it has instead.
        exports: String,
        /// Extra advice for a recognisable kind of component.
        hint: &'static str,
    },
    /// It is not a `wasi:cli` command.
    #[error(
        "is not a wasi:cli command (its exports: {exports}); a Job runs a component exporting wasi:cli/run@0.2.x or @0.3.x, or a wasip1 module with _start{hint}"
    )]
    NotCommand {
        /// The exports it has instead.
        exports: String,
        /// Extra advice for a recognisable kind of component.
        hint: &'static str,
    },
    /// Its `spec.init` failed: the function is missing or of the wrong type, it trapped, it
    /// called an import, or it ran past a bound.
    #[error("was not pre-initialised (spec.init): {0}")]
    Init(String),
    /// The component file could not be read.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
}

/// Compiled code: a component, or a core module (only Jobs run those).
pub(crate) enum Code {
    Component(Component),
    Module(Module),
}

/// A component made from others (a snapshot, a composition) and kept in the compile cache
/// directory as `name`: `make` writes it to the temporary path it is given unless it is there
/// already; then it is renamed into place (two loads may make one). Returns it, named by its
/// digest, and whether it was made now.
///
/// # Errors
/// What `make` returned, or the file cannot be renamed or read.
pub(crate) fn derived<E: From<std::io::Error>>(
    cache_dir: &Path,
    name: &str,
    make: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(Artifact, bool), E> {
    use sha2::{Digest, Sha256};
    let path = cache_dir.join(name);
    let made = !path.exists();
    if made {
        let tmp = temporary(&path);
        if let Err(e) = make(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &path)?;
    }
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(&path)?))
    );
    Ok((
        Artifact {
            digest,
            path,
            snapshot: false,
        },
        made,
    ))
}

/// The names of `component`'s exports, `none` if it has none.
pub(crate) fn exports(engine: &wasmtime::Engine, component: &Component) -> String {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Runtime {
    /// A component made from others (a composition) and kept in the compile cache as
    /// `name`: `make` writes it to the path it is given unless it is there already. Returns
    /// it, named by its digest.
    ///
    /// # Errors
    /// What `make` returned, or the file cannot be renamed or read.
    pub fn derived<E: From<std::io::Error>>(
        &self,
        name: &str,
        make: impl FnOnce(&std::path::Path) -> Result<(), E>,
    ) -> Result<Artifact, E> {
        derived(&self.cache_dir, name, make).map(|(artifact, _)| artifact)
    }

    /// The compiled code of `artifact`: from the cache when it is there, compiled (and
    /// cached) otherwise; and whether it came from the cache. A core module and a component
    /// that validates without the component model's concurrency compile for the `sync`
    /// engine; one that needs it (WASI 0.3) for the `concurrent` engine.
    pub(crate) fn code(&self, artifact: &Artifact) -> Result<(Code, bool), LoadError> {
        let mut head = [0u8; 8];
        let n = std::io::Read::read(&mut std::fs::File::open(&artifact.path)?, &mut head)?;
        // Told apart the way wasmtime itself tells them (wasmparser).
        let head = &head[..n];
        let module = match (Parser::is_core_wasm(head), Parser::is_component(head)) {
            (true, _) => true,
            (_, true) => false,
            _ if head.starts_with(b"\0asm") => return Err(LoadError::UnknownVersion),
            _ => return Err(LoadError::NotWasm),
        };
        let hex = artifact
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&artifact.digest);
        let kind = if module { "module" } else { "component" };
        let cached = |flavor: &Flavor| {
            self.cache_dir
                .join(format!("{hex}-{}.{kind}.cwasm", flavor.compat))
        };
        // A snapshot of a WASI 0.2 component resets only what its instances wrote; one of a
        // WASI 0.3 component, as the concurrent engine's slots do (by copying).
        let first = if artifact.snapshot {
            &self.snapshot
        } else {
            &self.sync
        };
        let flavors: &[&Flavor] = if module {
            &[&self.sync]
        } else {
            &[first, &self.concurrent]
        };
        for flavor in flavors {
            if let Some(code) = load_cached(flavor, &cached(flavor), module) {
                self.stats.cache_hits.inc();
                return Ok((code, true));
            }
        }
        let _timed = self.stats.compiles.time();
        // In a child, which reads the file itself; or here, on bytes read once for both tries.
        enum Compiler<'a> {
            Child(&'a crate::compiler::CompileLimits),
            Here(Vec<u8>),
        }
        let compiler = match &self.compile_limits {
            Some(limits) => Compiler::Child(limits),
            None => Compiler::Here(std::fs::read(&artifact.path)?),
        };
        let compiled = |flavor: &Flavor| match &compiler {
            Compiler::Child(limits) => {
                let concurrent = std::ptr::eq(flavor, &self.concurrent);
                compile_in_child(
                    limits,
                    flavor,
                    concurrent,
                    artifact,
                    &cached(flavor),
                    module,
                )
            }
            Compiler::Here(bytes) => compile(flavor, bytes, &cached(flavor), module),
        };
        match compiled(if module { &self.sync } else { first }) {
            Err(LoadError::Compile(e)) if !module && needs_concurrency(&e) => {
                Ok((compiled(&self.concurrent)?, false))
            }
            other => Ok((other?, false)),
        }
    }
}

/// Whether validation refused a component only because it uses the component model's
/// concurrency (`stream`, `future`, async lifts: what WASI 0.3 components do).
fn needs_concurrency(e: &wasmtime::Error) -> bool {
    format!("{e:#}").contains("requires the component model async feature")
}

/// The compiled code in `path`, for `flavor`'s engine.
fn deserialize(flavor: &Flavor, path: &Path, module: bool) -> wasmtime::Result<Code> {
    // SAFETY: the file is written only by this node — `compile` below, or its own compiler
    // child — into its own data dir, named after the engine compatibility hash; wasmtime
    // re-checks its header.
    #[allow(unsafe_code, reason = "deserializing our own precompiled code")]
    unsafe {
        if module {
            Module::deserialize_file(&flavor.engine, path).map(Code::Module)
        } else {
            Component::deserialize_file(&flavor.engine, path).map(Code::Component)
        }
    }
}

/// A unique temporary name beside `cached`: two nodes or threads may compile one digest.
fn temporary(cached: &Path) -> PathBuf {
    cached.with_extension(format!(
        "tmp{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ))
}

/// Compiles `artifact` for `flavor` in a child process within `limits`, and keeps the code
/// at `cached`.
fn compile_in_child(
    limits: &crate::compiler::CompileLimits,
    flavor: &Flavor,
    concurrent: bool,
    artifact: &Artifact,
    cached: &Path,
    module: bool,
) -> Result<Code, LoadError> {
    let tmp = temporary(cached);
    crate::compiler::compile_in_child(limits, concurrent, module, &artifact.path, &tmp)?;
    let code = deserialize(flavor, &tmp, module).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LoadError::CompileLimit(format!("its compiled code does not load: {e:#}"))
    })?;
    if let Err(e) = std::fs::rename(&tmp, cached) {
        tracing::warn!(path = %cached.display(), "cannot write compile cache: {e}");
    }
    Ok(code)
}

/// The code cached for `flavor` at `cached`, if it is there and loads.
fn load_cached(flavor: &Flavor, cached: &Path, module: bool) -> Option<Code> {
    if !cached.exists() {
        return None;
    }
    match deserialize(flavor, cached, module) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %cached.display(), "ignoring unusable compile cache entry: {e:#}");
            None
        }
    }
}

/// Compiles `bytes` for `flavor` and caches the result at `cached`.
fn compile(flavor: &Flavor, bytes: &[u8], cached: &Path, module: bool) -> Result<Code, LoadError> {
    let code = if module {
        Code::Module(Module::new(&flavor.engine, bytes).map_err(LoadError::Compile)?)
    } else {
        Code::Component(Component::new(&flavor.engine, bytes).map_err(LoadError::Compile)?)
    };
    let serialized = match &code {
        Code::Module(m) => m.serialize(),
        Code::Component(c) => c.serialize(),
    };
    match serialized {
        Ok(compiled) => {
            let tmp = temporary(cached);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeConfig;
    use wasmtime::Engine;

    #[test]
    fn a_component_that_needs_concurrency_compiles_for_the_concurrent_engine() {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig::for_tests(dir.path(), false);
        let runtime = Runtime::new(config, |_, _| Ok(())).unwrap();
        let engine_of = |name: &str, wat: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
            let artifact = Artifact {
                digest: format!("sha256:{}", name.repeat(64 / name.len())),
                path,
                snapshot: false,
            };
            let (Code::Component(c), _) = runtime.code(&artifact).unwrap() else {
                panic!("not a component")
            };
            let concurrent = Engine::same(c.engine(), &runtime.concurrent.engine);
            // A second load finds it in the cache of the same engine.
            let (Code::Component(again), cached) = runtime.code(&artifact).unwrap() else {
                panic!("not a component")
            };
            assert!(cached);
            assert!(Engine::same(c.engine(), again.engine()));
            concurrent
        };
        assert!(!engine_of("a", "(component)"));
        assert!(engine_of("b", "(component (type (stream u8)))"));

        // A snapshot's instances come from the pool that restores only what they wrote.
        let path = dir.path().join("snapshot.wasm");
        std::fs::write(&path, wat::parse_str("(component)").unwrap()).unwrap();
        let snapshot = Artifact {
            digest: format!("sha256:{}", "c".repeat(64)),
            path,
            snapshot: true,
        };
        let (Code::Component(c), _) = runtime.code(&snapshot).unwrap() else {
            panic!("not a component")
        };
        assert!(Engine::same(c.engine(), &runtime.snapshot.engine));
    }
}
