//! The file-mount capability's spec: `spec.files`, directory trees shipped by digest and
//! mounted read-only.

use crate::{ComponentRef, FieldError, FileMount, WorkloadSpec, fail};
use std::collections::HashSet;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "files";

/// Most mounts one spec may have.
pub const MAX_MOUNTS: usize = 16;

/// The mounts `spec` asks for (only Apps have any).
pub fn mounts(spec: WorkloadSpec<'_>) -> &[FileMount] {
    match spec {
        WorkloadSpec::App(app) => &app.files,
        WorkloadSpec::Job(_) => &[],
    }
}

/// At most [`MAX_MOUNTS`], each a directory or digest mounted at a clean absolute path, no
/// path twice.
///
/// # Errors
/// The first invalid mount.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    let mounts = mounts(spec);
    if mounts.len() > MAX_MOUNTS {
        return fail("spec.files", format!("at most {MAX_MOUNTS} mounts"));
    }
    let mut seen = HashSet::new();
    for (i, f) in mounts.iter().enumerate() {
        let at = format!("spec.files[{i}]");
        if let ComponentRef::Oci(r) = &f.source {
            return fail(
                format!("{at}.source"),
                format!(
                    "'{r}': a file tree is a directory relative to the manifest, not an OCI image"
                ),
            );
        }
        let m = &f.mount;
        let clean = m.starts_with('/')
            && m.len() > 1
            && !m.ends_with('/')
            && m[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !clean {
            return fail(
                format!("{at}.mount"),
                format!(
                    "'{m}' must be an absolute path like /static, without '.', '..' or empty segments"
                ),
            );
        }
        if !seen.insert(m.as_str()) {
            return fail(format!("{at}.mount"), format!("'{m}' is mounted twice"));
        }
    }
    Ok(())
}
