//! `wasi:config/store` (`spec.config`): the values an app reads at run time.

use crate::capability::{Capability, GrantError};
use shoal_api::capabilities::config;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{Grant, Host};
use std::sync::{Arc, LazyLock};
use wasmtime::component::Linker;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

/// The `wasi:config` capability.
pub struct Config;

/// One deployment's values, shared by its instances.
struct Values(WasiConfigVariables);

/// What a component sees that imports `wasi:config` without being given any values.
static NONE: LazyLock<WasiConfigVariables> = LazyLock::new(WasiConfigVariables::new);

#[async_trait::async_trait]
impl Capability for Config {
    fn name(&self) -> &'static str {
        config::NAME
    }

    fn link(&self, linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasmtime_wasi_config::add_to_linker(linker, |host: &mut Host| {
            WasiConfig::from(host.granted::<Values>().map_or(&*NONE, |v| &v.0))
        })
    }

    async fn grant(
        &self,
        _owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        Ok(config::values(spec)
            .filter(|v| !v.is_empty())
            .map(|values| {
                let values = values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                crate::capability::shared(Values(values))
            }))
    }
}
