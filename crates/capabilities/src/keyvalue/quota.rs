//! Writes, and each app's quota: a write reads through an overlay of its own changes, which
//! reach the table only once the app's byte count (`usage`, kept in the same transaction) is
//! within its quota — so the count is exactly the data's, and a refused write leaves nothing
//! behind, even in a transaction it shares with other writes.

use super::error::{KvError, other};
use super::writer::Failure;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::collections::BTreeMap;

/// Every app's keys and values, each key under its app's prefix.
pub(super) const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("keyvalue");

/// Bytes each app's keys and values take (`namespace/name/` → bytes), kept with the data in
/// the same transactions.
pub(super) const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");

/// One write's view of the data: what is stored, under the changes it made so far, and the
/// app's bytes as they would be with them.
pub(super) struct Writer<'t, 'tx> {
    table: &'t redb::Table<'tx, &'static str, &'static [u8]>,
    changes: BTreeMap<String, Option<Vec<u8>>>,
    used: u64,
}

impl Writer<'_, '_> {
    pub(super) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(changed) = self.changes.get(key) {
            return Ok(changed.clone());
        }
        Ok(self
            .table
            .get(key)
            .map_err(other)?
            .map(|v| v.value().to_vec()))
    }

    fn bytes(&self, key: &str) -> Result<u64, KvError> {
        Ok(self.get(key)?.map_or(0, |v| (key.len() + v.len()) as u64))
    }

    pub(super) fn insert(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let old = self.bytes(key)?;
        self.used = self.used.saturating_sub(old) + (key.len() + value.len()) as u64;
        self.changes.insert(key.to_string(), Some(value.to_vec()));
        Ok(())
    }

    pub(super) fn remove(&mut self, key: &str) -> Result<(), KvError> {
        let old = self.bytes(key)?;
        self.used = self.used.saturating_sub(old);
        self.changes.insert(key.to_string(), None);
        Ok(())
    }
}

/// What one app's writes are bounded by.
pub(super) struct Quota {
    /// Its own bytes.
    pub(super) app: u64,
    /// Its namespace's bytes on this node, all its apps together: the namespace and the limit.
    pub(super) namespace: Option<(String, u64)>,
}

/// Bytes the apps of namespace `ns` keep, but the one under `prefix`, as counted in `usage`
/// (an app is counted from its first write on).
fn others_in(
    usage: &redb::Table<&str, u64>,
    ns: &str,
    prefix: &str,
) -> Result<u64, redb::StorageError> {
    let start = format!("{ns}/");
    let mut total = 0u64;
    for entry in usage.range(start.as_str()..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(&start) {
            break;
        }
        if k.value() != prefix {
            total = total.saturating_add(v.value());
        }
    }
    Ok(total)
}

/// Runs `f` in `tx` for the app whose keys start with `prefix` (named `app` in messages), and
/// keeps what it changed unless that leaves the app, or its namespace, over `quota` with more
/// than it had.
///
/// # Errors
/// [`Failure::Refused`] when `f` fails or the quota refuses (nothing was written);
/// [`Failure::Store`] when writing failed part way.
pub(super) fn apply<R>(
    tx: &WriteTransaction,
    prefix: &str,
    app: &str,
    quota: &Quota,
    f: impl FnOnce(&mut Writer) -> Result<R, KvError>,
) -> Result<R, Failure> {
    let store = |e: redb::Error| Failure::Store(other(e));
    let mut usage = tx.open_table(USAGE).map_err(|e| store(e.into()))?;
    let mut table = tx.open_table(DATA).map_err(|e| store(e.into()))?;
    let before = match usage.get(prefix).map_err(|e| store(e.into()))? {
        Some(v) => v.value(),
        // First write since usage was counted: count what the app holds.
        None => app_bytes(&table, prefix).map_err(Failure::Refused)?,
    };
    let mut w = Writer {
        table: &table,
        changes: BTreeMap::new(),
        used: before,
    };
    let r = f(&mut w).map_err(Failure::Refused)?;
    let (changes, used) = (w.changes, w.used);
    if used > quota.app && used > before {
        return Err(Failure::Refused(KvError::Other(format!(
            "{app}'s key-value data would be {used} bytes, over its quota of {}; delete keys first",
            quota.app
        ))));
    }
    if let Some((ns, limit)) = &quota.namespace
        && used > before
    {
        let total = others_in(&usage, ns, prefix)
            .map_err(|e| store(e.into()))?
            .saturating_add(used);
        if total > *limit {
            return Err(Failure::Refused(KvError::Other(format!(
                "namespace {ns}'s key-value data on this node would be {total} bytes, over its quota of {limit} (spec.quota.keyValue); delete keys first"
            ))));
        }
    }
    for (key, value) in changes {
        match value {
            Some(v) => table.insert(key.as_str(), v.as_slice()).map(drop),
            None => table.remove(key.as_str()).map(drop),
        }
        .map_err(|e| store(e.into()))?;
    }
    usage.insert(prefix, used).map_err(|e| store(e.into()))?;
    Ok(r)
}

/// The bytes of every key and value under `prefix`.
/// Removes every key under `prefix` (an app's) and its byte count; how many keys there were.
///
/// # Errors
/// [`Failure::Store`]: the file could not be written.
pub(super) fn forget(tx: &WriteTransaction, prefix: &str) -> Result<u64, Failure> {
    let store = |e: redb::Error| Failure::Store(other(e));
    let mut table = tx.open_table(DATA).map_err(|e| store(e.into()))?;
    let mut keys = Vec::new();
    for entry in table.range(prefix..).map_err(|e| store(e.into()))? {
        let (k, _) = entry.map_err(|e| store(e.into()))?;
        if !k.value().starts_with(prefix) {
            break;
        }
        keys.push(k.value().to_string());
    }
    for k in &keys {
        table.remove(k.as_str()).map_err(|e| store(e.into()))?;
    }
    let mut usage = tx.open_table(USAGE).map_err(|e| store(e.into()))?;
    usage.remove(prefix).map_err(|e| store(e.into()))?;
    Ok(keys.len() as u64)
}

fn app_bytes(table: &redb::Table<&str, &[u8]>, prefix: &str) -> Result<u64, KvError> {
    let mut total = 0u64;
    for entry in table.range(prefix..).map_err(other)? {
        let (k, v) = entry.map_err(other)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        total += (k.value().len() + v.value().len()) as u64;
    }
    Ok(total)
}
