//! Directory trees shipped with an app: packed by the CLI into one blob, unpacked by the node.
//!
//! # Guarantees
//! - Packing refuses symbolic links and anything but regular files and directories, and is
//!   deterministic (sorted entries, zeroed times and owners), so the same tree has one digest.
//! - Unpacking accepts only relative paths without `..`, only files and directories, at most
//!   [`MAX_TREE_BYTES`] and [`MAX_TREE_ENTRIES`]; it writes to a temporary directory and renames
//!   it into place, so a tree is either complete or absent.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a tree cannot be packed or unpacked: the path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TreeError(String);

impl TreeError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<String> for TreeError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// Largest unpacked tree.
pub const MAX_TREE_BYTES: u64 = 1 << 30;
/// Most entries in a tree.
pub const MAX_TREE_ENTRIES: usize = 100_000;

/// Packs the directory `dir` into tar bytes.
///
/// # Errors
/// A message naming the offending path: not a directory, a symbolic link, a special file, or
/// unreadable.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, TreeError> {
    pack(dir).map_err(TreeError)
}

/// Packs the files `files` names into tar bytes: each `(path in the tree, file on disk)`,
/// the tree's directories made from the paths. The same set gives the same bytes, whatever
/// its order.
///
/// # Errors
/// A path that is not relative or climbs out (`..`), two files at one path, or a file that
/// is not a regular file or cannot be read.
pub fn pack_files(files: &[(PathBuf, PathBuf)]) -> Result<Vec<u8>, TreeError> {
    pack_entries(
        files,
        |full| full.display().to_string(),
        |builder, rel, full| append(builder, rel, Some(full)),
    )
}

/// Packs files given by their bytes into tar bytes: each `(path in the tree, contents)`, as
/// [`pack_files`] packs files on disk (the same tree gives the same bytes).
///
/// # Errors
/// A path that is not relative or climbs out (`..`), or two files at one path.
pub fn pack_bytes(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<u8>, TreeError> {
    pack_entries(
        files,
        |_| "a file".to_string(),
        |builder, rel, bytes| {
            let mut header = file_header(bytes.len() as u64);
            builder
                .append_data(&mut header, rel, &bytes[..])
                .map_err(|e| e.to_string())
        },
    )
}

/// The tar of `files` (path in the tree, source), its directories made from the paths, in
/// path order; `name` says what a source is in errors, `append_file` writes one.
fn pack_entries<T>(
    files: &[(PathBuf, T)],
    name: impl Fn(&T) -> String,
    append_file: impl Fn(&mut tar::Builder<Vec<u8>>, &Path, &T) -> Result<(), String>,
) -> Result<Vec<u8>, TreeError> {
    let mut entries = std::collections::BTreeMap::new();
    for (rel, source) in files {
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(TreeError(format!(
                "{} is not a relative path inside the tree",
                rel.display()
            )));
        }
        for dir in rel
            .ancestors()
            .skip(1)
            .filter(|d| !d.as_os_str().is_empty())
        {
            entries.entry(dir.to_path_buf()).or_insert(None);
        }
        if let Some(Some(other)) = entries.insert(rel.clone(), Some(source)) {
            return Err(TreeError(format!(
                "{} and {} would both be {}",
                name(other),
                name(source),
                rel.display()
            )));
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (rel, source) in entries {
        match source {
            None => append(&mut builder, &rel, None),
            Some(source) => append_file(&mut builder, &rel, source),
        }
        .map_err(TreeError)?;
    }
    builder.into_inner().map_err(|e| TreeError(e.to_string()))
}

/// A regular file's header: `size` bytes, mode 0644, no time or owner.
fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header
}

fn pack(dir: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    entries.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for rel in entries {
        let full = dir.join(&rel);
        let is_dir = std::fs::symlink_metadata(&full)
            .map_err(|e| format!("{}: {e}", full.display()))?
            .is_dir();
        append(&mut builder, &rel, (!is_dir).then_some(full.as_path()))?;
    }
    builder.into_inner().map_err(|e| e.to_string())
}

/// Appends `rel` to the tar: a directory when `full` is `None`, else the regular file `full`.
fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    rel: &Path,
    full: Option<&Path>,
) -> Result<(), String> {
    {
        let meta = match full {
            None => None,
            Some(full) => {
                let meta = std::fs::symlink_metadata(full)
                    .map_err(|e| format!("{}: {e}", full.display()))?;
                if !meta.is_file() {
                    return Err(format!(
                        "{} is not a regular file (symbolic links and special files cannot be shipped)",
                        full.display()
                    ));
                }
                Some(meta)
            }
        };
        match (full, meta) {
            (Some(full), Some(meta)) => {
                let mut header = file_header(meta.len());
                let file =
                    std::fs::File::open(full).map_err(|e| format!("{}: {e}", full.display()))?;
                builder
                    .append_data(&mut header, rel, file)
                    .map_err(|e| e.to_string())
            }
            _ => {
                let mut header = file_header(0);
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, rel, std::io::empty())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        let rel = path
            .strip_prefix(root)
            .expect("walked from root")
            .to_path_buf();
        if kind.is_symlink() {
            return Err(format!(
                "{} is a symbolic link; ship regular files and directories only",
                path.display()
            ));
        }
        if kind.is_dir() {
            out.push(rel);
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push(rel);
        } else {
            return Err(format!(
                "{} is not a regular file or directory",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Unpacks the tar file at `archive` into `dest` (which must not exist yet).
///
/// # Errors
/// The file cannot be opened, or see [`unpack`].
pub fn unpack_file(archive: &Path, dest: &Path) -> Result<(), TreeError> {
    let file = std::fs::File::open(archive)
        .map_err(|e| TreeError(format!("cannot open {}: {e}", archive.display())))?;
    unpack(std::io::BufReader::new(file), dest)
}

/// Unpacks the tar `archive` into `dest` (which must not exist yet).
///
/// # Errors
/// A message saying which entry was refused and why, or the IO error.
pub fn unpack(archive: impl Read, dest: &Path) -> Result<(), TreeError> {
    unpack_checked(archive, dest).map_err(TreeError)
}

fn unpack_checked(archive: impl Read, dest: &Path) -> Result<(), String> {
    let parent = dest.parent().ok_or("destination has no parent")?;
    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| e.to_string())?;
    let result = unpack_into(archive, &tmp);
    match result {
        Ok(()) => std::fs::rename(&tmp, dest).map_err(|e| e.to_string()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn unpack_into(archive: impl Read, dest: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(archive);
    let (mut bytes, mut count) = (0u64, 0usize);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let safe = path.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || path.as_os_str().is_empty() {
            return Err(format!("entry {} escapes the tree", path.display()));
        }
        count += 1;
        bytes += entry.header().size().unwrap_or(0);
        if count > MAX_TREE_ENTRIES || bytes > MAX_TREE_BYTES {
            return Err(format!(
                "tree is larger than {MAX_TREE_ENTRIES} entries or {MAX_TREE_BYTES} bytes"
            ));
        }
        let target = dest.join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| e.to_string())?
            }
            tar::EntryType::Regular => {
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
                }
                let mut out = std::fs::File::create(&target).map_err(|e| e.to_string())?;
                std::io::copy(&mut entry, &mut out).map_err(|e| e.to_string())?;
            }
            other => {
                return Err(format!(
                    "entry {} is a {other:?}; only files and directories are allowed",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_deterministic_and_safe() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("css")).unwrap();
        std::fs::write(src.path().join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(src.path().join("css/site.css"), "h1{}").unwrap();
        let a = pack_dir(src.path()).unwrap();
        assert_eq!(a, pack_dir(src.path()).unwrap(), "same tree, same bytes");
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("tree");
        unpack(a.as_slice(), &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("css/site.css")).unwrap(),
            "h1{}"
        );

        std::os::unix::fs::symlink("/etc/passwd", src.path().join("passwd")).unwrap();
        let err = pack_dir(src.path()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("passwd is a symbolic link; ship regular files and directories only"),
            "{err}"
        );

        // A hand-made archive with `..` is refused and leaves nothing behind.
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        let name = b"../escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        evil.append(&h, &b"x"[..]).unwrap();
        let bytes = evil.into_inner().unwrap();
        let dest = out.path().join("evil");
        let err = unpack(bytes.as_slice(), &dest).unwrap_err();
        assert_eq!(err.to_string(), "entry ../escape escapes the tree");
        assert!(!dest.exists() && !out.path().join("escape").exists());
    }

    #[test]
    fn files_packed_at_their_tree_paths_in_any_order() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a.txt"), "a").unwrap();
        std::fs::write(src.path().join("b.txt"), "b").unwrap();
        let (a, b) = (src.path().join("a.txt"), src.path().join("b.txt"));
        let one = vec![
            (PathBuf::from("www/a.txt"), a.clone()),
            (PathBuf::from("b.txt"), b.clone()),
        ];
        let other: Vec<_> = one.iter().rev().cloned().collect();
        let packed = pack_files(&one).unwrap();
        assert_eq!(packed, pack_files(&other).unwrap(), "same set, same bytes");
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("tree");
        unpack(packed.as_slice(), &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("www/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(std::fs::read_to_string(dest.join("b.txt")).unwrap(), "b");

        let twice = [(PathBuf::from("x"), a.clone()), (PathBuf::from("x"), b)];
        assert!(
            pack_files(&twice)
                .unwrap_err()
                .to_string()
                .ends_with("would both be x")
        );
        let escape = [(PathBuf::from("../x"), a)];
        assert!(pack_files(&escape).is_err());
    }
}
