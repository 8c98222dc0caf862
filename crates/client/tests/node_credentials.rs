//! Each node of a cluster is only itself. Its credential (from a join, once per name) writes
//! its own Node object, its own report in an App's status, the jobs assigned to it and its
//! own events — never another node's, never what the leader owns; the join token does
//! nothing but join, and a removed node is refused at once. Against a real API server.

use shoal_api::{App, Job, NodeAppStatus, Phase, PlacementStatus};
use shoal_client::{Client, RemoteStore};
use shoal_store::{Embedded, Objects, Precondition, Store, StoreError};
use std::sync::Arc;

const JOIN: &str = "join-token";
const CLIENT: &str = "client-token";

/// A real API server with a join token, on an embedded store, port 0; returns its URL.
async fn server(dir: &std::path::Path) -> String {
    let store = Embedded::open(&dir.join("state.redb")).unwrap();
    let blobs = shoal_blobs::BlobStore::open(dir.join("blobs")).unwrap();
    let state =
        shoal_server::ApiState::new(Objects::new(Arc::new(store)), blobs, CLIENT.into(), 1 << 20)
            .with_join_token(JOIN.into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(shoal_server::run(
        listener,
        None,
        Arc::new(state),
        shoal_server::ApiLimits::default(),
        std::future::pending(),
    ));
    url
}

async fn join(url: &str, name: &str) -> String {
    Client::new(url, Some(JOIN.into()))
        .join_node(name, false)
        .await
        .unwrap()
}

fn store(url: &str, token: &str) -> RemoteStore {
    RemoteStore::new(&[url.to_string()], token)
}

fn app(status: serde_json::Value) -> App {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "shoal/v1alpha1", "kind": "App",
        "metadata": {"name": "a", "generation": 1},
        "spec": {"component": "a.wasm", "routes": [{"path": "/a"}]},
        "status": status,
    }))
    .unwrap()
}

fn report(phase: Phase) -> NodeAppStatus {
    NodeAppStatus {
        phase,
        reason: if phase == Phase::Ready {
            "Serving"
        } else {
            "ComponentFailed"
        }
        .into(),
        serving_generation: 1,
        serving_component: Some("sha256:abc".into()),
        ..NodeAppStatus::new(1)
    }
}

async fn read_app(s: &RemoteStore) -> (App, u64) {
    let kv = s.get("apps/default/a").await.unwrap().unwrap();
    (serde_json::from_slice(&kv.value).unwrap(), kv.mod_revision)
}

async fn put_app(s: &RemoteStore, app: &App, rev: u64) -> Result<u64, StoreError> {
    let body = serde_json::to_vec(app).unwrap();
    s.put("apps/default/a", body, Precondition::ModRevision(rev))
        .await
}

#[tokio::test]
async fn a_node_writes_only_its_own_report_and_the_server_derives_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let url = server(dir.path()).await;
    let admin = store(&url, CLIENT);
    let mut placed = app(serde_json::json!({}));
    placed.status.placement = Some(PlacementStatus {
        nodes: vec!["n1".into(), "n2".into()],
        ..PlacementStatus::default()
    });
    placed
        .status
        .nodes
        .insert("n2".into(), report(Phase::Ready));
    admin
        .put(
            "apps/default/a",
            serde_json::to_vec(&placed).unwrap(),
            Precondition::Absent,
        )
        .await
        .unwrap();
    let n1 = store(&url, &join(&url, "n1").await);

    // n1 reports that it cannot serve, and claims the app is Ready all the same: its report
    // is kept, the claim is not — the summary is the server's, from the reports.
    let (mut a, rev) = read_app(&n1).await;
    a.status.nodes.insert("n1".into(), report(Phase::Failed));
    a.status.phase = Phase::Ready;
    a.status.message = None;
    put_app(&n1, &a, rev).await.unwrap();
    let (stored, rev) = read_app(&admin).await;
    assert_eq!(stored.status.nodes["n1"].phase, Phase::Failed);
    assert_eq!(stored.status.nodes["n2"].phase, Phase::Ready);
    assert_eq!(stored.status.phase, Phase::Failed, "{:?}", stored.status);

    // Another node's report is not n1's to change, nor to drop.
    let mut forged = stored.clone();
    forged
        .status
        .nodes
        .insert("n2".into(), report(Phase::Failed));
    let err = put_app(&n1, &forged, rev).await.unwrap_err();
    assert!(err.to_string().contains("status.nodes.n2"), "{err}");
    let mut dropped = stored.clone();
    dropped.status.nodes.remove("n2");
    let err = put_app(&n1, &dropped, rev).await.unwrap_err();
    assert!(err.to_string().contains("status.nodes.n2"), "{err}");
    // Nor the leader's placement.
    let mut grab = stored.clone();
    grab.status.placement.as_mut().unwrap().nodes = vec!["n1".into()];
    let err = put_app(&n1, &grab, rev).await.unwrap_err();
    assert!(err.to_string().contains("status.placement"), "{err}");

    // Once n1 serves too, the app is Ready.
    let mut serving = stored.clone();
    serving
        .status
        .nodes
        .insert("n1".into(), report(Phase::Ready));
    put_app(&n1, &serving, rev).await.unwrap();
    assert_eq!(read_app(&admin).await.0.status.phase, Phase::Ready);
}

#[tokio::test]
async fn a_node_may_not_write_another_nodes_object_lease_job_or_events() {
    let dir = tempfile::tempdir().unwrap();
    let url = server(dir.path()).await;
    let admin = store(&url, CLIENT);
    let (c1, c2) = (join(&url, "n1").await, join(&url, "n2").await);
    let (n1, n2) = (store(&url, &c1), store(&url, &c2));
    let node = |name: &str| {
        format!(
            r#"{{"apiVersion":"shoal/v1alpha1","kind":"Node","metadata":{{"name":"{name}"}},"spec":{{"address":"http://127.0.0.1:1","capacityMemory":1,"maxInstances":1}}}}"#
        )
        .into_bytes()
    };
    n1.put("nodes/n1", node("n1"), Precondition::None)
        .await
        .unwrap();
    n2.put("nodes/n2", node("n2"), Precondition::None)
        .await
        .unwrap();
    // n2's Node object (its address: where its traffic goes) is not n1's to write.
    let err = n1
        .put("nodes/n2", node("n2"), Precondition::None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("another node's Node object"),
        "{err}"
    );
    assert!(n1.delete("nodes/n1", Precondition::None).await.is_err());
    // Nor its lease.
    let err = Client::new(&url, Some(c1.clone()))
        .keep_node_lease("n2")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("node/n1's credential cannot use /v1/nodes/n2/lease"),
        "{err}"
    );

    // A job's status is the node's it is assigned to.
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "shoal/v1alpha1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"component": "j.wasm"}, "status": {"node": "n2"},
    }))
    .unwrap();
    let rev = admin
        .put(
            "jobs/default/j",
            serde_json::to_vec(&job).unwrap(),
            Precondition::Absent,
        )
        .await
        .unwrap();
    let mut ran = job.clone();
    ran.status.last_run = 1;
    let body = serde_json::to_vec(&ran).unwrap();
    let err = n1
        .put(
            "jobs/default/j",
            body.clone(),
            Precondition::ModRevision(rev),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the job is assigned to node/n2"),
        "{err}"
    );
    let rev = n2
        .put("jobs/default/j", body, Precondition::ModRevision(rev))
        .await
        .unwrap();
    let mut moved = ran.clone();
    moved.status.node = Some("n1".into());
    let err = n2
        .put(
            "jobs/default/j",
            serde_json::to_vec(&moved).unwrap(),
            Precondition::ModRevision(rev),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("status.node"), "{err}");

    // Events: each node writes as itself, and deletes only its own.
    let about = shoal_api::ObjectRef::new("app", "default", "a");
    Objects::new(Arc::new(n2.clone()))
        .record_event(&about, shoal_api::EventReason::Compiled, "n2's", "node/n2")
        .await
        .unwrap();
    let err = Objects::new(Arc::new(n1.clone()))
        .record_event(
            &about,
            shoal_api::EventReason::Compiled,
            "forged",
            "node/n2",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("events of node/n2"), "{err}");
    let (events, _) = n1.list("events/default/").await.unwrap();
    assert_eq!(events.len(), 1);
    let err = n1
        .delete(&events[0].key, Precondition::None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("events of node/n2"), "{err}");
    assert_eq!(admin.list("events/default/").await.unwrap().0.len(), 1);
}

#[tokio::test]
async fn a_name_joins_once_and_a_removed_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = server(dir.path()).await;
    let joiner = Client::new(&url, Some(JOIN.into()));
    let operator = Client::new(&url, Some(CLIENT.into()));
    // The join token joins, and does nothing else.
    let err = store(&url, JOIN).list("apps/").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the join token cannot use /v1/store/list"),
        "{err}"
    );
    let first = joiner.join_node("n1", false).await.unwrap();
    assert!(first.starts_with("node.n1."), "{first}");
    // A second join under the name is refused: a joiner cannot become a node that exists.
    let err = joiner.join_node("n1", false).await.unwrap_err();
    assert!(
        err.to_string().contains("node/n1 has joined already"),
        "{err}"
    );
    let err = joiner.join_node("n1", true).await.unwrap_err();
    assert!(err.to_string().contains("only the client token"), "{err}");
    store(&url, &first).list("apps/").await.unwrap();

    // The operator replaces a credential: the old one is refused from then on.
    let second = operator.join_node("n1", true).await.unwrap();
    let err = store(&url, &first).list("apps/").await.unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
    store(&url, &second).list("apps/").await.unwrap();
    // Removing the node revokes it; its name can join again.
    operator.delete_node("n1").await.unwrap();
    let err = store(&url, &second).list("apps/").await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let third = joiner.join_node("n1", false).await.unwrap();
    store(&url, &third).list("apps/").await.unwrap();
    // A credential nobody issued.
    let err = store(&url, "node.n9.0123456789abcdef")
        .list("apps/")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert!(operator.delete_node("n9").await.unwrap_err().is_not_found());
}
