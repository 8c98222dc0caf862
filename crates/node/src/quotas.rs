//! Namespace quotas as a node enforces them while apps run: instances at once (one
//! [`SharedLimit`] per namespace, shared by its apps on this node) and key-value bytes (the
//! key-value capability's [`NamespaceQuotas`]). Kept current from the Namespace objects: a
//! changed quota holds from the next request or write on, for apps already running too.

use crate::watch::{Change, watch};
use shoal_api::Namespace;
use shoal_capabilities::keyvalue::NamespaceQuotas;
use shoal_runtime::SharedLimit;
use shoal_store::Objects;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Every namespace's limits on this node.
#[derive(Clone, Default)]
pub struct Quotas {
    instances: Arc<Mutex<HashMap<String, Arc<SharedLimit>>>>,
    keyvalue: NamespaceQuotas,
}

fn what(ns: &str) -> String {
    format!("namespace {ns}'s quota of instances (spec.quota.instances)")
}

impl Quotas {
    /// The limit the apps of namespace `ns` share (none until its quota says otherwise).
    pub fn instances(&self, ns: &str) -> Arc<SharedLimit> {
        self.instances
            .lock()
            .expect("quota table poisoned")
            .entry(ns.to_string())
            .or_insert_with(|| SharedLimit::new(what(ns), None))
            .clone()
    }

    /// What the key-value capability reads its namespaces' limits from.
    pub fn keyvalue(&self) -> NamespaceQuotas {
        self.keyvalue.clone()
    }

    fn set(&self, ns: &str, instances: Option<u64>, keyvalue: Option<u64>) {
        self.instances(ns).set(instances);
        self.keyvalue.set(ns, keyvalue);
    }

    fn apply(&self, ns: &Namespace) {
        let q = &ns.spec.quota;
        let kv = q.key_value.as_ref().map(shoal_api::Quantity::bytes);
        self.set(&ns.metadata.name, q.instances, kv);
    }

    /// Follows the Namespace objects until `shutdown`.
    pub async fn run(self, objects: Objects, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel(64);
        tokio::spawn(watch::<Namespace, _>(objects, tx, |c| c, shutdown.clone()));
        while let Some(change) = tokio::select! {
            c = rx.recv() => c,
            () = shutdown.cancelled() => None,
        } {
            match change {
                Change::Resync(all) => {
                    let known: Vec<String> = self
                        .instances
                        .lock()
                        .expect("quota table poisoned")
                        .keys()
                        .cloned()
                        .collect();
                    for ns in known {
                        if !all.iter().any(|n| n.metadata.name == ns) {
                            self.set(&ns, None, None);
                        }
                    }
                    all.iter().for_each(|ns| self.apply(ns));
                }
                Change::Put(ns) => self.apply(&ns),
                Change::Delete(key) => self.set(&key.name, None, None),
            }
        }
    }
}
