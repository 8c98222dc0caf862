//! Nothing outlives its app: which App (by `metadata.uid`) the data this node keeps under an
//! app's name belongs to — its key-value data, its SQLite databases, its log — and removing
//! that data when the App is deleted or another App of its name replaces it.
//!
//! A record per app, `DATA/owners/NAMESPACE/NAME` holding the uid (`-` for an App stored
//! before uids existed), is written before the app first runs here; an app without a record
//! keeps nothing here. Level-triggered like the rest of the agent: a delete seen on the watch
//! removes the data at once; after a restart or a lost watch the full list of Apps is compared
//! with the records (an App deleted meanwhile has its data removed), and an App whose uid is
//! not the recorded one (deleted and created again meanwhile) starts empty. Data kept before
//! records existed is adopted by the first App that runs under its name.

use shoal_api::{App, ObjectRef};
use shoal_capabilities::Capabilities;
use shoal_logs::LogDir;
use shoal_store::ObjectKey;
use std::path::PathBuf;
use std::sync::Arc;

/// The record of an App stored before uids existed.
const NO_UID: &str = "-";

/// The owner records of one node, and what removes an app's data.
#[derive(Clone)]
pub struct Owners {
    dir: PathBuf,
    capabilities: Arc<Capabilities>,
    logs: LogDir,
    /// Held while a record and its data change, so that a removal never overlaps the
    /// adoption by a new App of the same name.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Owners {
    /// Records under `dir`; data removed through `capabilities` and `logs`.
    pub fn new(dir: PathBuf, capabilities: Arc<Capabilities>, logs: LogDir) -> Self {
        Self {
            dir,
            capabilities,
            logs,
            lock: Arc::default(),
        }
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.dir.join(&key.namespace).join(&key.name)
    }

    fn recorded(&self, key: &ObjectKey) -> Option<String> {
        std::fs::read_to_string(self.path(key))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Every app with a record here, and its uid.
    pub fn all(&self) -> Vec<(ObjectKey, String)> {
        let mut out = Vec::new();
        let Ok(namespaces) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for ns in namespaces.flatten() {
            let Ok(apps) = std::fs::read_dir(ns.path()) else {
                continue;
            };
            for app in apps.flatten() {
                let key = ObjectKey::new(
                    ns.file_name().to_string_lossy(),
                    app.file_name().to_string_lossy(),
                );
                if let Some(uid) = self.recorded(&key) {
                    out.push((key, uid));
                }
            }
        }
        out
    }

    /// Before `app` runs here: data kept under its name for another App (another uid) is
    /// removed, and the data is recorded as `app`'s.
    pub async fn adopt(&self, app: &App) {
        let uid = app.metadata.uid.as_deref().unwrap_or(NO_UID);
        let key = ObjectKey::of(&app.metadata);
        let _held = self.lock.lock().await;
        match self.recorded(&key) {
            Some(r) if r == uid => return,
            // The same App, given a uid by its first change since uids exist.
            Some(r) if r == NO_UID => {}
            Some(_) => {
                self.remove_data(&key, "replaced by a new app of its name")
                    .await
            }
            None => {}
        }
        let path = self.path(&key);
        let written = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, uid)),
            None => Ok(()),
        };
        if let Err(e) = written {
            tracing::warn!("{}: cannot record its data's owner: {e}", ref_of(&key));
        }
    }

    /// App `key` (uid `uid`, when known) is deleted: its data is removed, unless a newer App
    /// of its name owns it by now.
    pub async fn release(&self, key: &ObjectKey, uid: Option<&str>) {
        let _held = self.lock.lock().await;
        let Some(recorded) = self.recorded(key) else {
            return;
        };
        if uid.is_some_and(|u| u != recorded && recorded != NO_UID) {
            return;
        }
        self.remove_data(key, "deleted").await;
        let _ = std::fs::remove_file(self.path(key));
    }

    async fn remove_data(&self, key: &ObjectKey, why: &str) {
        let owner = ref_of(key);
        match self.capabilities.forget(&owner).await {
            Ok(()) => tracing::info!("{owner}: {why}; its data on this node is removed"),
            Err(e) => tracing::warn!("{owner}: {why}; cannot remove all its data: {e}"),
        }
        self.logs.remove(&key.namespace, &key.name);
    }
}

fn ref_of(key: &ObjectKey) -> ObjectRef {
    ObjectRef::new("app", &key.namespace, &key.name)
}
