//! The synchronous interfaces: `fermyon:spin/sqlite@2.0.0` (Spin 2's SDKs) and
//! `spin:sqlite@3.0.0` (Spin 3's), one connection type for both.

use super::{Connection, HasSql, SqlView};
use wasmtime::component::{Linker, Resource};

mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "shoal:capabilities/spin-sqlite",
        imports: { default: trappable },
        with: {
            "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
            "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
        },
    });
}

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SqlView<'_>,
) -> wasmtime::Result<()> {
    v2::sqlite::add_to_linker::<_, HasSql>(linker, view)?;
    v3::sqlite::add_to_linker::<_, HasSql>(linker, view)
}

/// `fermyon:spin/sqlite@2.0.0`.
mod v2 {
    pub(super) use super::generated::fermyon::spin::sqlite;
    use super::{Connection, Resource, SqlView};

    sqlite_types!();

    impl sqlite::Host for SqlView<'_> {}

    impl sqlite::HostConnection for SqlView<'_> {
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
    }
}

/// `spin:sqlite@3.0.0`.
mod v3 {
    pub(super) use super::generated::spin::sqlite3_0_0::sqlite;
    use super::{Connection, Resource, SqlView};

    sqlite_types!();

    impl sqlite::Host for SqlView<'_> {}

    impl sqlite::HostConnection for SqlView<'_> {
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

        fn last_insert_rowid(&mut self, c: Resource<Connection>) -> wasmtime::Result<i64> {
            SqlView::last_insert_rowid(self, &c)
        }

        fn changes(&mut self, c: Resource<Connection>) -> wasmtime::Result<u64> {
            SqlView::changes(self, &c)
        }

        fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
            self.close(c)
        }
    }
}
