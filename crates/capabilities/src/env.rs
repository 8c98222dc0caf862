//! The process environment: variables (`spec.env`) and, for a Job, its initial working
//! directory (`spec.workingDir`), set in every instance's WASI context.

use crate::capability::{Capability, GrantError};
use shoal_api::capabilities::env;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{Grant, InstanceBuilder};
use std::sync::Arc;

/// The environment capability.
pub struct Env;

/// The environment one deployment sees.
struct Environment {
    vars: Vec<(String, String)>,
    cwd: Option<String>,
}

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
        let (vars, cwd) = (env::vars(spec), env::working_dir(spec));
        if vars.is_empty() && cwd.is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Environment {
            vars: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            cwd: cwd.map(str::to_string),
        })))
    }
}

impl Grant for Environment {
    fn prepare(&self, instance: &mut InstanceBuilder<'_>) {
        let wasi = instance.wasi();
        wasi.envs(&self.vars);
        if let Some(cwd) = &self.cwd {
            wasi.initial_cwd(cwd);
        }
    }
}
