//! Key-value on a durable node-local file, through every interface guests use for it:
//! `wasi:keyvalue` (store, atomics, batch) in the `0.2.0-draft` wasmtime implements
//! (`draft`) and the `0.2.0-draft2` Spin's SDKs import (`draft2`), and Spin's own
//! `fermyon:spin/key-value@2.0.0` (`spin`), and Spin 3's async `spin:key-value@3.0.0`
//! (`spin3`, on the concurrent engine only). All reach the same buckets: an app's bucket
//! `default` is Spin's store `default`.
//!
//! # Guarantees
//! - An app opens only the buckets its spec lists; every key is stored under the app's own
//!   namespace and name, so no other app can name it, whatever bucket identifier it passes.
//! - Keys, values and batch sizes are bounded ([`KvLimits`]); a guest cannot make the host
//!   allocate or store more than that per call, and an app's data altogether is bounded by
//!   its quota (`max_app_bytes`), counted in the same transactions as the data.
//! - Every write is committed (fsynced) before the call returns. Writes run on the node's
//!   key-value writer thread (`writer`), never on the thread running the guest, which awaits
//!   them; the writes waiting when a commit starts share it (one fsync for the group).
//!
//! # Caveats
//! Reads run on the request's thread (redb reads do not wait for writers).

use crate::capability::{Capability, GrantError, OpenError};
pub use error::KvError;
use error::other;
use quota::{DATA, USAGE};
use redb::{Database, ReadableDatabase};
use shoal_api::capabilities::keyvalue as spec;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{EngineKind, Grant, Host};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// The methods every interface's bucket (or Spin store) resource has alike — get, set,
/// delete, exists, drop — written once for each generated trait that declares them.
macro_rules! bucket_methods {
    () => {
        async fn get(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> Result<Option<Vec<u8>>, KvError> {
            KvView::get(self, &bucket, &key)
        }

        async fn set(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
            value: Vec<u8>,
        ) -> Result<(), KvError> {
            KvView::set(self, &bucket, &key, value)?.await
        }

        async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KvError> {
            KvView::delete(self, &bucket, &key)?.await
        }

        async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, KvError> {
            KvView::exists(self, &bucket, &key)
        }

        async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
            self.close(bucket)
        }
    };
}

/// The writes of both `wasi:keyvalue` drafts' `batch` interface, which they declare alike.
macro_rules! batch_writes {
    () => {
        async fn set_many(
            &mut self,
            bucket: Resource<Bucket>,
            key_values: Vec<(String, Vec<u8>)>,
        ) -> Result<(), KvError> {
            KvView::set_many(self, &bucket, key_values)?.await
        }

        async fn delete_many(
            &mut self,
            bucket: Resource<Bucket>,
            keys: Vec<String>,
        ) -> Result<(), KvError> {
            KvView::delete_many(self, &bucket, keys)?.await
        }
    };
}

/// What both `wasi:keyvalue` drafts have alike — linking their three interfaces and
/// `store`'s `open` and error — written once for each draft's generated bindings (in scope
/// as `store`, `atomics` and `batch` where it is used).
macro_rules! wasi_keyvalue_linking {
    () => {
        pub(super) fn add_to_linker<T: Send + 'static>(
            linker: &mut Linker<T>,
            view: fn(&mut T) -> KvView<'_>,
        ) -> wasmtime::Result<()> {
            store::add_to_linker::<_, HasKv>(linker, view)?;
            atomics::add_to_linker::<_, HasKv>(linker, view)?;
            batch::add_to_linker::<_, HasKv>(linker, view)
        }

        impl store::Host for KvView<'_> {
            async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
                self.open_bucket(&identifier)
            }

            fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
                Ok(match err {
                    KvError::AccessDenied => store::Error::AccessDenied,
                    KvError::Other(m) => store::Error::Other(m),
                })
            }
        }
    };
}

mod draft;
mod draft2;
mod spin;
mod spin3;
mod writer;

pub(crate) use writer::Commit;

/// Each namespace's limit on the key-value bytes of its apps on this node
/// (`spec.quota.keyValue`), set by the node as Namespaces change and read on every write.
#[derive(Debug, Clone, Default)]
pub struct NamespaceQuotas(Arc<std::sync::RwLock<std::collections::HashMap<String, u64>>>);

impl NamespaceQuotas {
    /// Namespace `ns`'s limit: `None` lifts it.
    pub fn set(&self, ns: &str, limit: Option<u64>) {
        let mut map = self.0.write().expect("quota table poisoned");
        match limit {
            Some(l) => map.insert(ns.to_string(), l),
            None => map.remove(ns),
        };
    }

    fn get(&self, ns: &str) -> Option<u64> {
        self.0
            .read()
            .expect("quota table poisoned")
            .get(ns)
            .copied()
    }
}

/// Size bounds on what a guest can store or request.
#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    /// Longest key, in bytes.
    pub max_key: usize,
    /// Largest value, in bytes.
    pub max_value: usize,
    /// Most keys in one batch call or one `list-keys` page.
    pub max_batch: usize,
    /// Most bytes of keys one call that lists every key (Spin's `get-keys`) answers.
    pub max_list_bytes: usize,
    /// Most bytes of keys and values one app keeps, all its buckets together.
    pub max_app_bytes: u64,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key: 1024,
            max_value: 1 << 20,
            max_batch: 1000,
            max_list_bytes: 1 << 20,
            max_app_bytes: 256 << 20,
        }
    }
}

/// The key-value capability: the node's key-value file, and each app's buckets in it.
pub struct KeyValue {
    store: Arc<KvStore>,
}

impl KeyValue {
    /// The capability on the key-value file at `path` (created if missing), with `limits`.
    ///
    /// # Errors
    /// The file cannot be opened or is locked by another process.
    pub fn open(
        path: &Path,
        limits: KvLimits,
        namespaces: NamespaceQuotas,
    ) -> Result<Self, OpenError> {
        let store =
            KvStore::open_with(path, limits, namespaces).map_err(|e| OpenError::KeyValue {
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

    fn link(&self, linker: &mut Linker<Host>, kind: EngineKind) -> wasmtime::Result<()> {
        add_to_linker(linker, view)?;
        if kind == EngineKind::Concurrent {
            spin3::add_to_linker(linker, view)?;
        }
        Ok(())
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

    /// Removes every key of every bucket of `owner`, in one transaction.
    async fn forget(&self, owner: &ObjectRef) -> Result<(), String> {
        let prefix = format!("{}/{}/", owner.namespace, owner.name);
        self.store
            .writer
            .write(move |tx| quota::forget(tx, &prefix))
            .await
            .map(drop)
            .map_err(|e| match e {
                error::KvError::Other(m) => format!("key-value data: {m}"),
                error::KvError::AccessDenied => "key-value data: access denied".into(),
            })
    }
}

fn view(host: &mut Host) -> KvView<'_> {
    let (grant, table) = host.granted_with_table::<AppKeyValue>();
    KvView { grant, table }
}

/// The node's key-value file, shared by every app, and its writer.
pub struct KvStore {
    db: Arc<Database>,
    limits: KvLimits,
    namespaces: NamespaceQuotas,
    writer: writer::Writer,
}

impl KvStore {
    /// Opens (or creates) the key-value file at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is locked by another process.
    pub fn open(path: &Path, limits: KvLimits) -> Result<Arc<Self>, redb::Error> {
        Self::open_with(path, limits, NamespaceQuotas::default())
    }

    /// [`KvStore::open`], each namespace's data also bounded by `namespaces`.
    ///
    /// # Errors
    /// The file cannot be opened or is locked by another process.
    pub fn open_with(
        path: &Path,
        limits: KvLimits,
        namespaces: NamespaceQuotas,
    ) -> Result<Arc<Self>, redb::Error> {
        let db = Arc::new(Database::create(path)?);
        let tx = db.begin_write()?;
        tx.open_table(DATA)?;
        tx.open_table(USAGE)?;
        tx.commit()?;
        let writer = writer::Writer::start(db.clone())?;
        Ok(Arc::new(Self {
            db,
            limits,
            namespaces,
            writer,
        }))
    }
}

/// One app's grant: which buckets, under which private prefix.
pub struct AppKeyValue {
    store: Arc<KvStore>,
    /// The app's namespace.
    namespace: String,
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
            namespace: namespace.to_string(),
            prefix: format!("{namespace}/{name}/"),
            buckets: buckets.to_vec(),
            app: app_label(namespace, name),
        }
    }
}

impl AppKeyValue {
    /// Queues `f` as one write of this app's, within its quota, on the node's writer.
    fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut quota::Writer) -> Result<R, KvError> + Send + 'static,
    ) -> Commit<R> {
        let (prefix, app) = (self.prefix.clone(), self.app.clone());
        let quota = quota::Quota {
            app: self.store.limits.max_app_bytes,
            namespace: self
                .store
                .namespaces
                .get(&self.namespace)
                .map(|limit| (self.namespace.clone(), limit)),
        };
        self.store
            .writer
            .write(move |tx| quota::apply(tx, &prefix, &app, &quota, f))
    }
}

/// App `namespace/name` as log lines name it.
pub(crate) fn app_label(namespace: &str, name: &str) -> String {
    if namespace == shoal_api::DEFAULT_NAMESPACE {
        format!("app/{name}")
    } else {
        format!("app/{name} (namespace {namespace})")
    }
}

/// An open bucket (a store, in Spin's words): the full key prefix of its entries. Every
/// interface's bucket or store resource is one of these.
pub struct Bucket {
    prefix: String,
}

/// A key and its value, if it has one.
type Entry = (String, Option<Vec<u8>>);

/// The per-instance view every interface's bindings are handed.
pub struct KvView<'a> {
    /// The app's grant; `None` when it was granted no bucket.
    pub grant: Option<&'a AppKeyValue>,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
}

/// Adds every key-value interface to a linker: `wasi:keyvalue` (`0.2.0-draft`, and the
/// `0.2.0-draft2` Spin's SDKs import) and Spin's `fermyon:spin/key-value@2.0.0`, all on the
/// same buckets; `view` borrows an instance's [`KvView`] from its state.
///
/// # Errors
/// The interfaces are already defined in the linker.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    draft::add_to_linker(linker, view)?;
    draft2::add_to_linker(linker, view)?;
    spin::add_to_linker(linker, view)
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// What the interfaces share: opening a bucket, and each operation on one, with the limits.
impl KvView<'_> {
    /// Opens bucket `label`, if the app was granted it.
    fn open_bucket(&mut self, label: &str) -> Result<Resource<Bucket>, KvError> {
        let Some(grant) = self.grant.filter(|g| g.buckets.iter().any(|b| b == label)) else {
            let app = self.grant.map_or("this app", |g| g.app.as_str());
            tracing::warn!(
                "{app}: key-value bucket '{label}' denied: not in spec.capabilities.keyvalue"
            );
            return Err(KvError::AccessDenied);
        };
        let prefix = format!("{}{label}\0", grant.prefix);
        Ok(self.table.push(Bucket { prefix })?)
    }

    fn bucket(&mut self, bucket: &Resource<Bucket>) -> Result<(String, &AppKeyValue), KvError> {
        let grant = self.grant.ok_or(KvError::AccessDenied)?;
        Ok((self.table.get(bucket)?.prefix.clone(), grant))
    }

    fn close(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }

    fn get(&mut self, bucket: &Resource<Bucket>, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_key(grant, key)?;
        read(grant, &format!("{prefix}{key}"))
    }

    fn set(
        &mut self,
        bucket: &Resource<Bucket>,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Commit<()>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_key(grant, key)?;
        check_value(grant, &value)?;
        let full = format!("{prefix}{key}");
        Ok(grant.write(move |t| t.insert(&full, &value)))
    }

    fn delete(&mut self, bucket: &Resource<Bucket>, key: &str) -> Result<Commit<()>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_key(grant, key)?;
        let full = format!("{prefix}{key}");
        Ok(grant.write(move |t| t.remove(&full)))
    }

    fn exists(&mut self, bucket: &Resource<Bucket>, key: &str) -> Result<bool, KvError> {
        Ok(self.get(bucket, key)?.is_some())
    }

    /// One page of keys after the first `skip`, and whether more follow.
    fn list(
        &mut self,
        bucket: &Resource<Bucket>,
        skip: usize,
    ) -> Result<(Vec<String>, bool), KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        let page = grant.store.limits.max_batch;
        let tx = grant.store.db.begin_read().map_err(other)?;
        let table = tx.open_table(DATA).map_err(other)?;
        let mut keys = Vec::new();
        for (i, entry) in table.range(prefix.as_str()..).map_err(other)?.enumerate() {
            let (k, _) = entry.map_err(other)?;
            let Some(key) = k.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            if i < skip {
                continue;
            }
            if keys.len() == page {
                return Ok((keys, true));
            }
            keys.push(key.to_string());
        }
        Ok((keys, false))
    }

    /// Every key of the bucket, up to [`KvLimits::max_list_bytes`] of them.
    fn all_keys(&mut self, bucket: &Resource<Bucket>) -> Result<Vec<String>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        let limit = grant.store.limits.max_list_bytes;
        let tx = grant.store.db.begin_read().map_err(other)?;
        let table = tx.open_table(DATA).map_err(other)?;
        let (mut keys, mut bytes) = (Vec::new(), 0usize);
        for entry in table.range(prefix.as_str()..).map_err(other)? {
            let (k, _) = entry.map_err(other)?;
            let Some(key) = k.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            bytes += key.len();
            if bytes > limit {
                return Err(KvError::Other(format!(
                    "the keys of this store are more than {limit} bytes together; list them in pages with wasi:keyvalue list-keys"
                )));
            }
            keys.push(key.to_string());
        }
        Ok(keys)
    }

    /// Adds `delta` to the decimal integer at `key` (0 when absent) and stores the sum.
    fn increment(
        &mut self,
        bucket: &Resource<Bucket>,
        key: &str,
        delta: i128,
        range: (i128, i128),
    ) -> Result<Commit<i128>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_key(grant, key)?;
        let full = format!("{prefix}{key}");
        let key = key.to_string();
        Ok(grant.write(move |t| {
            let current = match t.get(&full)? {
                Some(v) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<i128>().ok())
                    .filter(|n| (range.0..=range.1).contains(n))
                    .ok_or_else(|| {
                        KvError::Other(format!("value of '{key}' is not a decimal integer"))
                    })?,
                None => 0,
            };
            let next = current + delta;
            if !(range.0..=range.1).contains(&next) {
                return Err(KvError::Other("increment overflows".into()));
            }
            t.insert(&full, next.to_string().as_bytes())?;
            Ok(next)
        }))
    }

    fn get_many(
        &mut self,
        bucket: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Entry>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_batch(grant, keys.len())?;
        keys.into_iter()
            .map(|k| {
                check_key(grant, &k)?;
                let v = read(grant, &format!("{prefix}{k}"))?;
                Ok((k, v))
            })
            .collect()
    }

    fn set_many(
        &mut self,
        bucket: &Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<Commit<()>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_batch(grant, key_values.len())?;
        for (k, v) in &key_values {
            check_key(grant, k)?;
            check_value(grant, v)?;
        }
        Ok(grant.write(move |t| {
            for (k, v) in &key_values {
                t.insert(&format!("{prefix}{k}"), v)?;
            }
            Ok(())
        }))
    }

    fn delete_many(
        &mut self,
        bucket: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Commit<()>, KvError> {
        let (prefix, grant) = self.bucket(bucket)?;
        check_batch(grant, keys.len())?;
        for k in &keys {
            check_key(grant, k)?;
        }
        Ok(grant.write(move |t| {
            for k in &keys {
                t.remove(&format!("{prefix}{k}"))?;
            }
            Ok(())
        }))
    }

    /// The key prefix of an open bucket, for handles that outlive the bucket's resource.
    fn prefix(&mut self, bucket: &Resource<Bucket>) -> Result<String, KvError> {
        Ok(self.bucket(bucket)?.0)
    }

    /// The value at `key` of the bucket whose prefix is `prefix`.
    fn get_at(&self, prefix: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let grant = self.grant.ok_or(KvError::AccessDenied)?;
        check_key(grant, key)?;
        read(grant, &format!("{prefix}{key}"))
    }

    /// Stores `value` at `key` of the bucket whose prefix is `prefix` if the key still holds
    /// `expected`; `false` if it does not.
    fn swap(
        &self,
        prefix: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<Commit<bool>, KvError> {
        let grant = self.grant.ok_or(KvError::AccessDenied)?;
        check_key(grant, key)?;
        check_value(grant, &value)?;
        let full = format!("{prefix}{key}");
        Ok(grant.write(move |t| {
            let current = t.get(&full)?;
            if current != expected {
                return Ok(false);
            }
            t.insert(&full, &value)?;
            Ok(true)
        }))
    }
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

fn read(grant: &AppKeyValue, full: &str) -> Result<Option<Vec<u8>>, KvError> {
    let tx = grant.store.db.begin_read().map_err(other)?;
    let table = tx.open_table(DATA).map_err(other)?;
    Ok(table.get(full).map_err(other)?.map(|v| v.value().to_vec()))
}

mod error;
mod quota;

#[cfg(test)]
mod tests;
