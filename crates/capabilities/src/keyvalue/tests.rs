//! The core's limits, grants and operations, below every interface; and the writer, which
//! keeps writes off the callers' threads and commits them in groups.

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

/// A write checked and committed: its result.
async fn done<R>(write: Result<Commit<R>, KvError>) -> Result<R, KvError> {
    write?.await
}

#[tokio::test]
async fn each_app_keeps_within_its_quota_and_an_over_quota_write_keeps_nothing() {
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
    done(kv.set(&bucket, "k1", vec![1; 16])).await.unwrap();
    done(kv.set(&bucket, "k2", vec![2; 16])).await.unwrap();
    let err = message(done(kv.set(&bucket, "k3", vec![3; 16])).await);
    assert!(err.contains("over its quota of 80"), "{err}");
    assert_eq!(kv.get(&bucket, "k3").unwrap(), None);
    // A batch over the quota keeps none of its keys.
    let err = message(
        done(kv.set_many(
            &bucket,
            vec![("k4".into(), vec![4; 2]), ("k5".into(), vec![5; 16])],
        ))
        .await,
    );
    assert!(err.contains("over its quota"), "{err}");
    assert_eq!(kv.get(&bucket, "k4").unwrap(), None);
    // Shrinking and deleting are always allowed, and free room.
    done(kv.set(&bucket, "k1", vec![1; 2])).await.unwrap();
    done(kv.delete(&bucket, "k2")).await.unwrap();
    done(kv.set(&bucket, "k3", vec![3; 16])).await.unwrap();
    // Another app has a quota of its own.
    let mut other = KvView {
        grant: Some(&b),
        table: &mut tb,
    };
    let ob = other.open_bucket("default").unwrap();
    done(other.set(&ob, "k1", vec![1; 16])).await.unwrap();
    done(other.set(&ob, "k2", vec![2; 16])).await.unwrap();
}

fn message<R: std::fmt::Debug>(r: Result<R, KvError>) -> String {
    match r {
        Err(KvError::Other(m)) => m,
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn limits_and_grants() {
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
        message(done(kv.set(&b, &"k".repeat(9), vec![])).await),
        "key is 9 bytes; the limit is 8"
    );
    assert_eq!(
        message(done(kv.set(&b, "k", vec![0; 17])).await),
        "value is 17 bytes; the limit is 16"
    );
    done(kv.set(&b, "n", b"41".to_vec())).await.unwrap();
    let u64s = (0, i128::from(u64::MAX));
    assert_eq!(done(kv.increment(&b, "n", 1, u64s)).await.unwrap(), 42);
    assert_eq!(
        message(done(kv.increment(&b, "n", -43, u64s)).await),
        "increment overflows"
    );
    done(kv.set(&b, "s", b"x".to_vec())).await.unwrap();
    assert_eq!(
        message(done(kv.increment(&b, "s", 1, u64s)).await),
        "value of 's' is not a decimal integer"
    );
    let p = kv.prefix(&b).unwrap();
    let swap = |expected: &[u8]| (Some(expected.to_vec()), b"z".to_vec());
    let (e, v) = swap(b"y");
    assert!(!done(kv.swap(&p, "s", e, v)).await.unwrap());
    let (e, v) = swap(b"x");
    assert!(done(kv.swap(&p, "s", e, v)).await.unwrap());
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

#[tokio::test(flavor = "current_thread")]
async fn a_write_waits_off_its_callers_thread_and_waiting_writes_share_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let g = grant(dir.path(), "a");
    let mut table = ResourceTable::new();
    let mut kv = KvView {
        grant: Some(&g),
        table: &mut table,
    };
    let b = kv.open_bucket("default").unwrap();
    // Hold the writer in a commit of its own until the test lets it go.
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = std::sync::mpsc::channel::<()>();
    let before = g.store.writer.commits();
    let blocker = g.store.writer.write(move |_| {
        started.send(()).ok();
        held.recv().ok();
        Ok(())
    });
    running.recv().unwrap();
    let writes: Vec<Commit<()>> = (0..10)
        .map(|i| kv.set(&b, &format!("k{i}"), vec![1]).unwrap())
        .collect();
    let mut all = std::pin::pin!(async move {
        blocker.await.unwrap();
        for w in writes {
            w.await.unwrap();
        }
    });
    // While the writer is busy, the writes are pending and this (single) thread is free for
    // other work, as an ingress thread goes on serving other apps while a guest awaits.
    std::future::poll_fn(|cx| {
        assert!(all.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    assert_eq!(kv.get(&b, "k0").unwrap(), None);
    hold.send(()).unwrap();
    all.await;
    for i in 0..10 {
        assert_eq!(kv.get(&b, &format!("k{i}")).unwrap(), Some(vec![1]));
    }
    // The blocker's commit, and one for the ten writes that waited behind it.
    assert_eq!(g.store.writer.commits() - before, 2);
}

#[tokio::test]
async fn a_write_that_panics_fails_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let g = grant(dir.path(), "a");
    let failed = g
        .store
        .writer
        .write(|_| -> Result<(), writer::Failure> { panic!("a bug in a write") })
        .await;
    assert!(message(failed).contains("failed in the node's writer"));
    let mut table = ResourceTable::new();
    let mut kv = KvView {
        grant: Some(&g),
        table: &mut table,
    };
    let b = kv.open_bucket("default").unwrap();
    done(kv.set(&b, "k", b"v".to_vec())).await.unwrap();
    assert_eq!(kv.get(&b, "k").unwrap(), Some(b"v".to_vec()));
}

#[tokio::test]
async fn forgetting_an_app_removes_its_keys_and_its_count_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let limits = KvLimits {
        max_app_bytes: 80,
        ..KvLimits::default()
    };
    let store = KvStore::open(&dir.path().join("kv.redb"), limits).unwrap();
    let capability = KeyValue {
        store: store.clone(),
    };
    let buckets = ["default".to_string()];
    // `ab` shares `a`'s first letter: a prefix match must stop at the name.
    let apps = ["a", "ab", "b"].map(|n| AppKeyValue::new(store.clone(), "default", n, &buckets));
    for app in &apps {
        let mut table = ResourceTable::new();
        let mut kv = KvView {
            grant: Some(app),
            table: &mut table,
        };
        let bucket = kv.open_bucket("default").unwrap();
        done(kv.set(&bucket, "k1", vec![1; 16])).await.unwrap();
        done(kv.set(&bucket, "k2", vec![2; 16])).await.unwrap();
    }
    capability
        .forget(&ObjectRef::new("app", "default", "a"))
        .await
        .unwrap();
    let get = |app: &AppKeyValue, key: &str| {
        let mut table = ResourceTable::new();
        let mut kv = KvView {
            grant: Some(app),
            table: &mut table,
        };
        let bucket = kv.open_bucket("default").unwrap();
        kv.get(&bucket, key).unwrap()
    };
    assert_eq!(get(&apps[0], "k1"), None);
    assert_eq!(get(&apps[1], "k1"), Some(vec![1; 16]));
    assert_eq!(get(&apps[2], "k2"), Some(vec![2; 16]));
    // Its byte count went with its keys: the whole quota is free again (a count left at 72
    // would refuse the first 36-byte write).
    let mut table = ResourceTable::new();
    let mut kv = KvView {
        grant: Some(&apps[0]),
        table: &mut table,
    };
    let bucket = kv.open_bucket("default").unwrap();
    for k in ["k1", "k2"] {
        done(kv.set(&bucket, k, vec![3; 16])).await.unwrap();
    }
}
