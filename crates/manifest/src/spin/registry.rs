//! Spin's registry packages (`{ registry, package, version }`) as the OCI artifacts they
//! are published as.

use super::schema;
use shoal_api::{ComponentRef, OciRef};

/// A registry package as the Wasm artifact wkg's default OCI mapping names:
/// `oci://REGISTRY/NAMESPACE/NAME:VERSION` for package `NAMESPACE:NAME`.
pub(crate) fn registry_source(r: &schema::RegistrySource) -> Result<OciRef, String> {
    let Some(registry) = &r.registry else {
        return Err(format!(
            "package {}@{} names no registry, and Shoal has no default package registry; add registry = \"HOST\"",
            r.package, r.version
        ));
    };
    let Some((namespace, name)) = r.package.split_once(':') else {
        return Err(format!("package \"{}\" must be NAMESPACE:NAME", r.package));
    };
    let text = format!(
        "oci://{registry}/{namespace}/{}:{}",
        name.replace(':', "/"),
        r.version
    );
    match ComponentRef::parse(&text) {
        Ok(ComponentRef::Oci(reference)) => Ok(reference),
        Ok(_) => Err(format!(
            "package {}@{} does not name an OCI artifact",
            r.package, r.version
        )),
        Err(e) => Err(format!(
            "package {}@{} at {registry}: {e}",
            r.package, r.version
        )),
    }
}
