//! Route claims: one store key per served route, so that an apply checks its routes in O(its
//! routes), not by reading every App.
//!
//! `routes/<host or *><path>` (an exact route: `routes/<host or *>=<path>`) holds the
//! `namespace/name` of the app serving that route, the route normalised as the node matches
//! it (`/a/` and `/a` are one claim). A claim
//! is a hint that is always checked against its holder: a claim whose holder no longer lists
//! the route (the server died between a claim and the app's write, or before releasing it) is
//! stale and is taken over with compare-and-swap. So no two apps ever both hold a route, and
//! nothing but a few stale keys is left behind by a crash. Claims are created for every stored
//! App the first time a server applies (stores written before the index existed).
//!
//! A host belongs to one namespace: `hosts/<host>` holds the namespace whose apps route it,
//! claimed (by compare-and-swap) with an app's first route on that host and released when no
//! app of that namespace routes it any more. It too is checked against its holder, so a
//! namespace that no longer routes a host does not keep it. Routes with no host are claimed
//! per route only.

use crate::ApiError;
use shoal_api::{App, Route};
use shoal_store::{Objects, Precondition, StoreError, raw};

/// The claim key of `route`: one per route as the node matches it (parameters unnamed).
fn claim_key(route: &Route) -> String {
    let route = route.shape();
    format!(
        "{}{}{}{}",
        raw::ROUTE_CLAIMS,
        route.host.as_deref().unwrap_or("*"),
        if route.exact { "=" } else { "" },
        route.path
    )
}

/// Whether `app` lists `route`, or another spelling of it (`/a/` for `/a`, `/u/:name` for
/// `/u/:id`).
pub(crate) fn lists(app: &App, route: &Route) -> bool {
    let route = route.shape();
    app.spec.routes.iter().any(|r| r.shape() == route)
}

fn holder_of(app: &App) -> String {
    format!("{}/{}", app.metadata.namespace, app.metadata.name)
}

/// Claims every route of `app` for it.
///
/// # Errors
/// [`ApiError::Conflict`] naming the field and the app that serves it; the claims taken before
/// are left for the caller to release (or to go stale, which is harmless).
pub(crate) async fn claim(objects: &Objects, app: &App) -> Result<(), ApiError> {
    claim_hosts(objects, app).await?;
    let me = holder_of(app);
    for (i, route) in app.spec.routes.iter().enumerate() {
        let key = claim_key(route);
        loop {
            let pre = match objects.store().get(&key).await? {
                None => Precondition::Absent,
                Some(kv) if kv.value == me.as_bytes() => break,
                Some(kv) => {
                    let other = String::from_utf8_lossy(&kv.value).into_owned();
                    if let Some(other) = serving(objects, &other, route).await? {
                        return Err(ApiError::Conflict(format!(
                            "{}: spec.routes[{i}]: route {route} is already served by {}; choose another path or host",
                            app.object_ref(),
                            other.object_ref()
                        )));
                    }
                    Precondition::ModRevision(kv.mod_revision)
                }
            };
            match objects
                .store()
                .put(&key, me.clone().into_bytes(), pre)
                .await
            {
                Ok(_) => break,
                // Someone else claimed or released it meanwhile: look again.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Releases the claims `app` holds on `routes` (routes it no longer lists, or all of them when
/// it is deleted). Best effort: a claim left behind is stale and will be taken over.
pub(crate) async fn release(objects: &Objects, app: &App, routes: &[Route]) {
    let me = holder_of(app);
    for route in routes {
        let key = claim_key(route);
        let result = match objects.store().get(&key).await {
            Ok(Some(kv)) if kv.value == me.as_bytes() => objects
                .store()
                .delete(&key, Precondition::ModRevision(kv.mod_revision))
                .await
                .map(drop),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!("{}: cannot release route {route}: {e}", app.object_ref());
        }
    }
    if let Err(e) = release_hosts(objects, app, routes).await {
        tracing::warn!("{}: cannot release its hosts: {e}", app.object_ref());
    }
}

fn host_key(host: &str) -> String {
    format!("{}{host}", raw::HOST_CLAIMS)
}

/// The hosts `routes` name (normalised), each once.
fn hosts<'a>(routes: impl IntoIterator<Item = &'a Route>) -> std::collections::BTreeSet<String> {
    routes.into_iter().filter_map(|r| r.shape().host).collect()
}

/// Whether an app of namespace `ns` routes `host`.
async fn routed_in(objects: &Objects, ns: &str, host: &str) -> Result<bool, ApiError> {
    let (apps, _) = objects.list::<App>(Some(ns)).await?;
    Ok(apps.iter().any(|a| hosts(&a.spec.routes).contains(host)))
}

/// Claims every host `app` routes for its namespace.
///
/// # Errors
/// [`ApiError::Forbidden`] naming the field, the host and the namespace that owns it.
async fn claim_hosts(objects: &Objects, app: &App) -> Result<(), ApiError> {
    let ns = &app.metadata.namespace;
    for host in hosts(&app.spec.routes) {
        let key = host_key(&host);
        loop {
            let pre = match objects.store().get(&key).await? {
                None => Precondition::Absent,
                Some(kv) if kv.value == ns.as_bytes() => break,
                Some(kv) => {
                    let owner = String::from_utf8_lossy(&kv.value).into_owned();
                    if routed_in(objects, &owner, &host).await? {
                        let i = app
                            .spec
                            .routes
                            .iter()
                            .position(|r| r.shape().host.as_deref() == Some(host.as_str()))
                            .unwrap_or_default();
                        return Err(ApiError::Forbidden(format!(
                            "{}: spec.routes[{i}].host: host {host} belongs to namespace {owner}, whose apps route it; choose another host",
                            app.object_ref()
                        )));
                    }
                    Precondition::ModRevision(kv.mod_revision)
                }
            };
            match objects
                .store()
                .put(&key, ns.clone().into_bytes(), pre)
                .await
            {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Gives back the hosts among `routes` that no app of `app`'s namespace routes any more.
async fn release_hosts(objects: &Objects, app: &App, routes: &[Route]) -> Result<(), ApiError> {
    let ns = &app.metadata.namespace;
    for host in hosts(routes) {
        if routed_in(objects, ns, &host).await? {
            continue;
        }
        let key = host_key(&host);
        if let Some(kv) = objects.store().get(&key).await?
            && kv.value == ns.as_bytes()
        {
            objects
                .store()
                .delete(&key, Precondition::ModRevision(kv.mod_revision))
                .await?;
        }
    }
    Ok(())
}

/// Claims the routes of every stored App that has none yet (stores from before the index).
pub(crate) async fn index_existing(objects: &Objects) -> Result<(), ApiError> {
    let (apps, _) = objects.list::<App>(None).await?;
    for app in &apps {
        let me = holder_of(app).into_bytes();
        for host in hosts(&app.spec.routes) {
            let ns = app.metadata.namespace.clone().into_bytes();
            match objects
                .store()
                .put(&host_key(&host), ns, Precondition::Absent)
                .await
            {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for route in &app.spec.routes {
            match objects
                .store()
                .put(&claim_key(route), me.clone(), Precondition::Absent)
                .await
            {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// The app `holder` (`namespace/name`), if it exists and lists `route`.
async fn serving(objects: &Objects, holder: &str, route: &Route) -> Result<Option<App>, ApiError> {
    let Some((ns, name)) = holder.split_once('/') else {
        return Ok(None);
    };
    Ok(objects
        .get::<App>(ns, name)
        .await?
        .filter(|app| lists(app, route)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_store::Embedded;
    use std::sync::Arc;

    fn app(name: &str, paths: &[&str]) -> App {
        let routes: Vec<String> = paths.iter().map(|p| format!("{{path: {p}}}")).collect();
        let yaml = format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: {name}}}\nspec:\n  component: sha256:{}\n  routes: [{}]\n",
            "0".repeat(64),
            routes.join(", ")
        );
        let objects = shoal_manifest::parse("test.yaml", &yaml).unwrap();
        let Some(shoal_manifest::Object::App(app)) = objects.into_iter().next() else {
            unreachable!("the manifest holds one App")
        };
        app
    }

    async fn store_app(objects: &Objects, app: &App) {
        objects.put(app.clone(), Precondition::None).await.unwrap();
    }

    fn objects() -> (tempfile::TempDir, Objects) {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(&dir.path().join("state.redb")).unwrap();
        (dir, Objects::new(Arc::new(store)))
    }

    fn conflict(r: Result<(), ApiError>) -> String {
        match r {
            Err(ApiError::Conflict(m)) => m,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_route_belongs_to_one_app_until_it_lets_go() {
        let (_dir, objects) = objects();
        let a = app("a", &["/x", "/y"]);
        claim(&objects, &a).await.unwrap();
        store_app(&objects, &a).await;
        // Claiming again is idempotent.
        claim(&objects, &a).await.unwrap();

        let b = app("b", &["/y"]);
        assert_eq!(
            conflict(claim(&objects, &b).await),
            "app/b: spec.routes[0]: route /y is already served by app/a; choose another path or host"
        );
        // a drops /y: b may take it.
        let a2 = app("a", &["/x"]);
        store_app(&objects, &a2).await;
        release(&objects, &a2, &[a.spec.routes[1].clone()]).await;
        claim(&objects, &b).await.unwrap();
        store_app(&objects, &b).await;
        // Releasing never takes another app's claim.
        release(&objects, &a2, &b.spec.routes).await;
        assert!(conflict(claim(&objects, &app("c", &["/y"])).await).contains("by app/b"));
        // Routes that differ only in their parameters' names match the same requests.
        let d = app("d", &["/u/:id"]);
        claim(&objects, &d).await.unwrap();
        store_app(&objects, &d).await;
        assert!(conflict(claim(&objects, &app("e", &["/u/:name/"])).await).contains("by app/d"));
    }

    #[tokio::test]
    async fn a_stale_claim_is_taken_over() {
        let (_dir, objects) = objects();
        // The server died after claiming /z for a, before writing a: a does not list /z.
        let a = app("a", &["/x"]);
        store_app(&objects, &a).await;
        claim(&objects, &app("a", &["/x", "/z"])).await.unwrap();
        claim(&objects, &app("b", &["/z"])).await.unwrap();
        // A claim by an app that no longer exists is stale too.
        claim(&objects, &app("gone", &["/w"])).await.unwrap();
        claim(&objects, &app("b", &["/w"])).await.unwrap();
    }

    #[tokio::test]
    async fn apps_stored_before_the_index_are_indexed() {
        let (_dir, objects) = objects();
        store_app(&objects, &app("old", &["/legacy"])).await;
        index_existing(&objects).await.unwrap();
        assert!(conflict(claim(&objects, &app("new", &["/legacy"])).await).contains("by app/old"));
    }
}
