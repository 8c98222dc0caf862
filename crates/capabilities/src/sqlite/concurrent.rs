//! Spin 3's `spin:sqlite@3.1.0` for WASI 0.3 components: the 3.0 functions plus their `async`
//! twins (`open-async`, `execute-async` streaming the rows, …). Each call runs to completion on
//! the instance's thread; `execute-async` streams rows the statement already answered.

use super::{Connection, HasSql, SqlView};
use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/spin-sqlite-async",
        imports: { default: trappable },
        with: {
            "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
        },
    });
}

use generated::spin::sqlite3_1_0::sqlite;

sqlite_types!();

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SqlView<'_>,
) -> wasmtime::Result<()> {
    sqlite::add_to_linker::<_, HasSql>(linker, view)
}

impl sqlite::Host for SqlView<'_> {}

impl sqlite::HostConnection for SqlView<'_> {
    connection_methods!(counters);
}

/// A statement's columns, its rows as a stream, and how it ended.
type Streamed = (
    Vec<String>,
    StreamReader<sqlite::RowResult>,
    FutureReader<Result<(), sqlite::Error>>,
);

impl<T> sqlite::HostConnectionWithStore<T> for HasSql {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, sqlite::Error>> {
        Ok(accessor
            .with(|mut access| access.get().open(&database))
            .map_err(error))
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> wasmtime::Result<Result<Streamed, sqlite::Error>> {
        let params = parameters.into_iter().map(value_in).collect();
        let result = accessor.with(|mut access| access.get().execute(&c, &statement, params));
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(error(e))),
        };
        accessor.with(|mut access| {
            let values: Vec<_> = rows.rows.into_iter().map(row_out).collect();
            let stream = StreamReader::new(&mut access, values)?;
            let done = FutureReader::new(&mut access, async {
                Ok::<_, wasmtime::Error>(Ok::<(), sqlite::Error>(()))
            })?;
            Ok(Ok((rows.columns, stream, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        accessor.with(|mut access| access.get().last_insert_rowid(&c))
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
    ) -> wasmtime::Result<u64> {
        accessor.with(|mut access| access.get().changes(&c))
    }
}
