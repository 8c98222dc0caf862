//! SQLite, as Spin's `sqlite` interfaces give it: `fermyon:spin/sqlite@2.0.0` and
//! `spin:sqlite@3.0.0` (`sync`), and Spin 3's `spin:sqlite@3.1.0` with its `async func`s
//! (`concurrent`, on the concurrent engine only), all on the same databases: a real embedded
//! SQLite database file per app and label, `DATA/sqlite/NAMESPACE/APP/LABEL.db`.
//!
//! # Guarantees
//! - An app opens only the labels its spec lists (`access-denied` otherwise); its files are
//!   its own, and SQL cannot reach any other file: `ATTACH` (and `VACUUM INTO`) are refused,
//!   and only pragmas that read the schema or set per-connection behaviour are allowed (not
//!   the ones that would lift the size limit or change durability).
//! - A database grows to at most [`SqliteLimits::max_bytes`]; past it a write answers
//!   `database-full`. One statement runs for at most [`SqliteLimits::max_statement_time`]
//!   and answers at most [`SqliteLimits::max_result_bytes`] of rows.
//! - A statement that returned is durable: the journal is a write-ahead log synced on every
//!   commit (`synchronous = FULL`).
//!
//! # Caveats
//! Statements are synchronous and run on the request's thread, bounded by the statement time
//! limit rather than the guest's CPU limit (host code is not interrupted by epochs).

use crate::capability::{Capability, GrantError};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{OpenFlags, types::ValueRef};
use shoal_api::capabilities::sqlite as spec;
use shoal_api::{ObjectRef, WorkloadSpec};
use shoal_runtime::{EngineKind, Grant, Host};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Converts between one interface's generated types and the core's: its error, its values
/// and its row type, written once for each interface (in scope as `sqlite`).
macro_rules! sqlite_types {
    () => {
        fn error(e: crate::sqlite::SqlError) -> sqlite::Error {
            use crate::sqlite::SqlError as E;
            match e {
                E::AccessDenied => sqlite::Error::AccessDenied,
                E::DatabaseFull => sqlite::Error::DatabaseFull,
                E::Io(m) => sqlite::Error::Io(m),
            }
        }

        fn value_in(v: sqlite::Value) -> crate::sqlite::SqlValue {
            use crate::sqlite::SqlValue as V;
            match v {
                sqlite::Value::Integer(i) => V::Integer(i),
                sqlite::Value::Real(r) => V::Real(r),
                sqlite::Value::Text(t) => V::Text(t),
                sqlite::Value::Blob(b) => V::Blob(b),
                sqlite::Value::Null => V::Null,
            }
        }

        fn row_out(row: Vec<crate::sqlite::SqlValue>) -> sqlite::RowResult {
            use crate::sqlite::SqlValue as V;
            let values = row
                .into_iter()
                .map(|v| match v {
                    V::Integer(i) => sqlite::Value::Integer(i),
                    V::Real(r) => sqlite::Value::Real(r),
                    V::Text(t) => sqlite::Value::Text(t),
                    V::Blob(b) => sqlite::Value::Blob(b),
                    V::Null => sqlite::Value::Null,
                })
                .collect();
            sqlite::RowResult { values }
        }
    };
}

/// The `connection` methods every interface declares alike — open, execute, drop — and,
/// with `counters`, 3.x's `last-insert-rowid` and `changes`: written once for each generated
/// `HostConnection` (the interface in scope as `sqlite`, with [`sqlite_types!`]).
macro_rules! connection_methods {
    () => {
        fn open(
            &mut self,
            database: String,
        ) -> wasmtime::Result<Result<Resource<Connection>, sqlite::Error>> {
            Ok(SqlView::open(self, &database).map_err(error))
        }

        fn execute(
            &mut self,
            c: Resource<Connection>,
            statement: String,
            parameters: Vec<sqlite::Value>,
        ) -> wasmtime::Result<Result<sqlite::QueryResult, sqlite::Error>> {
            let params = parameters.into_iter().map(value_in).collect();
            Ok(SqlView::execute(self, &c, &statement, params)
                .map(|r| sqlite::QueryResult {
                    columns: r.columns,
                    rows: r.rows.into_iter().map(row_out).collect(),
                })
                .map_err(error))
        }

        fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
            self.close(c)
        }
    };
    (counters) => {
        connection_methods!();

        fn last_insert_rowid(&mut self, c: Resource<Connection>) -> wasmtime::Result<i64> {
            SqlView::last_insert_rowid(self, &c)
        }

        fn changes(&mut self, c: Resource<Connection>) -> wasmtime::Result<u64> {
            SqlView::changes(self, &c)
        }
    };
}

mod concurrent;
mod sync;
#[cfg(test)]
mod tests;

/// Bounds on one database and one statement.
#[derive(Debug, Clone, Copy)]
pub struct SqliteLimits {
    /// Largest database file, in bytes.
    pub max_bytes: u64,
    /// Longest a statement may run: half an app's default CPU limit (1 s), because the time
    /// a guest waits in a host call counts against that limit, and a statement stopped here
    /// gives the guest an error it can answer, where the CPU limit would end the request.
    pub max_statement_time: Duration,
    /// Most bytes of values one statement may answer.
    pub max_result_bytes: usize,
}

impl Default for SqliteLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            max_statement_time: Duration::from_millis(500),
            max_result_bytes: 16 << 20,
        }
    }
}

/// The SQLite capability: where the node keeps apps' databases, and their limits.
pub struct Sqlite {
    dir: PathBuf,
    limits: SqliteLimits,
}

impl Sqlite {
    /// Databases under `dir` (created when first opened), each bounded by `limits`.
    pub fn new(dir: PathBuf, limits: SqliteLimits) -> Self {
        Self { dir, limits }
    }
}

#[async_trait::async_trait]
impl Capability for Sqlite {
    fn name(&self) -> &'static str {
        spec::NAME
    }

    fn link(&self, linker: &mut Linker<Host>, kind: EngineKind) -> wasmtime::Result<()> {
        sync::add_to_linker(linker, view)?;
        if kind == EngineKind::Concurrent {
            concurrent::add_to_linker(linker, view)?;
        }
        Ok(())
    }

    async fn grant(
        &self,
        owner: &ObjectRef,
        spec: WorkloadSpec<'_>,
    ) -> Result<Option<Arc<dyn Grant>>, GrantError> {
        let databases = spec::databases(spec);
        if databases.is_empty() {
            return Ok(None);
        }
        let grant = AppSqlite {
            dir: self.dir.join(&owner.namespace).join(&owner.name),
            databases: databases.to_vec(),
            limits: self.limits,
            app: crate::keyvalue::app_label(&owner.namespace, &owner.name),
        };
        Ok(Some(crate::capability::shared(grant)))
    }

    /// Removes the app's databases (its directory). An instance still holding one open keeps
    /// its file until it ends; nothing can open it again.
    async fn forget(&self, owner: &ObjectRef) -> Result<(), String> {
        let dir = self.dir.join(&owner.namespace).join(&owner.name);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("databases in {}: {e}", dir.display())),
        }
    }
}

fn view(host: &mut Host) -> SqlView<'_> {
    let (grant, table) = host.granted_with_table::<AppSqlite>();
    SqlView { grant, table }
}

/// One app's grant: its directory, and which labels it may open there.
pub struct AppSqlite {
    dir: PathBuf,
    databases: Vec<String>,
    limits: SqliteLimits,
    /// The app, as log lines name it.
    app: String,
}

/// An open connection: every interface's `connection` resource is one of these.
pub struct Connection {
    db: rusqlite::Connection,
    limits: SqliteLimits,
}

/// A value, as every interface's `value` variant holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// NULL.
    Null,
}

/// What a statement answered: its columns and rows.
#[derive(Debug, Default)]
pub struct Rows {
    /// The column names.
    pub columns: Vec<String>,
    /// Each row's values, in column order.
    pub rows: Vec<Vec<SqlValue>>,
}

/// Why a call failed, before each interface words it as its own error.
#[derive(Debug, PartialEq)]
pub enum SqlError {
    /// The label is not one the app was granted.
    AccessDenied,
    /// The database reached its size limit.
    DatabaseFull,
    /// Anything else, with a message for the guest.
    Io(String),
}

/// The per-instance view every interface's bindings are handed.
pub struct SqlView<'a> {
    /// The app's grant; `None` when it was granted no database.
    pub grant: Option<&'a AppSqlite>,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
}

struct HasSql;

impl HasData for HasSql {
    type Data<'a> = SqlView<'a>;
}

impl SqlView<'_> {
    fn open(&mut self, label: &str) -> Result<Resource<Connection>, SqlError> {
        let Some(grant) = self
            .grant
            .filter(|g| g.databases.iter().any(|d| d == label))
        else {
            let app = self.grant.map_or("this app", |g| g.app.as_str());
            tracing::warn!(
                "{app}: SQLite database '{label}' denied: not in spec.capabilities.sqlite"
            );
            return Err(SqlError::AccessDenied);
        };
        let cannot = |e: &dyn std::fmt::Display| {
            SqlError::Io(format!("cannot open SQLite database '{label}': {e}"))
        };
        std::fs::create_dir_all(&grant.dir)
            .map_err(|e| cannot(&format!("{}: {e}", grant.dir.display())))?;
        let db = open_file(grant, label).map_err(|e| cannot(&e))?;
        let connection = Connection {
            db,
            limits: grant.limits,
        };
        self.table
            .push(connection)
            .map_err(|e| SqlError::Io(e.to_string()))
    }

    fn connection(&mut self, c: &Resource<Connection>) -> Result<&mut Connection, SqlError> {
        self.table
            .get_mut(c)
            .map_err(|e| SqlError::Io(e.to_string()))
    }

    fn execute(
        &mut self,
        c: &Resource<Connection>,
        statement: &str,
        params: Vec<SqlValue>,
    ) -> Result<Rows, SqlError> {
        self.connection(c)?.execute(statement, params)
    }

    fn last_insert_rowid(&mut self, c: &Resource<Connection>) -> wasmtime::Result<i64> {
        Ok(self.table.get(c)?.db.last_insert_rowid())
    }

    fn changes(&mut self, c: &Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(c)?.db.changes())
    }

    fn close(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

/// Opens (creating) database `label` of the app in its directory, durable and bounded, SQL
/// confined to it.
fn open_file(grant: &AppSqlite, label: &str) -> rusqlite::Result<rusqlite::Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = rusqlite::Connection::open_with_flags(grant.dir.join(format!("{label}.db")), flags)?;
    db.busy_timeout(grant.limits.max_statement_time)?;
    db.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    db.execute_batch("PRAGMA synchronous = FULL")?;
    let page: u64 = db.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages = (grant.limits.max_bytes / page.max(1)).max(1);
    db.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
    db.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    db.authorizer(Some(authorize));
    Ok(db)
}

/// Pragmas a guest may run: reading the schema and per-connection behaviour. Everything
/// else (`max_page_count`, `journal_mode`, `synchronous`, `mmap_size`, `writable_schema`, …)
/// would lift a limit, weaken durability or corrupt the file.
const PRAGMAS: &[&str] = &[
    "application_id",
    "case_sensitive_like",
    "collation_list",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "freelist_count",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "page_count",
    "page_size",
    "pragma_list",
    "quick_check",
    "recursive_triggers",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            // `page_size` may be read, never set.
            let allowed = PRAGMAS.contains(&name.as_str())
                && !(name == "page_size" && pragma_value.is_some());
            if allowed {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Allow,
    }
}

impl Connection {
    /// Runs one statement with `params` within the limits.
    fn execute(&mut self, statement: &str, params: Vec<SqlValue>) -> Result<Rows, SqlError> {
        let limits = self.limits;
        let deadline = Instant::now() + limits.max_statement_time;
        self.db
            .progress_handler(1000, Some(move || Instant::now() > deadline));
        let result = run(&self.db, statement, params, limits.max_result_bytes);
        self.db.progress_handler(0, None::<fn() -> bool>);
        result.map_err(|e| describe(e, &limits))
    }
}

fn run(
    db: &rusqlite::Connection,
    statement: &str,
    params: Vec<SqlValue>,
    max_bytes: usize,
) -> Result<Rows, RunError> {
    let mut stmt = db.prepare(statement)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let params = params.into_iter().map(|v| match v {
        SqlValue::Integer(i) => rusqlite::types::Value::Integer(i),
        SqlValue::Real(r) => rusqlite::types::Value::Real(r),
        SqlValue::Text(t) => rusqlite::types::Value::Text(t),
        SqlValue::Blob(b) => rusqlite::types::Value::Blob(b),
        SqlValue::Null => rusqlite::types::Value::Null,
    });
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let (mut out, mut bytes) = (Vec::new(), 0usize);
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let value = match row.get_ref(i)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(n) => SqlValue::Integer(n),
                ValueRef::Real(r) => SqlValue::Real(r),
                ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
            };
            bytes += match &value {
                SqlValue::Text(t) => t.len(),
                SqlValue::Blob(b) => b.len(),
                _ => 8,
            };
            if bytes > max_bytes {
                return Err(RunError::TooLarge);
            }
            values.push(value);
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

enum RunError {
    Sqlite(rusqlite::Error),
    TooLarge,
}

impl From<rusqlite::Error> for RunError {
    fn from(e: rusqlite::Error) -> Self {
        RunError::Sqlite(e)
    }
}

/// A failed statement as the guest is told it.
fn describe(e: RunError, limits: &SqliteLimits) -> SqlError {
    use rusqlite::ErrorCode;
    match e {
        RunError::TooLarge => SqlError::Io(format!(
            "the result is larger than {} bytes; select fewer rows or columns",
            limits.max_result_bytes
        )),
        RunError::Sqlite(rusqlite::Error::SqliteFailure(f, message)) => match f.code {
            ErrorCode::DiskFull => SqlError::DatabaseFull,
            ErrorCode::OperationInterrupted => SqlError::Io(format!(
                "the statement ran longer than {:?}, the limit",
                limits.max_statement_time
            )),
            ErrorCode::AuthorizationForStatementDenied => SqlError::Io(format!(
                "not authorized: {}; ATTACH and pragmas that change the database file are refused",
                message.unwrap_or_else(|| f.to_string())
            )),
            _ => SqlError::Io(message.unwrap_or_else(|| f.to_string())),
        },
        RunError::Sqlite(e) => SqlError::Io(e.to_string()),
    }
}
