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
    let invalid =
        |field: String| ApiError::Invalid(format!("{what}: {field}: is not an uploaded blob"));
    let blob = |c: Option<&ComponentRef>| Some((c?.to_string(), state.blobs.path(c?.digest()?)));
    let (_, root) =
        blob(Some(&app.spec.component)).ok_or_else(|| invalid("spec.component".into()))?;
    let mut parts = Vec::with_capacity(app.spec.dependencies.len());
    for (name, d) in &app.spec.dependencies {
        let field = format!("{}.component", shoal_compose::field(name));
        let (digest, path) = blob(d.component.as_ref()).ok_or_else(|| invalid(field))?;
        parts.push((
            name.clone(),
            path,
            digest,
            d.export.clone(),
            d.inherit_capabilities,
        ));
    }
    // Off the async workers: components are read and parsed.
    let composed = tokio::task::spawn_blocking(move || {
        let files: Vec<_> = parts
            .iter()
            .map(
                |(name, path, digest, export, inherit)| shoal_compose::DependencyFile {
                    name,
                    path,
                    id: digest,
                    export: export.as_deref(),
                    inherit: *inherit,
                },
            )
            .collect();
        let denied = shoal_api::capabilities::interfaces();
        shoal_compose::compose_files(&root, &files, &denied)
            .map(drop)
            .map_err(|r| r.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("spec.dependencies: composing them failed: {e}")));
    composed.map_err(|m| ApiError::Invalid(format!("{what}: {m}")))
}
