//! The SQLite core: statements with parameters, grants, confinement to the file, and limits.

use super::*;

fn grant(dir: &std::path::Path, max_bytes: u64) -> AppSqlite {
    AppSqlite {
        dir: dir.join("default/app"),
        databases: vec!["default".into()],
        limits: SqliteLimits {
            max_bytes,
            ..SqliteLimits::default()
        },
        app: "app/app".into(),
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

#[test]
fn a_granted_database_runs_statements_with_parameters_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let grant = grant(dir.path(), 1 << 20);
    let mut table = ResourceTable::new();
    let mut view = SqlView {
        grant: Some(&grant),
        table: &mut table,
    };
    let c = view.open("default").unwrap();
    view.execute(
        &c,
        "CREATE TABLE t (k TEXT, n INTEGER, r REAL, b BLOB)",
        vec![],
    )
    .unwrap();
    let params = vec![
        text("a"),
        SqlValue::Integer(7),
        SqlValue::Real(0.5),
        SqlValue::Blob(vec![1, 2]),
    ];
    view.execute(&c, "INSERT INTO t VALUES (?, ?, ?, ?)", params)
        .unwrap();
    assert_eq!(view.last_insert_rowid(&c).unwrap(), 1);
    assert_eq!(view.changes(&c).unwrap(), 1);
    view.close(c).unwrap();

    let c = view.open("default").unwrap();
    let rows = view
        .execute(
            &c,
            "SELECT k, n, r, b, NULL AS z FROM t WHERE k = ?",
            vec![text("a")],
        )
        .unwrap();
    assert_eq!(rows.columns, ["k", "n", "r", "b", "z"]);
    assert_eq!(
        rows.rows,
        [vec![
            text("a"),
            SqlValue::Integer(7),
            SqlValue::Real(0.5),
            SqlValue::Blob(vec![1, 2]),
            SqlValue::Null
        ]]
    );
    assert!(dir.path().join("default/app/default.db").exists());
}

#[test]
fn labels_not_granted_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let grant = grant(dir.path(), 1 << 20);
    let mut table = ResourceTable::new();
    let mut view = SqlView {
        grant: Some(&grant),
        table: &mut table,
    };
    assert_eq!(view.open("other").err(), Some(SqlError::AccessDenied));
    let mut none = SqlView {
        grant: None,
        table: &mut table,
    };
    assert_eq!(none.open("default").err(), Some(SqlError::AccessDenied));
}

#[test]
fn sql_cannot_reach_other_files_or_lift_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let grant = grant(dir.path(), 64 << 10);
    let mut table = ResourceTable::new();
    let mut view = SqlView {
        grant: Some(&grant),
        table: &mut table,
    };
    let c = view.open("default").unwrap();
    let other = dir.path().join("other.db");
    for sql in [
        format!("ATTACH DATABASE '{}' AS o", other.display()),
        format!("VACUUM INTO '{}'", other.display()),
        "PRAGMA max_page_count = 100000".into(),
        "PRAGMA journal_mode = DELETE".into(),
        "PRAGMA synchronous = OFF".into(),
        "PRAGMA page_size = 65536".into(),
        "PRAGMA writable_schema = ON".into(),
    ] {
        let err = view.execute(&c, &sql, vec![]).unwrap_err();
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("not authorized")),
            "{sql}: {err:?}"
        );
    }
    assert!(!other.exists());
    assert!(view.execute(&c, "PRAGMA user_version = 3", vec![]).is_ok());
    assert!(view.execute(&c, "PRAGMA page_size", vec![]).is_ok());

    view.execute(&c, "CREATE TABLE big (b BLOB)", vec![])
        .unwrap();
    let full = (0..10)
        .map(|_| view.execute(&c, "INSERT INTO big VALUES (zeroblob(16384))", vec![]))
        .find_map(Result::err);
    assert_eq!(full, Some(SqlError::DatabaseFull));
}

#[test]
fn results_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut grant = grant(dir.path(), 1 << 20);
    grant.limits.max_result_bytes = 1000;
    let mut table = ResourceTable::new();
    let mut view = SqlView {
        grant: Some(&grant),
        table: &mut table,
    };
    let c = view.open("default").unwrap();
    let err = view
        .execute(&c, "SELECT zeroblob(2000)", vec![])
        .unwrap_err();
    assert!(
        matches!(&err, SqlError::Io(m) if m.contains("larger than 1000 bytes")),
        "{err:?}"
    );
}
