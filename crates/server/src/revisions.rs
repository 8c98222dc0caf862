//! Revisions: one immutable record per spec an App has had (`revisions/NS/APP/N`).
//!
//! Written before the App's new generation, so that a generation never exists without its
//! revision; a crash between the two leaves a revision numbered past the App's generation,
//! which listings skip and the next apply of that generation overwrites.

use crate::ApiError;
use shoal_api::{API_VERSION, App, ObjectMeta, Revision};
use shoal_store::{Objects, Precondition, StoreError};

/// Records `app`'s spec as revision `metadata.generation`.
pub(crate) async fn record(objects: &Objects, app: &App) -> Result<(), ApiError> {
    let (ns, name, number) = (
        &app.metadata.namespace,
        &app.metadata.name,
        app.metadata.generation,
    );
    let mut metadata = ObjectMeta::named(format!("{name}-{number}"));
    metadata.namespace.clone_from(ns);
    metadata.creation_timestamp = Some(chrono::Utc::now());
    let revision = Revision {
        api_version: API_VERSION.into(),
        kind: "Revision".into(),
        metadata,
        app: name.clone(),
        revision: number,
        spec: app.spec.clone(),
    };
    objects.put(revision, Precondition::None).await?;
    Ok(())
}

/// The revisions of `app` up to its generation, oldest first.
pub(crate) async fn list(objects: &Objects, app: &App) -> Result<Vec<Revision>, StoreError> {
    let mut all = objects
        .revisions(&app.metadata.namespace, &app.metadata.name)
        .await?;
    all.retain(|r| r.revision <= app.metadata.generation);
    Ok(all)
}

/// Deletes all but the last [`Revision::KEPT`] revisions of `app`. Best effort: a revision
/// left over is deleted by a later apply.
pub(crate) async fn prune(objects: &Objects, app: &App) {
    let result = async {
        let keys = objects
            .revision_keys(&app.metadata.namespace, &app.metadata.name)
            .await?;
        let excess = keys.len().saturating_sub(Revision::KEPT);
        for key in &keys[..excess] {
            objects.store().delete(key, Precondition::None).await?;
        }
        Ok::<_, StoreError>(())
    };
    if let Err(e) = result.await {
        tracing::warn!("{}: cannot prune its revisions: {e}", app.object_ref());
    }
}

/// Deletes every revision of App `name`.
pub(crate) async fn delete_all(objects: &Objects, ns: &str, name: &str) -> Result<(), StoreError> {
    for key in objects.revision_keys(ns, name).await? {
        objects.store().delete(&key, Precondition::None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_store::Embedded;
    use std::sync::Arc;

    fn app(generation: u64) -> App {
        let yaml = format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: web}}\nspec:\n  component: sha256:{}\n  routes: [{{path: /}}]\n  env: {{GEN: \"{generation}\"}}\n",
            "0".repeat(64)
        );
        let objects = shoal_manifest::parse("test.yaml", &yaml).unwrap();
        let Some(shoal_manifest::Object::App(mut app)) = objects.into_iter().next() else {
            unreachable!("the manifest holds one App")
        };
        app.metadata.generation = generation;
        app
    }

    #[tokio::test]
    async fn revisions_list_in_order_skip_orphans_and_keep_the_last_ten() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::new(Arc::new(
            Embedded::open(&dir.path().join("state.redb")).unwrap(),
        ));
        for g in 1..=12 {
            record(&objects, &app(g)).await.unwrap();
            prune(&objects, &app(g)).await;
        }
        let listed = list(&objects, &app(12)).await.unwrap();
        let numbers: Vec<u64> = listed.iter().map(|r| r.revision).collect();
        assert_eq!(numbers, (3..=12).collect::<Vec<_>>());
        assert_eq!(listed[9].spec.env["GEN"], "12");
        assert_eq!(listed[9].metadata.name, "web-12");

        // A crash after writing revision 13 but before the App moved to generation 13: the
        // App (still at 12) does not list it, and the next apply of 13 overwrites it.
        record(&objects, &app(13)).await.unwrap();
        assert_eq!(list(&objects, &app(12)).await.unwrap().len(), 10);
        let mut again = app(13);
        again.spec.env.insert("GEN".into(), "13 for real".into());
        record(&objects, &again).await.unwrap();
        let last = list(&objects, &again).await.unwrap().pop().unwrap();
        assert_eq!(last.spec.env["GEN"], "13 for real");

        delete_all(&objects, "default", "web").await.unwrap();
        assert!(list(&objects, &again).await.unwrap().is_empty());
    }
}
