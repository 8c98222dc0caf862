//! The core's limits, grants and operations, below every interface.

use super::*;

fn grant(dir: &Path, app: &str) -> AppKeyValue {
    let limits = KvLimits {
        max_key: 8,
        max_value: 16,
        max_batch: 2,
        max_list_bytes: 1,
        max_app_bytes: 1 << 20,
    };
    let store = KvStore::open(&dir.join("kv.redb"), limits).unwrap();
    AppKeyValue::new(store, "default", app, &["default".to_string()])
}

#[test]
fn each_app_keeps_within_its_quota_and_an_over_quota_write_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let limits = KvLimits {
        // Each entry counts its full stored key (`default/a/default\0k1`, 20 bytes) and value.
        max_app_bytes: 80,
        ..KvLimits::default()
    };
    let store = KvStore::open(&dir.path().join("kv.redb"), limits).unwrap();
    let a = AppKeyValue::new(store.clone(), "default", "a", &["default".to_string()]);
    let b = AppKeyValue::new(store, "default", "b", &["default".to_string()]);
    let (mut ta, mut tb) = (ResourceTable::new(), ResourceTable::new());
    let mut kv = KvView {
        grant: Some(&a),
        table: &mut ta,
    };
    let bucket = kv.open_bucket("default").unwrap();
    kv.set(&bucket, "k1", &[1; 16]).unwrap();
    kv.set(&bucket, "k2", &[2; 16]).unwrap();
    let err = message(kv.set(&bucket, "k3", &[3; 16]));
    assert!(err.contains("over its quota of 80"), "{err}");
    assert_eq!(kv.get(&bucket, "k3").unwrap(), None);
    // A batch over the quota keeps none of its keys.
    let err = message(kv.set_many(
        &bucket,
        &[("k4".into(), vec![4; 2]), ("k5".into(), vec![5; 16])],
    ));
    assert!(err.contains("over its quota"), "{err}");
    assert_eq!(kv.get(&bucket, "k4").unwrap(), None);
    // Shrinking and deleting are always allowed, and free room.
    kv.set(&bucket, "k1", &[1; 2]).unwrap();
    kv.delete(&bucket, "k2").unwrap();
    kv.set(&bucket, "k3", &[3; 16]).unwrap();
    // Another app has a quota of its own.
    let mut other = KvView {
        grant: Some(&b),
        table: &mut tb,
    };
    let ob = other.open_bucket("default").unwrap();
    other.set(&ob, "k1", &[1; 16]).unwrap();
    other.set(&ob, "k2", &[2; 16]).unwrap();
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
        kv.open_bucket("other"),
        Err(KvError::AccessDenied)
    ));
    let b = kv.open_bucket("default").unwrap();
    assert_eq!(
        message(kv.set(&b, &"k".repeat(9), &[])),
        "key is 9 bytes; the limit is 8"
    );
    assert_eq!(
        message(kv.set(&b, "k", &[0; 17])),
        "value is 17 bytes; the limit is 16"
    );
    kv.set(&b, "n", b"41").unwrap();
    let u64s = (0, i128::from(u64::MAX));
    assert_eq!(kv.increment(&b, "n", 1, u64s).unwrap(), 42);
    assert_eq!(
        message(kv.increment(&b, "n", -43, u64s)),
        "increment overflows"
    );
    kv.set(&b, "s", b"x").unwrap();
    assert_eq!(
        message(kv.increment(&b, "s", 1, u64s)),
        "value of 's' is not a decimal integer"
    );
    let p = kv.prefix(&b).unwrap();
    assert!(!kv.swap(&p, "s", Some(b"y"), b"z").unwrap());
    assert!(kv.swap(&p, "s", Some(b"x"), b"z").unwrap());
    assert_eq!(kv.get(&b, "s").unwrap().as_deref(), Some(&b"z"[..]));
    assert_eq!(
        message(kv.all_keys(&b)),
        "the keys of this store are more than 1 bytes together; list them in pages with wasi:keyvalue list-keys"
    );
    assert_eq!(kv.list(&b, 1).unwrap(), (vec!["s".to_string()], false));

    let mut none = ResourceTable::new();
    let mut denied = KvView {
        grant: None,
        table: &mut none,
    };
    assert!(matches!(
        denied.open_bucket("default"),
        Err(KvError::AccessDenied)
    ));
}
