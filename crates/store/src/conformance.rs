//! The behaviour every [`Store`] backend must have, run against each of them (the feature
//! `conformance` lets other crates run it against theirs). Each function panics on a
//! deviation; give each a fresh, empty store.

use crate::{Precondition, Store, StoreError, WatchEvent};

/// Compare-and-swap, revisions, listing and deletes.
pub async fn cas_and_revisions(s: &dyn Store) {
    let r1 = s
        .put("kv-a/default/a", b"1".to_vec(), Precondition::Absent)
        .await
        .unwrap();
    assert!(matches!(
        s.put("kv-a/default/a", b"x".to_vec(), Precondition::Absent)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let r2 = s
        .put(
            "kv-a/default/a",
            b"2".to_vec(),
            Precondition::ModRevision(r1),
        )
        .await
        .unwrap();
    assert!(r2 > r1);
    assert!(matches!(
        s.put(
            "kv-a/default/a",
            b"3".to_vec(),
            Precondition::ModRevision(r1)
        )
        .await,
        Err(StoreError::Conflict { .. })
    ));
    s.put("kv-a/other/b", b"b".to_vec(), Precondition::None)
        .await
        .unwrap();
    let (items, rev) = s.list("kv-a/default/").await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].value, b"2");
    assert_eq!(rev, r2 + 1);
    assert_eq!(
        s.delete("kv-a/default/zzz", Precondition::None)
            .await
            .unwrap(),
        None
    );
    assert!(
        s.delete("kv-a/default/a", Precondition::None)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.get("kv-a/default/a").await.unwrap(), None);
}

/// A watch resumes after a revision, in order, with deletes.
pub async fn watch_resumes_from_revision(s: &dyn Store) {
    let r1 = s
        .put("kv-a/a", b"1".to_vec(), Precondition::None)
        .await
        .unwrap();
    s.put("kv-j/x", b"j".to_vec(), Precondition::None)
        .await
        .unwrap();
    let mut w = s.watch("kv-a/", r1 - 1).await.unwrap();
    s.delete("kv-a/a", Precondition::None).await.unwrap();
    match w.next().await.unwrap().unwrap() {
        WatchEvent::Put(kv) => assert_eq!((kv.key.as_str(), kv.mod_revision), ("kv-a/a", r1)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.next().await.unwrap().unwrap(),
        WatchEvent::Delete { .. }
    ));
}
