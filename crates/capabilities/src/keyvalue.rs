//! `wasi:keyvalue` (store, atomics, batch) on a durable node-local file.
//!
//! # Guarantees
//! - An app opens only the buckets its spec lists; every key is stored under the app's own
//!   namespace and name, so no other app can name it, whatever bucket identifier it passes.
//! - Keys, values and batch sizes are bounded ([`KvLimits`]); a guest cannot make the host
//!   allocate or store more than that per call.
//! - Every write is committed (fsynced) before the call returns.
//!
//! # Caveats
//! Calls are synchronous and run on the request's thread; a write costs one fsync.

use crate::capability::{Capability, GrantError, OpenError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use shoal_api::capabilities::keyvalue as spec;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{Grant, Host};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/keyvalue",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvError,
        },
    });
}

use generated::wasi::keyvalue;

const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("keyvalue");

/// Size bounds on what a guest can store or request.
#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    /// Longest key, in bytes.
    pub max_key: usize,
    /// Largest value, in bytes.
    pub max_value: usize,
    /// Most keys in one batch call or one `list-keys` page.
    pub max_batch: usize,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key: 1024,
            max_value: 1 << 20,
            max_batch: 1000,
        }
    }
}

/// The key-value capability: the node's key-value file, and each app's buckets in it.
pub struct KeyValue {
    store: Arc<KvStore>,
}

impl KeyValue {
    /// The capability on the key-value file at `path` (created if missing).
    ///
    /// # Errors
    /// The file cannot be opened or is locked by another process.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let store = KvStore::open(path, KvLimits::default()).map_err(|e| OpenError::KeyValue {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self { store })
    }
}

#[async_trait::async_trait]
impl Capability for KeyValue {
    fn name(&self) -> &'static str {
        spec::NAME
    }

    fn link(&self, linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        add_to_linker(linker, |host: &mut Host| {
            let (grant, table) = host.granted_with_table::<AppKeyValue>();
            KvView { grant, table }
        })
    }

    async fn grant(
        &self,
        owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        let buckets = spec::buckets(spec);
        if buckets.is_empty() {
            return Ok(None);
        }
        let grant = AppKeyValue::new(self.store.clone(), &owner.namespace, &owner.name, buckets);
        Ok(Some(crate::capability::shared(grant)))
    }
}

/// The node's key-value file, shared by every app.
pub struct KvStore {
    db: Database,
    limits: KvLimits,
}

impl KvStore {
    /// Opens (or creates) the key-value file at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is locked by another process.
    pub fn open(path: &Path, limits: KvLimits) -> Result<Arc<Self>, redb::Error> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(DATA)?;
        tx.commit()?;
        Ok(Arc::new(Self { db, limits }))
    }
}

/// One app's grant: which buckets, under which private prefix.
pub struct AppKeyValue {
    store: Arc<KvStore>,
    /// `namespace/name/`: every key of this app starts with it.
    prefix: String,
    buckets: Vec<String>,
    app: String,
}

impl AppKeyValue {
    /// The grant of app `namespace/name` to `buckets`.
    pub fn new(store: Arc<KvStore>, namespace: &str, name: &str, buckets: &[String]) -> Self {
        Self {
            store,
            prefix: format!("{namespace}/{name}/"),
            buckets: buckets.to_vec(),
            app: if namespace == shoal_api::DEFAULT_NAMESPACE {
                format!("app/{name}")
            } else {
                format!("app/{name} (namespace {namespace})")
            },
        }
    }
}

/// An open bucket: the full key prefix of its entries.
pub struct Bucket {
    prefix: String,
}

/// A `wasi:keyvalue/store.error`.
#[derive(Debug)]
pub enum KvError {
    /// The bucket is not one the app was granted.
    NoSuchStore,
    /// Denied.
    AccessDenied,
    /// Anything else, with a message for the guest.
    Other(String),
}

impl From<ResourceTableError> for KvError {
    fn from(e: ResourceTableError) -> Self {
        KvError::Other(e.to_string())
    }
}

fn other(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}

/// The per-instance view handed to the generated bindings.
pub struct KvView<'a> {
    /// The app's grant; `None` when it was granted no bucket.
    pub grant: Option<&'a AppKeyValue>,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
}

/// Adds `wasi:keyvalue` to a linker; `view` borrows an instance's [`KvView`] from its state.
///
/// # Errors
/// The interfaces are already defined in the linker.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    keyvalue::store::add_to_linker::<_, HasKv>(linker, view)?;
    keyvalue::atomics::add_to_linker::<_, HasKv>(linker, view)?;
    keyvalue::batch::add_to_linker::<_, HasKv>(linker, view)?;
    Ok(())
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

impl KvView<'_> {
    fn bucket(&mut self, bucket: &Resource<Bucket>) -> Result<(String, &AppKeyValue), KvError> {
        let grant = self.grant.ok_or(KvError::AccessDenied)?;
        Ok((self.table.get(bucket)?.prefix.clone(), grant))
    }

    fn check_key(grant: &AppKeyValue, key: &str) -> Result<(), KvError> {
        if key.len() > grant.store.limits.max_key {
            return Err(KvError::Other(format!(
                "key is {} bytes; the limit is {}",
                key.len(),
                grant.store.limits.max_key
            )));
        }
        Ok(())
    }

    fn check_value(grant: &AppKeyValue, value: &[u8]) -> Result<(), KvError> {
        if value.len() > grant.store.limits.max_value {
            return Err(KvError::Other(format!(
                "value is {} bytes; the limit is {}",
                value.len(),
                grant.store.limits.max_value
            )));
        }
        Ok(())
    }

    fn check_batch(grant: &AppKeyValue, n: usize) -> Result<(), KvError> {
        if n > grant.store.limits.max_batch {
            return Err(KvError::Other(format!(
                "batch of {n} keys; the limit is {}",
                grant.store.limits.max_batch
            )));
        }
        Ok(())
    }
}

fn read(grant: &AppKeyValue, full: &str) -> Result<Option<Vec<u8>>, KvError> {
    let tx = grant.store.db.begin_read().map_err(other)?;
    let table = tx.open_table(DATA).map_err(other)?;
    Ok(table.get(full).map_err(other)?.map(|v| v.value().to_vec()))
}

/// Runs `f` in one write transaction and commits it.
fn write<R>(
    grant: &AppKeyValue,
    f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<R, KvError>,
) -> Result<R, KvError> {
    let tx = grant.store.db.begin_write().map_err(other)?;
    let r = {
        let mut table = tx.open_table(DATA).map_err(other)?;
        f(&mut table)?
    };
    tx.commit().map_err(other)?;
    Ok(r)
}

impl keyvalue::store::Host for KvView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
        let Some(grant) = self.grant.filter(|g| g.buckets.contains(&identifier)) else {
            let app = self.grant.map_or("this app", |g| g.app.as_str());
            tracing::warn!(
                "{app}: key-value bucket '{identifier}' denied: not in spec.capabilities.keyvalue"
            );
            return Err(KvError::AccessDenied);
        };
        let prefix = format!("{}{identifier}\0", grant.prefix);
        Ok(self.table.push(Bucket { prefix })?)
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<keyvalue::store::Error> {
        Ok(match err {
            KvError::NoSuchStore => keyvalue::store::Error::NoSuchStore,
            KvError::AccessDenied => keyvalue::store::Error::AccessDenied,
            KvError::Other(m) => keyvalue::store::Error::Other(m),
        })
    }
}

impl keyvalue::store::HostBucket for KvView<'_> {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_key(grant, &key)?;
        read(grant, &format!("{prefix}{key}"))
    }

    fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_key(grant, &key)?;
        Self::check_value(grant, &value)?;
        write(grant, |t| {
            t.insert(format!("{prefix}{key}").as_str(), value.as_slice())
                .map(drop)
                .map_err(other)
        })
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_key(grant, &key)?;
        write(grant, |t| {
            t.remove(format!("{prefix}{key}").as_str())
                .map(drop)
                .map_err(other)
        })
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_key(grant, &key)?;
        Ok(read(grant, &format!("{prefix}{key}"))?.is_some())
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<keyvalue::store::KeyResponse, KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        let page = grant.store.limits.max_batch;
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let tx = grant.store.db.begin_read().map_err(other)?;
        let table = tx.open_table(DATA).map_err(other)?;
        let mut keys = Vec::new();
        let mut more = false;
        for (i, entry) in table.range(prefix.as_str()..).map_err(other)?.enumerate() {
            let (k, _) = entry.map_err(other)?;
            let Some(key) = k.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            if i < skip {
                continue;
            }
            if keys.len() == page {
                more = true;
                break;
            }
            keys.push(key.to_string());
        }
        let cursor = more.then(|| (skip + keys.len()) as u64);
        Ok(keyvalue::store::KeyResponse { keys, cursor })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl keyvalue::atomics::Host for KvView<'_> {
    fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_key(grant, &key)?;
        let full = format!("{prefix}{key}");
        write(grant, |t| {
            let current = match t.get(full.as_str()).map_err(other)? {
                Some(v) => std::str::from_utf8(v.value())
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        KvError::Other(format!("value of '{key}' is not a decimal u64"))
                    })?,
                None => 0,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| KvError::Other("increment overflows u64".into()))?;
            t.insert(full.as_str(), next.to_string().as_bytes())
                .map_err(other)?;
            Ok(next)
        })
    }
}

impl keyvalue::batch::Host for KvView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_batch(grant, keys.len())?;
        keys.into_iter()
            .map(|k| {
                Self::check_key(grant, &k)?;
                Ok(read(grant, &format!("{prefix}{k}"))?.map(|v| (k, v)))
            })
            .collect()
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_batch(grant, key_values.len())?;
        for (k, v) in &key_values {
            Self::check_key(grant, k)?;
            Self::check_value(grant, v)?;
        }
        write(grant, |t| {
            for (k, v) in &key_values {
                t.insert(format!("{prefix}{k}").as_str(), v.as_slice())
                    .map_err(other)?;
            }
            Ok(())
        })
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Result<(), KvError> {
        let (prefix, grant) = self.bucket(&bucket)?;
        Self::check_batch(grant, keys.len())?;
        write(grant, |t| {
            for k in &keys {
                t.remove(format!("{prefix}{k}").as_str()).map_err(other)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::keyvalue::atomics::Host as _;
    use super::keyvalue::store::{Host as _, HostBucket as _};
    use super::*;

    fn grant(dir: &Path, app: &str) -> AppKeyValue {
        let limits = KvLimits {
            max_key: 8,
            max_value: 16,
            max_batch: 2,
        };
        let store = KvStore::open(&dir.join("kv.redb"), limits).unwrap();
        AppKeyValue::new(store, "default", app, &["default".to_string()])
    }

    fn message(r: Result<impl std::fmt::Debug, KvError>) -> String {
        match r {
            Err(KvError::Other(m)) => m,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn limits_and_grants() {
        let dir = tempfile::tempdir().unwrap();
        let g = grant(dir.path(), "a");
        let mut table = ResourceTable::new();
        let mut kv = KvView {
            grant: Some(&g),
            table: &mut table,
        };
        assert!(matches!(
            kv.open("other".into()),
            Err(KvError::AccessDenied)
        ));
        let b = kv.open("default".into()).unwrap();
        let b2 = Resource::new_borrow(b.rep());
        assert_eq!(
            message(kv.set(b2, "k".repeat(9), vec![])),
            "key is 9 bytes; the limit is 8"
        );
        let b2 = Resource::new_borrow(b.rep());
        assert_eq!(
            message(kv.set(b2, "k".into(), vec![0; 17])),
            "value is 17 bytes; the limit is 16"
        );
        let b2 = Resource::new_borrow(b.rep());
        kv.set(b2, "n".into(), b"41".to_vec()).unwrap();
        let b2 = Resource::new_borrow(b.rep());
        assert_eq!(kv.increment(b2, "n".into(), 1).unwrap(), 42);
        let b2 = Resource::new_borrow(b.rep());
        kv.set(b2, "s".into(), b"x".to_vec()).unwrap();
        let b2 = Resource::new_borrow(b.rep());
        assert_eq!(
            message(kv.increment(b2, "s".into(), 1)),
            "value of 's' is not a decimal u64"
        );

        let mut none = ResourceTable::new();
        let mut denied = KvView {
            grant: None,
            table: &mut none,
        };
        assert!(matches!(
            denied.open("default".into()),
            Err(KvError::AccessDenied)
        ));
    }
}
