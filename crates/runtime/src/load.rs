//! From a component file to a pre-instantiated, checked `wasi:http` handler.

use crate::code::{Code, exports};
use crate::component::{HttpComponent, Prepared};
use crate::{Artifact, LoadError, Runtime};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::handler::ProxyPre;

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

impl Runtime {
    /// Compiles (or loads from the cache) the component `artifact` and checks that it can
    /// serve HTTP.
    ///
    /// # Caveats
    /// Blocks for as long as compilation takes (seconds for big components): call it from a
    /// blocking thread, never from an async worker.
    ///
    /// # Errors
    /// See [`LoadError`]; each says what the user should change.
    pub fn load_http(&self, artifact: &Artifact) -> Result<Loaded, LoadError> {
        let start = Instant::now();
        if let Some(inner) = self.loaded.get(&artifact.digest) {
            return Ok(Loaded {
                component: HttpComponent { inner },
                origin: Origin::Shared,
                elapsed: start.elapsed(),
            });
        }
        let (code, from_cache) = self.code(artifact)?;
        let Code::Component(component) = code else {
            return Err(LoadError::CoreModule);
        };
        let flavor = self.flavor_of(component.engine());
        let instance_pre = self.link(flavor, &component)?;
        // A 0.3 handler if it exports one, else a 0.2 one.
        let pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(instance_pre.clone()) {
            Ok(p3) => ProxyPre::P3(p3),
            Err(_) => ProxyPre::P2(
                wasmtime_wasi_http::p2::bindings::ProxyPre::new(instance_pre).map_err(|_| {
                    let exports = exports(&flavor.engine, &component);
                    LoadError::NotHttp {
                        hint: if exports.contains("wasi:cli/run") {
                            "; this is a wasi:cli command component, which runs as a Job, not an App"
                        } else {
                            ""
                        },
                        exports,
                    }
                })?,
            ),
        };
        let inner = self.loaded.insert(Prepared {
            pre,
            engine: flavor.engine.clone(),
            _ticker: self.ticker.clone(),
            artifact: artifact.clone(),
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
}

impl crate::Runtime {
    /// `component` linked against `flavor`'s linker, completed with denials for the absent
    /// imports this runtime allows.
    pub(crate) fn link(
        &self,
        flavor: &crate::engine::Flavor,
        component: &wasmtime::component::Component,
    ) -> Result<wasmtime::component::InstancePre<crate::Host>, LoadError> {
        let completed =
            crate::absent::complete(&flavor.linker, &flavor.engine, component, &self.absent)
                .map_err(LoadError::Link)?;
        completed
            .as_ref()
            .unwrap_or(&flavor.linker)
            .instantiate_pre(component)
            .map_err(LoadError::Link)
    }
}
