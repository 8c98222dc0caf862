//! Writes, and each app's quota: every write runs in one redb transaction that also keeps the
//! app's byte count (`usage`), so the count is exactly the data's and a write over the quota
//! leaves nothing behind.

use super::error::{KvError, other};
use redb::{Database, ReadableTable, TableDefinition};

/// Every app's keys and values, each key under its app's prefix.
pub(super) const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("keyvalue");

/// Bytes each app's keys and values take (`namespace/name/` → bytes), kept with the data in
/// the same transactions.
pub(super) const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");

/// One write transaction's view of the data, counting the app's bytes as it changes them.
pub(super) struct Writer<'t> {
    table: redb::Table<'t, &'static str, &'static [u8]>,
    used: u64,
}

impl Writer<'_> {
    pub(super) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .table
            .get(key)
            .map_err(other)?
            .map(|v| v.value().to_vec()))
    }

    pub(super) fn insert(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let old = self.table.insert(key, value).map_err(other)?;
        let old = old.map_or(0, |v| key.len() + v.value().len());
        self.used = self.used.saturating_sub(old as u64) + (key.len() + value.len()) as u64;
        Ok(())
    }

    pub(super) fn remove(&mut self, key: &str) -> Result<(), KvError> {
        if let Some(old) = self.table.remove(key).map_err(other)? {
            self.used = self
                .used
                .saturating_sub((key.len() + old.value().len()) as u64);
        }
        Ok(())
    }
}

/// Runs `f` in one write transaction and commits it, unless it leaves the app (`prefix`, named
/// `app` in messages) over `quota` with more than it had: then nothing it did is kept.
pub(super) fn write<R>(
    db: &Database,
    prefix: &str,
    app: &str,
    quota: u64,
    f: impl FnOnce(&mut Writer) -> Result<R, KvError>,
) -> Result<R, KvError> {
    let tx = db.begin_write().map_err(other)?;
    let r = {
        let mut usage = tx.open_table(USAGE).map_err(other)?;
        let table = tx.open_table(DATA).map_err(other)?;
        let before = match usage.get(prefix).map_err(other)? {
            Some(v) => v.value(),
            // First write since usage was counted: count what the app holds.
            None => app_bytes(&table, prefix)?,
        };
        let mut w = Writer {
            table,
            used: before,
        };
        let r = f(&mut w)?;
        if w.used > quota && w.used > before {
            return Err(KvError::Other(format!(
                "{app}'s key-value data would be {} bytes, over its quota of {quota}; delete keys first",
                w.used
            )));
        }
        usage.insert(prefix, w.used).map_err(other)?;
        r
    };
    tx.commit().map_err(other)?;
    Ok(r)
}

/// The bytes of every key and value under `prefix`.
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
