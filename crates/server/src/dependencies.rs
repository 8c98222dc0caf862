//! An App's `spec.dependencies` at apply: each dependency's component pulled (an OCI
//! reference) or taken from the app it names (`{app: other}`, as that app is now), checked to
//! be an uploaded component, and the whole composition tried — so that one that cannot be
//! (an import nothing satisfies, a missing export, mismatched types, a cycle) is refused
//! here, naming the dependency, rather than failing on every node.

use crate::{ApiError, ApiState};
use shoal_api::{App, ComponentRef, ObjectRef};

/// Points each of `app`'s dependencies at a blob: the component of the app it names, or what
/// its OCI reference pulled.
///
/// # Errors
/// [`ApiError::Invalid`] naming the app and the dependency's field.
pub(crate) async fn resolve(
    state: &ApiState,
    what: &ObjectRef,
    headers: &http::HeaderMap,
    app: &mut App,
) -> Result<(), ApiError> {
    if app.spec.dependencies.is_empty() {
        return Ok(());
    }
    let ns = app.metadata.namespace.clone();
    let invalid = |field: &str, m: String| ApiError::Invalid(format!("{what}: {field}: {m}"));
    for (name, d) in &mut app.spec.dependencies {
        let field = format!("{}.component", shoal_compose::field(name));
        if let Some(other) = &d.app {
            let Some(other_app) = state.objects.get::<App>(&ns, other).await? else {
                let missing = ObjectRef {
                    kind: "app".into(),
                    namespace: ns.clone(),
                    name: other.clone(),
                };
                return Err(invalid(
                    &format!("{}.app", shoal_compose::field(name)),
                    format!("{missing} does not exist; apply it first"),
                ));
            };
            d.component = Some(other_app.spec.component);
        }
        let Some(component) = &mut d.component else {
            return Err(invalid(&field, "names no component".into()));
        };
        let mut source = None;
        crate::oci::resolve(state, what, &field, headers, component, &mut source).await?;
    }
    Ok(())
}

/// Composes `app`'s component with its dependencies, every one an uploaded component by now,
/// and discards the result: only whether it can be matters here.
///
/// # Errors
/// [`ApiError::Invalid`] naming the app and the dependency's field.
pub(crate) async fn compose(state: &ApiState, what: &ObjectRef, app: &App) -> Result<(), ApiError> {
    if app.spec.dependencies.is_empty() {
        return Ok(());
    }
    // Off the async workers: components are read and parsed.
    let path = |c: &ComponentRef| c.digest().map(|d| state.blobs.path(d));
    let root = path(&app.spec.component);
    let parts: Vec<_> = app
        .spec
        .dependencies
        .iter()
        .map(|(name, d)| {
            let digest = d.component.as_ref().map(ToString::to_string);
            (
                name.clone(),
                d.component.as_ref().and_then(path),
                digest,
                d.export.clone(),
                d.inherit_capabilities,
            )
        })
        .collect();
    let composed = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let read = |p: Option<std::path::PathBuf>| {
            let p = p.ok_or("a component is not an uploaded blob")?;
            std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let root = read(root)?;
        let wasm: Vec<Vec<u8>> = parts
            .iter()
            .map(|(_, p, ..)| read(p.clone()))
            .collect::<Result<_, _>>()?;
        let dependencies: Vec<_> = parts
            .iter()
            .zip(&wasm)
            .map(
                |((name, _, digest, export, inherit), wasm)| shoal_compose::Dependency {
                    name,
                    wasm,
                    id: digest.as_deref().unwrap_or(name),
                    export: export.as_deref(),
                    inherit: *inherit,
                },
            )
            .collect();
        shoal_compose::compose(&root, &dependencies, &shoal_api::capabilities::interfaces())
            .map(drop)
            .map_err(|r| r.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("spec.dependencies: composing them failed: {e}")));
    composed.map_err(|m| ApiError::Invalid(format!("{what}: {m}")))
}
