//! `spec.config` and `spec.secretConfig`: the values an app reads at run time, through `wasi:config/store` (both the
//! `0.2.0-draft` that wasmtime implements and the `0.2.0-draft-2024-09-27` Spin's SDKs
//! import), Spin's `fermyon:spin/variables@2.0.0` and, on the concurrent engine, Spin 3's
//! async `spin:variables@3.0.0`.
//!
//! A Spin component's variables are its `spec.config` (`shoal apply -f spin.toml` resolves
//! their templates), so every interface reads the same values.

use crate::capability::{Capability, GrantError};
use shoal_api::capabilities::config;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{EngineKind, Grant, Host};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/config",
    });
}

/// Spin 3's `spin:variables@3.0.0`, whose `get` is an `async func`.
mod generated_async {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/spin-variables-async",
    });
}

use generated::fermyon::spin::variables;
use generated::wasi::config::store as config_2024;
use generated_async::spin::variables::variables as variables3;

/// The `wasi:config` capability.
pub struct Config;

/// One deployment's values, shared by its instances.
struct Values {
    wasi: WasiConfigVariables,
    map: HashMap<String, String>,
}

/// What a component sees that imports `wasi:config` without being given any values.
static NONE: LazyLock<Values> = LazyLock::new(|| Values {
    wasi: WasiConfigVariables::new(),
    map: HashMap::new(),
});

#[async_trait::async_trait]
impl Capability for Config {
    fn name(&self) -> &'static str {
        config::NAME
    }

    fn link(&self, linker: &mut Linker<Host>, kind: EngineKind) -> wasmtime::Result<()> {
        wasmtime_wasi_config::add_to_linker(linker, |host: &mut Host| {
            WasiConfig::from(&values(host).wasi)
        })?;
        config_2024::add_to_linker::<_, HasValues>(linker, values)?;
        variables::add_to_linker::<_, HasValues>(linker, values)?;
        if kind == EngineKind::Concurrent {
            variables3::add_to_linker::<_, HasValues>(linker, values)?;
        }
        Ok(())
    }

    async fn grant(
        &self,
        _owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        let map: HashMap<String, String> = config::values(spec)
            .into_iter()
            .chain(config::secret_values(spec))
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if map.is_empty() {
            return Ok(None);
        }
        let wasi = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(Some(crate::capability::shared(Values { wasi, map })))
    }
}

fn values(host: &mut Host) -> &Values {
    host.granted::<Values>().unwrap_or(&NONE)
}

struct HasValues;

impl HasData for HasValues {
    type Data<'a> = &'a Values;
}

impl config_2024::Host for &Values {
    fn get(&mut self, key: String) -> Result<Option<String>, config_2024::Error> {
        Ok(self.map.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_2024::Error> {
        Ok(self
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl Values {
    /// Spin's variable `name`: its name checked by Spin's rules, then its value.
    fn spin_variable(&self, name: &str) -> Result<String, SpinVariableError> {
        config::spin_variable_name(name).map_err(SpinVariableError::InvalidName)?;
        self.map
            .get(name)
            .cloned()
            .ok_or_else(|| SpinVariableError::Undefined(format!("no variable for \"{name}\"")))
    }
}

/// Why a Spin variable has no value, before each interface words it.
enum SpinVariableError {
    InvalidName(String),
    Undefined(String),
}

impl variables::Host for &Values {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.spin_variable(&name).map_err(|e| match e {
            SpinVariableError::InvalidName(m) => variables::Error::InvalidName(m),
            SpinVariableError::Undefined(m) => variables::Error::Undefined(m),
        })
    }
}

impl variables3::Host for &Values {}

impl<T> variables3::HostWithStore<T> for HasValues {
    async fn get(
        accessor: &wasmtime::component::Accessor<T, Self>,
        name: String,
    ) -> Result<String, variables3::Error> {
        accessor
            .with(|mut access| access.get().spin_variable(&name))
            .map_err(|e| match e {
                SpinVariableError::InvalidName(m) => variables3::Error::InvalidName(m),
                SpinVariableError::Undefined(m) => variables3::Error::Undefined(m),
            })
    }
}
