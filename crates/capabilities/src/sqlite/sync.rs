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
        connection_methods!();
    }
}

/// `spin:sqlite@3.0.0`.
mod v3 {
    pub(super) use super::generated::spin::sqlite3_0_0::sqlite;
    use super::{Connection, Resource, SqlView};

    sqlite_types!();

    impl sqlite::Host for SqlView<'_> {}

    impl sqlite::HostConnection for SqlView<'_> {
        connection_methods!(counters);
    }
}
