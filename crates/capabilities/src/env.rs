//! Environment variables (`spec.env`), set in every instance's WASI context.

use crate::capability::{Capability, GrantError};
use shoal_api::capabilities::env;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{Grant, InstanceBuilder};
use std::sync::Arc;

/// The environment capability.
pub struct Env;

/// The variables one deployment sees.
struct Vars(Vec<(String, String)>);

#[async_trait::async_trait]
impl Capability for Env {
    fn name(&self) -> &'static str {
        env::NAME
    }

    async fn grant(
        &self,
        _owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        let vars = env::vars(spec);
        if vars.is_empty() {
            return Ok(None);
        }
        let vars = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Some(Arc::new(Vars(vars))))
    }
}

impl Grant for Vars {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        instance.wasi().envs(&self.0);
    }
}
