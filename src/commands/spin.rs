//! `shoal apply -f spin.toml`: what the CLI does for a Spin application beyond reading it —
//! its component sources (a path, or a URL checked against its digest) and its `files`,
//! packed into one tree the component sees at `/`.

use anyhow::{Context, bail};
use shoal_api::{ComponentRef, Digest, FileMount};
use shoal_manifest::spin::{SpinApp, SpinComponent, SpinFiles, SpinSource, Values};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest a path names, if it is a Spin application: the file itself, or a
/// directory's `spin.toml`. Told by content (see `is_spin_manifest`), not by name.
pub fn manifest_in(path: &Path) -> Option<(PathBuf, String)> {
    let file = if path.is_dir() {
        path.join("spin.toml")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).ok()?;
    shoal_manifest::spin::is_spin_manifest(&text).then_some((file, text))
}

/// The variables' values: `--variable k=v` (repeatable) and the `SPIN_VARIABLE_*`
/// environment, as `spin up` takes them.
///
/// # Errors
/// A `--variable` without `=`, or given twice.
pub fn values(variables: &[String], names_only: bool) -> anyhow::Result<Values> {
    let mut given = BTreeMap::new();
    for v in variables {
        let Some((k, value)) = v.split_once('=') else {
            bail!("--variable {v}: variables must be in the form 'key=value'");
        };
        if given.insert(k.to_string(), value.to_string()).is_some() {
            bail!("--variable {k}: given twice");
        }
    }
    let env = std::env::vars()
        .filter(|(k, _)| k.starts_with("SPIN_VARIABLE_"))
        .collect();
    Ok(Values {
        given,
        env,
        names_only,
    })
}

/// Reads the Spin manifest `file` and prints its notes (what Shoal ignores or drops).
pub fn read(file: &Path, text: &str, values: &Values, namespace: &str) -> anyhow::Result<SpinApp> {
    let app = shoal_manifest::spin::parse(&file.display().to_string(), text, values, namespace)?;
    for note in &app.notes {
        eprintln!("note: {}: {note}", file.display());
    }
    Ok(app)
}

/// What one component needs uploaded: its Wasm (not yet checked to be a component; none
/// for a registry source, which the server pulls), and its files as one tree (mounted at
/// `/`, as `spec.files[0]`).
pub struct Parts {
    /// Where the Wasm came from (for messages) and its bytes.
    pub component: Option<(String, Vec<u8>)>,
    /// The packed tree of its `files`, if it has any.
    pub tree: Option<Vec<u8>>,
}

/// Reads (or fetches) component `c`'s source and packs its files; `base` is the manifest's
/// directory. Sets `spec.files` to the one mount the tree will be.
///
/// # Errors
/// A source that cannot be read or fetched, bytes that do not match the digest, a file
/// pattern that matches nothing, or files that cannot be packed.
pub async fn parts(base: &Path, c: &mut SpinComponent) -> anyhow::Result<Parts> {
    let what = format!("component.{}", c.id);
    let component = match &c.source {
        SpinSource::Path(p) => {
            let path = base.join(p);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "{what}.source: cannot read {} (paths are relative to spin.toml)",
                    path.display()
                )
            })?;
            Some((path.display().to_string(), bytes))
        }
        SpinSource::Url { url, digest } => Some((url.clone(), fetch(&what, url, digest).await?)),
        SpinSource::Oci(_) => None,
        SpinSource::Content(_) => bail!("{what}.source: content of a published app in a spin.toml"),
    };
    let files = files(base, c)?;
    let tree = if files.is_empty() {
        None
    } else {
        c.app.spec.files = vec![FileMount {
            source: ComponentRef::Path("(the component's files)".into()),
            mount: "/".into(),
            mode: None,
        }];
        Some(
            shoal_blobs::trees::pack_files(&files)
                .map_err(|e| anyhow::anyhow!("{what}.files: {e}"))?,
        )
    };
    Ok(Parts { component, tree })
}

/// Every file component `c`'s `files` name, as (path in the tree, file on disk); `base` is
/// the manifest's directory.
///
/// # Errors
/// A pattern that matches nothing, or a file that cannot be read.
pub fn files(base: &Path, c: &SpinComponent) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    collect_files(
        base,
        &format!("component.{}", c.id),
        &c.files,
        &c.exclude_files,
    )
}

/// The largest component a `{ url, digest }` source may download, or `shoal push -f` pull
/// from a registry package.
pub const MAX_SOURCE_BYTES: u64 = 1 << 30;

/// Fetches `url` (HTTP or HTTPS, trusting Mozilla's roots and those in `SSL_CERT_FILE`) and
/// checks it is what `digest` names.
async fn fetch(what: &str, url: &str, digest: &Digest) -> anyhow::Result<Vec<u8>> {
    let fetcher = shoal_blobs::Fetcher::from_env(MAX_SOURCE_BYTES)
        .with_context(|| format!("{what}.source: {url}: SSL_CERT_FILE"))?;
    fetcher.fetch(url, digest).await.map_err(|e| match e {
        shoal_blobs::FetchError::Digest { .. } => {
            anyhow::anyhow!("{what}.source: {e}; nothing was applied")
        }
        e => anyhow::anyhow!("{what}.source: {e}"),
    })
}

/// Every file `files` names, as (path in the tree, file on disk), without the excluded ones.
fn collect_files(
    base: &Path,
    what: &str,
    files: &[SpinFiles],
    exclude: &[String],
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let excluded = exclude
        .iter()
        .map(|p| glob::Pattern::new(p).with_context(|| format!("{what}.exclude_files: {p}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keep = |rel: &Path| !excluded.iter().any(|p| p.matches_path(rel));
    let mut out = Vec::new();
    for (i, entry) in files.iter().enumerate() {
        let field = format!("{what}.files[{i}]");
        match entry {
            SpinFiles::Pattern(pattern) => {
                let dir = base
                    .to_str()
                    .with_context(|| format!("{field}: not UTF-8"))?;
                // The directory is literal, whatever characters its name holds.
                let full = Path::new(&glob::Pattern::escape(dir)).join(pattern);
                let full = full
                    .to_str()
                    .with_context(|| format!("{field}: not UTF-8"))?;
                let mut matched = false;
                for hit in glob::glob(full).with_context(|| format!("{field}: {pattern}"))? {
                    let hit = hit.with_context(|| format!("{field}: {pattern}"))?;
                    let rel = hit.strip_prefix(base).unwrap_or(&hit).to_path_buf();
                    matched = true;
                    add(&mut out, &hit, &rel, &keep)?;
                }
                if !matched {
                    bail!(
                        "{field}: \"{pattern}\" matches no file (patterns are relative to spin.toml)"
                    );
                }
            }
            SpinFiles::Mapping {
                source,
                destination,
            } => {
                let full = base.join(source);
                if !full.exists() {
                    bail!("{field}.source: {} does not exist", full.display());
                }
                let dest = PathBuf::from(destination.trim_start_matches('/'));
                add(&mut out, &full, &dest, &|_: &Path| true)?;
            }
            SpinFiles::Content { path, .. } => {
                bail!("{field}: {path}: content of a published app in a spin.toml")
            }
        }
    }
    Ok(out)
}

/// Adds the file `full` at `rel`, or every file under the directory `full` below `rel`.
fn add(
    out: &mut Vec<(PathBuf, PathBuf)>,
    full: &Path,
    rel: &Path,
    keep: &dyn Fn(&Path) -> bool,
) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(full).with_context(|| full.display().to_string())?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(full)
            .with_context(|| full.display().to_string())?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        entries.sort();
        for name in entries {
            add(out, &full.join(&name), &rel.join(&name), keep)?;
        }
    } else if keep(rel) {
        out.push((rel.to_path_buf(), full.to_path_buf()));
    }
    Ok(())
}
