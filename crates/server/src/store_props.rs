//! Property tests of what `/v1/store` lets through: whatever value arrives, a write under an
//! App's key is refused or stores a well-formed App of that name; and whatever node n1
//! changes in an App, what it may store changes n1's report and nothing of anyone else's.
#![cfg(test)]

use crate::node_writes;
use crate::store_api::typed;
use proptest::prelude::*;
use serde_json::{Value, json};
use shoal_api::{App, NodeAppStatus, Phase, PlacementStatus};
use shoal_store::{Embedded, Precondition, Store};

fn leaf() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("Ready")),
        Just(json!("a")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const PATHS: &[&[&str]] = &[
    &["status"],
    &["status", "phase"],
    &["status", "nodes"],
    &["status", "nodes", "n1"],
    &["status", "placement"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["spec", "routes"],
    &["spec", "component"],
    &["kind"],
];

fn app_json() -> Value {
    json!({
        "apiVersion": "shoal/v1alpha1", "kind": "App",
        "metadata": {"name": "a", "generation": 1},
        "spec": {"component": "a.wasm", "routes": [{"path": "/a"}]},
    })
}

fn set(v: &mut Value, path: &[&str], to: Value) {
    let mut at = v;
    for (i, key) in path.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let obj = at.as_object_mut().expect("made an object");
        if i + 1 == path.len() {
            obj.insert((*key).to_string(), to);
            return;
        }
        at = obj.entry((*key).to_string()).or_insert_with(|| json!({}));
    }
}

fn report(phase: Phase) -> NodeAppStatus {
    NodeAppStatus {
        phase,
        reason: "R".into(),
        ..NodeAppStatus::new(1)
    }
}

fn phase() -> impl Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Pending),
        Just(Phase::Ready),
        Just(Phase::Failed)
    ]
}

/// What node n1 does to the App it read.
#[derive(Debug, Clone)]
struct Change {
    own: Option<Phase>,
    claimed: Phase,
    other: Option<Option<Phase>>,
    placement: bool,
    spec: bool,
}

fn change() -> impl Strategy<Value = Change> {
    (
        proptest::option::of(phase()),
        phase(),
        proptest::option::weighted(0.2, proptest::option::of(phase())),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(own, claimed, other, placement, spec)| Change {
            own,
            claimed,
            other,
            placement,
            spec,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn an_apps_key_stores_a_well_formed_app_of_its_name_or_nothing(
        edits in proptest::collection::vec((0..PATHS.len(), leaf()), 0..4),
    ) {
        let mut v = app_json();
        for (path, to) in edits {
            set(&mut v, PATHS[path], to);
        }
        let body = serde_json::to_vec(&v).unwrap();
        if let Ok(stored) = typed("apps/default/a", &body) {
            let app: App = serde_json::from_slice(&stored).expect("stored as an App");
            prop_assert_eq!(&app.metadata.name, "a");
            prop_assert_eq!(&app.metadata.namespace, "default");
            prop_assert_eq!(typed("apps/default/a", &stored).ok(), Some(stored));
        }
    }
}

#[test]
fn a_node_changes_its_own_report_and_nothing_else() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(&dir.path().join("s.redb")).unwrap();
    let mut stored: App = serde_json::from_value(app_json()).unwrap();
    stored.status.placement = Some(PlacementStatus {
        nodes: vec!["n1".into(), "n2".into()],
        ..PlacementStatus::default()
    });
    stored
        .status
        .nodes
        .insert("n1".into(), report(Phase::Pending));
    stored
        .status
        .nodes
        .insert("n2".into(), report(Phase::Ready));
    rt.block_on(store.put(
        "apps/default/a",
        serde_json::to_vec(&stored).unwrap(),
        Precondition::None,
    ))
    .unwrap();
    proptest!(ProptestConfig { cases: 256, ..ProptestConfig::default() }, |(c in change())| {
        let mut next = stored.clone();
        match c.own {
            Some(p) => next.status.nodes.insert("n1".into(), report(p)),
            None => next.status.nodes.remove("n1"),
        };
        next.status.phase = c.claimed;
        match c.other {
            Some(Some(p)) => {
                next.status.nodes.insert("n2".into(), report(p));
            }
            Some(None) => {
                next.status.nodes.remove("n2");
            }
            None => {}
        }
        if c.placement {
            next.status.placement.as_mut().unwrap().nodes = vec!["n1".into()];
        }
        if c.spec {
            next.spec.env.insert("EVIL".into(), "1".into());
        }
        let body = serde_json::to_vec(&next).unwrap();
        let result = rt.block_on(node_writes::check(&store, "n1", "apps/default/a", Some(body)));
        let others_changed = next.status.nodes.get("n2") != stored.status.nodes.get("n2");
        let forbidden = others_changed || c.placement || c.spec;
        prop_assert_eq!(result.is_err(), forbidden, "{:?}", c);
        if let Ok(allowed) = result {
            let app: App = serde_json::from_slice(&allowed.value.unwrap()).unwrap();
            prop_assert_eq!(&app.spec, &stored.spec);
            prop_assert_eq!(&app.status.placement, &stored.status.placement);
            prop_assert_eq!(app.status.nodes.get("n2"), stored.status.nodes.get("n2"));
            prop_assert_eq!(app.status.nodes.get("n1"), next.status.nodes.get("n1"));
            let mut derived = app.status.clone();
            derived.summarize(1, chrono::Utc::now());
            prop_assert_eq!(app.status.phase, derived.phase, "the phase is the reports'");
        }
    });
}
