//! The file-mount capability's spec: `spec.files`, directory trees shipped by digest and
//! mounted read-only.

use crate::{ComponentRef, FieldError, FileMount, MountMode, WorkloadSpec, fail};
use std::collections::HashSet;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "files";

/// Most mounts one spec may have.
pub const MAX_MOUNTS: usize = 16;

/// The mounts `spec` asks for.
pub fn mounts(spec: WorkloadSpec<'_>) -> &[FileMount] {
    match spec {
        WorkloadSpec::App(app) => &app.files,
        WorkloadSpec::Job(job) => &job.files,
    }
}

/// Whether `mount` is a path a guest can be given: absolute (`/static`, `/`) or relative
/// (`data`, `.`), as `wasmtime run --dir HOST::GUEST` takes it, without `..` or empty segments.
fn is_clean(mount: &str) -> bool {
    if mount == "/" || mount == "." {
        return true;
    }
    let rest = mount.strip_prefix('/').unwrap_or(mount);
    !rest.is_empty()
        && !mount.contains('\0')
        && rest.split('/').all(|seg| !seg.is_empty() && seg != "..")
        && rest.split('/').skip(1).all(|seg| seg != ".")
}

/// At most [`MAX_MOUNTS`], each a directory or digest mounted at a clean path, no path twice;
/// writable ones only for Jobs.
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
        if !is_clean(m) {
            return fail(
                format!("{at}.mount"),
                format!(
                    "'{m}' must be a path like /static or a relative name like data, without '..' or empty segments"
                ),
            );
        }
        if f.mode == Some(MountMode::Rw) && matches!(spec, WorkloadSpec::App(_)) {
            return fail(
                format!("{at}.mode"),
                "rw is for Jobs, whose attempts each get a writable copy; an App's instances share their files read-only",
            );
        }
        if !seen.insert(m.as_str()) {
            return fail(format!("{at}.mount"), format!("'{m}' is mounted twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_clean;

    #[test]
    fn mounts_are_named_as_wasmtime_run_names_them() {
        for ok in ["/static", "/", "data", ".", "./data", "a/b", "/a/b"] {
            assert!(is_clean(ok), "{ok}");
        }
        for bad in ["", "/static/../etc", "..", "a//b", "a/", "/a/./b", "x\0"] {
            assert!(!is_clean(bad), "{bad}");
        }
    }
}
