//! A Spin component's `[component.ID.dependencies]` as an App's `spec.dependencies`: each
//! entry's name is what it satisfies, as in Spin; its source is a `path` (relative to the
//! manifest), another `component` of the application (that component's source), or a
//! registry package (`version` with `registry` and `package`, pulled as the OCI artifact it
//! maps to). `dependencies_inherit_configuration = true` lets every dependency use the
//! component's capabilities (Spin's default, and Shoal's, is none). A published
//! application's dependencies name their content by digest, each with its own `inherit`.

use super::Fail;
use super::schema::{self, RegistrySource, Source};
use shoal_api::{ComponentRef, Dependency};
use std::collections::BTreeMap;

/// The dependencies of component `id` (`c`), whose application's components are `all`.
///
/// # Errors
/// An entry of a form Shoal does not take (a URL, a registry package without a registry)
/// or naming a component the manifest lacks.
pub(crate) fn of(
    id: &str,
    c: &schema::Component,
    all: &BTreeMap<String, schema::Component>,
) -> Result<BTreeMap<String, Dependency>, Fail> {
    let mut out: BTreeMap<String, Dependency> = c
        .published_dependencies
        .iter()
        .map(|(name, d)| {
            let dependency = Dependency {
                component: Some(ComponentRef::Digest(d.content.digest.clone())),
                app: None,
                export: d.export.clone(),
                inherit_capabilities: d.inherit,
            };
            (name.clone(), dependency)
        })
        .collect();
    let Some(table) = &c.dependencies else {
        return Ok(out);
    };
    for (name, entry) in table {
        let at = format!("component.{id}.dependencies.\"{name}\"");
        let (component, export) = entry_source(name, entry, all).map_err(|m| (at, m))?;
        out.insert(
            name.clone(),
            Dependency {
                component: Some(component),
                app: None,
                export,
                inherit_capabilities: c.dependencies_inherit_configuration,
            },
        );
    }
    Ok(out)
}

/// One entry: its component and the export it names.
fn entry_source(
    name: &str,
    entry: &toml::Value,
    all: &BTreeMap<String, schema::Component>,
) -> Result<(ComponentRef, Option<String>), String> {
    let table = match entry {
        toml::Value::String(version) => {
            return Err(format!(
                "\"{version}\" names a version in Spin's default package registry, which Shoal does not have; give {{ version, registry, package }} or a path"
            ));
        }
        toml::Value::Table(t) => t,
        _ => {
            return Err(
                "is not a dependency; give { path }, { component }, or { version, registry, package }".into(),
            );
        }
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} must be a string")),
        }
    };
    let known = [
        "path",
        "component",
        "export",
        "version",
        "registry",
        "package",
    ];
    if let Some(k) = table.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(match k.as_str() {
            "url" | "digest" => {
                "URL dependencies are not supported yet; download it and give its path".into()
            }
            other => format!(
                "unknown field `{other}`; a dependency has path, component, or version with registry and package, and may have export"
            ),
        });
    }
    let export = text("export")?;
    let component = match (text("path")?, text("component")?, text("version")?) {
        (Some(path), None, None) => ComponentRef::Path(path),
        (None, Some(other), None) => {
            let Some(c) = all.get(&other) else {
                return Err(format!(
                    "names component \"{other}\", which the manifest does not have"
                ));
            };
            match &c.source {
                Source::Path(p) => ComponentRef::Path(p.clone()),
                Source::Registry(r) => ComponentRef::Oci(super::registry_source(r)?),
                _ => {
                    return Err(format!(
                        "component \"{other}\" has a URL source; a dependency on another component takes its path or registry source"
                    ));
                }
            }
        }
        (None, None, Some(version)) => {
            let package = match text("package")? {
                Some(p) => p,
                // The dependency's own package: `ns:pkg/iface@1.0.0` is in `ns:pkg`.
                None => name.split(['/', '@']).next().unwrap_or(name).to_string(),
            };
            let registry = text("registry")?;
            ComponentRef::Oci(super::registry_source(&RegistrySource {
                registry,
                package,
                version,
            })?)
        }
        _ => {
            return Err(
                "give exactly one of path, component, or version (with registry and package)"
                    .into(),
            );
        }
    };
    Ok((component, export))
}
