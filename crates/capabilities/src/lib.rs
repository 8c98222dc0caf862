//! What a guest may do beyond computing: every capability, each denied unless its spec
//! grants it, and the one list of them that the node hands to the runtime.
//!
//! A capability has one lifecycle, the same for Apps and Jobs:
//! 1. its part of the spec is validated, purely, by its spec module in
//!    `shoal_api::capabilities` (the server and the CLI run those checks);
//! 2. [`Capability::link`] adds its host interfaces to the engine's linker, once per engine;
//! 3. [`Capability::grant`] builds what one deployment is granted, once per deployment (a job:
//!    once per attempt), as a [`shoal_runtime::Grant`];
//! 4. that grant shapes every new instance ([`shoal_runtime::Grant::prepare`]): WASI context
//!    entries, outgoing HTTP, or per-instance state its host functions find with
//!    [`shoal_runtime::Host::granted`].
//!
//! Adding a capability is one spec module in `shoal-api`, one module here and one entry in
//! [`Capabilities::open`] (and in `shoal_api::capabilities::SPECS`; a test keeps the two lists
//! in step).
//!
//! - [`env`]: environment variables (`spec.env`).
//! - [`logs`]: guest stdout/stderr into the workload's bounded log.
//! - [`files`]: read-only directory trees (`spec.files`), unpacked once per digest.
//! - [`config`]: `wasi:config/store` and Spin's variables (`spec.config`).
//! - [`outbound`]: `wasi:http/outgoing-handler` behind an allow-list, checked against the real
//!   destination (resolved and pinned addresses), refusing internal addresses.
//! - [`keyvalue`]: `wasi:keyvalue` (store, atomics, batch) and Spin's key-value on a durable
//!   node-local file, each app's buckets private to it, with size limits.
//! - [`sqlite`]: Spin's SQLite interfaces on a real embedded SQLite database per app and
//!   label, confined to its file, bounded in size, statement time and result size.

mod capability;
pub mod config;
pub mod env;
pub mod files;
pub mod internal;
pub mod keyvalue;
pub mod logs;
pub mod outbound;
pub mod sqlite;

pub use capability::{Capability, GrantError, OpenError};

use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{AbsentImports, EngineKind, Grants, Host};
use std::path::PathBuf;
use wasmtime::component::Linker;

/// What the node's capabilities keep: files and the blobs to fetch trees from.
pub struct Resources {
    /// The node's key-value file (every app's buckets), and its bounds.
    pub keyvalue: (PathBuf, keyvalue::KvLimits),
    /// Each namespace's bound on its apps' key-value data, kept current by the node.
    pub kv_namespaces: keyvalue::NamespaceQuotas,
    /// Where components and trees come from.
    pub blobs: shoal_blobs::Blobs,
    /// Where trees are unpacked, one directory per digest.
    pub files: PathBuf,
    /// Where apps' SQLite databases live (`NAMESPACE/APP/LABEL.db`), and their bounds.
    pub sqlite: (PathBuf, sqlite::SqliteLimits),
    /// The apps the node serves, which apps call in memory (see [`internal`]).
    pub apps: std::sync::Arc<dyn internal::LocalApps>,
}

/// Every capability of a node, in one list.
pub struct Capabilities {
    all: Vec<Box<dyn Capability>>,
}

impl Capabilities {
    /// The node's capabilities, with their node-wide resources opened.
    ///
    /// # Errors
    /// A resource cannot be opened.
    pub fn open(resources: Resources) -> Result<Self, OpenError> {
        let all: Vec<Box<dyn Capability>> = vec![
            Box::new(env::Env),
            Box::new(outbound::Outbound::new(resources.apps)?),
            Box::new(keyvalue::KeyValue::open(
                &resources.keyvalue.0,
                resources.keyvalue.1,
                resources.kv_namespaces,
            )?),
            Box::new(sqlite::Sqlite::new(resources.sqlite.0, resources.sqlite.1)),
            Box::new(files::Files::new(resources.blobs, resources.files)),
            Box::new(config::Config),
            Box::new(logs::Logs),
        ];
        Ok(Self { all })
    }

    /// Adds every capability's host interfaces to `linker`.
    ///
    /// # Errors
    /// An interface is already defined.
    pub fn link(&self, linker: &mut Linker<Host>, kind: EngineKind) -> wasmtime::Result<()> {
        self.all.iter().try_for_each(|c| c.link(linker, kind))
    }

    /// Everything `spec` of `owner` is granted.
    ///
    /// # Errors
    /// The first grant that cannot be built.
    pub async fn grant(
        &self,
        owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Grants, GrantError> {
        let mut grants = Vec::new();
        for capability in &self.all {
            grants.extend(capability.grant(owner, spec).await?);
        }
        Ok(Grants::new(grants))
    }

    /// Removes everything `owner` kept through any capability; every capability is asked
    /// even when one fails.
    ///
    /// # Errors
    /// What could not be removed, each capability's reason.
    pub async fn forget(&self, owner: &ObjectRef) -> Result<(), String> {
        let mut failed = Vec::new();
        for capability in &self.all {
            if let Err(e) = capability.forget(owner).await {
                failed.push(e);
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// The imports a component may have that no capability provides, answered as denials
    /// (see [`shoal_runtime::AbsentImports`]): the rest of Spin's platform (redis, MQTT,
    /// MySQL, PostgreSQL, LLM, …), which Spin's SDKs import whether an app uses it or not.
    /// Each call returns the interface's error for a missing permission, as Spin answers a
    /// component that was not granted the host or model.
    ///
    /// WASI 0.3's release candidates are absent too: Spin 4's SDKs import the interfaces of a
    /// candidate beside those of 0.3.0 (which the node links) and use 0.3.0's; a call to a
    /// candidate's function is answered as a denial (or traps), as the rest of the absent.
    pub fn absent_imports(&self) -> AbsentImports {
        AbsentImports {
            packages: vec![
                "fermyon:spin/".into(),
                "spin:".into(),
                "wasi:*@0.3.0-rc-".into(),
            ],
            error_cases: [
                "HTTP-request-denied",
                "access-denied",
                "invalid-address",
                "connection-failed",
                "model-not-supported",
                "other",
                "error",
            ]
            .map(String::from)
            .to_vec(),
            ungranted: vec![shoal_compose::DENIED_PREFIX.into()],
        }
    }

    /// The capabilities' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.all.iter().map(|c| c.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_its_spec_module_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = shoal_blobs::BlobStore::open(dir.path().join("blobs")).unwrap();
        let caps = Capabilities::open(Resources {
            keyvalue: (dir.path().join("kv.redb"), Default::default()),
            kv_namespaces: Default::default(),
            blobs: shoal_blobs::Blobs::local(blobs),
            files: dir.path().join("files"),
            sqlite: (dir.path().join("sqlite"), Default::default()),
            apps: std::sync::Arc::new(internal::NoApps),
        })
        .unwrap();
        let specs: Vec<&str> = shoal_api::capabilities::SPECS
            .iter()
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(caps.names(), specs);
    }
}
