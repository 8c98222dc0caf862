//! Revisions: one immutable record per spec an App has had (`revisions/NS/APP/N`).
//!
//! Written before the App's new generation, so that a generation never exists without its
//! revision; a crash between the two leaves a revision numbered past the App's generation,
//! which listings skip and the next apply of that generation overwrites.

use crate::ApiError;
use shoal_api::{API_VERSION, App, ObjectMeta, Revision};
use shoal_store::{Objects, Precondition, StoreError, revision_key, revisions_prefix};

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
    objects
        .put(
            &revision_key(ns, name, number),
            revision,
            Precondition::None,
        )
        .await?;
    Ok(())
}

/// The revisions of `app` up to its generation, oldest first.
pub(crate) async fn list(objects: &Objects, app: &App) -> Result<Vec<Revision>, StoreError> {
    let prefix = revisions_prefix(&app.metadata.namespace, &app.metadata.name);
    let (mut all, _) = objects.list::<Revision>(&prefix).await?;
    all.retain(|r| r.revision <= app.metadata.generation);
    Ok(all)
}

/// Deletes all but the last [`Revision::KEPT`] revisions of `app`. Best effort: a revision
/// left over is deleted by a later apply.
pub(crate) async fn prune(objects: &Objects, app: &App) {
    let result = async {
        let prefix = revisions_prefix(&app.metadata.namespace, &app.metadata.name);
        let (keys, _) = objects.store().list(&prefix).await?;
        let excess = keys.len().saturating_sub(Revision::KEPT);
        for kv in &keys[..excess] {
            objects.store().delete(&kv.key, Precondition::None).await?;
        }
        Ok::<_, StoreError>(())
    };
    if let Err(e) = result.await {
        tracing::warn!("{}: cannot prune its revisions: {e}", app.object_ref());
    }
}

/// Deletes every revision of App `name`.
pub(crate) async fn delete_all(objects: &Objects, ns: &str, name: &str) -> Result<(), StoreError> {
    let (keys, _) = objects.store().list(&revisions_prefix(ns, name)).await?;
    for kv in keys {
        objects.store().delete(&kv.key, Precondition::None).await?;
    }
    Ok(())
}
