//! The file-mount capability's spec: `spec.files`, directory trees shipped by digest and
//! mounted read-only (or, for a Job, as a writable copy), and a Job's `spec.workingDir` in one
//! of them.

use crate::{ComponentRef, FieldError, FileMount, MountMode, WorkloadSpec, fail};
use std::collections::HashSet;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "files";

/// The import names (prefixes) through which it is granted: the preopened directories.
pub const INTERFACES: &[&str] = &["wasi:filesystem/preopens"];

/// Most mounts one spec may have.
pub const MAX_MOUNTS: usize = 16;

/// The mounts `spec` asks for.
pub fn mounts(spec: WorkloadSpec<'_>) -> &[FileMount] {
    match spec {
        WorkloadSpec::App(app) => &app.files,
        WorkloadSpec::Job(job) => &job.files,
    }
}

/// The working directory `spec` gives (only Jobs have one).
pub fn working_dir(spec: WorkloadSpec<'_>) -> Option<&str> {
    match spec {
        WorkloadSpec::App(_) => None,
        WorkloadSpec::Job(job) => job.working_dir.as_deref(),
    }
}

/// A guest path without a leading `./` (`.` itself is the empty path).
fn plain(path: &str) -> &str {
    match path {
        "." => "",
        _ => path.strip_prefix("./").unwrap_or(path),
    }
}

/// Which of `mounts` holds the guest directory `dir`, and the path inside it (empty for the
/// mount itself). Absolute directories are in absolute mounts, relative ones in relative mounts.
pub fn locate<'a>(mounts: &[FileMount], dir: &'a str) -> Option<(usize, &'a str)> {
    let dir = plain(dir);
    mounts.iter().enumerate().find_map(|(i, f)| {
        let mount = plain(&f.mount);
        let rest = match mount {
            "/" => dir.strip_prefix('/')?,
            _ if dir == mount => "",
            _ => dir.strip_prefix(mount)?.strip_prefix('/')?,
        };
        Some((i, rest))
    })
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
/// writable ones only for Jobs; a working directory is a clean path in one of the mounts.
///
/// # Errors
/// The first invalid mount, or the working directory.
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
        if !seen.insert(plain(m)) {
            return fail(format!("{at}.mount"), format!("'{m}' is mounted twice"));
        }
    }
    let Some(dir) = working_dir(spec) else {
        return Ok(());
    };
    if !is_clean(dir) {
        return fail(
            "spec.workingDir",
            format!("'{dir}' must be a path like /data or data, without '..' or empty segments"),
        );
    }
    if seen.contains("") {
        return fail(
            "spec.workingDir",
            "the mount at '.' is the working directory already; give one or the other",
        );
    }
    if locate(mounts, dir).is_none() {
        return fail(
            "spec.workingDir",
            format!("'{dir}' is in none of spec.files' mounts; mount the directory it names"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_clean, locate};
    use crate::FileMount;

    #[test]
    fn a_working_directory_is_found_in_its_mount() {
        let mounts: Vec<FileMount> = ["/data", "out", "/"]
            .iter()
            .map(|m| {
                serde_json::from_value(serde_json::json!({"source": "./x", "mount": m})).unwrap()
            })
            .collect();
        assert_eq!(locate(&mounts, "/data"), Some((0, "")));
        assert_eq!(locate(&mounts, "/data/sub/dir"), Some((0, "sub/dir")));
        assert_eq!(locate(&mounts, "./out/x"), Some((1, "x")));
        assert_eq!(locate(&mounts, "out"), Some((1, "")));
        assert_eq!(locate(&mounts, "/database"), Some((2, "database")));
        assert_eq!(locate(&mounts, "outside"), None);
        assert_eq!(locate(&mounts[..2], "/etc"), None);
    }

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
