//! `shoal apply -f FILE|DIR|-`: validate every document, upload local components, apply. A
//! Spin application's `spin.toml` (or a directory holding one) is applied as its Apps.

use crate::settings::Global;
use anyhow::{Context, bail};
use shoal_api::{App, ApplyResponse, ApplyResult, ComponentRef, Job, Namespace, WasmKind};
use shoal_client::Client;
use shoal_manifest::Object;
use shoal_manifest::spin::{SpinApp, Values};
use std::path::{Path, PathBuf};

/// Arguments of `shoal apply`.
#[derive(clap::Args)]
pub struct Args {
    /// Manifest file, directory of .yaml/.yml files, or `-` for standard input; a Spin
    /// application's spin.toml or its directory; repeatable.
    #[arg(short = 'f', long = "filename", required_unless_present = "spin")]
    pub files: Vec<String>,
    /// A Spin application published to a registry (`spin registry push`, `shoal push -f
    /// spin.toml`): `oci://REGISTRY/REPOSITORY[:TAG]`; repeatable.
    #[arg(long = "spin", value_name = "OCI_REFERENCE")]
    pub spin: Vec<String>,
    /// Wait until every applied App serves its new spec (compiled and ready on its nodes).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 30s, 2m).
    #[arg(long, default_value = "120s", value_parser = shoal_api::DurationSpec::parse)]
    pub timeout: shoal_api::DurationSpec,
    /// A Spin application variable's value, as `spin up --variable` takes it (else
    /// `SPIN_VARIABLE_NAME`, else its default); repeatable.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
}

/// Runs `shoal apply`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client()?;
    let values = super::spin::values(&args.variables, false)?;
    let sources = Sources {
        files: &args.files,
        spin: &args.spin,
    };
    let applied = apply_all(&client, sources, &g.namespace, &values).await?;
    for a in &applied {
        println!("{}", result_line(a));
    }
    if args.wait {
        let deadline = tokio::time::Instant::now() + args.timeout.get();
        for a in &applied {
            if let Applied::App(app) = a {
                let (ns, name) = (&app.object.metadata.namespace, &app.object.metadata.name);
                super::wait::app_ready(&client, ns, name, deadline, &args.timeout).await?;
                println!("app/{name} ready");
            }
        }
    }
    Ok(())
}

/// What `shoal apply` reads: manifest paths and published Spin applications.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// `-f`: files, directories, `-`.
    pub files: &'a [String],
    /// `--spin`: OCI references of Spin applications.
    pub spin: &'a [String],
}

/// What the server stored for one object of a manifest.
#[allow(
    clippy::large_enum_variant,
    reason = "one per applied object, printed and dropped; boxing buys nothing"
)]
pub enum Applied {
    /// An App.
    App(ApplyResponse<App>),
    /// A Job.
    Job(ApplyResponse<Job>),
    /// A Namespace.
    Namespace(ApplyResponse<Namespace>),
}

/// kubectl's line for one applied object: `app/NAME created|configured|unchanged`.
pub fn result_line(applied: &Applied) -> String {
    let (kind, name, result) = match applied {
        Applied::App(a) => ("app", &a.object.metadata.name, a.result),
        Applied::Job(j) => ("job", &j.object.metadata.name, j.result),
        Applied::Namespace(n) => ("namespace", &n.object.metadata.name, n.result),
    };
    let word = match result {
        ApplyResult::Created => "created",
        ApplyResult::Configured => "configured",
        ApplyResult::Unchanged => "unchanged",
    };
    format!("{kind}/{name} {word}")
}

/// One parsed manifest: where it came from (for relative paths) and its objects.
pub struct Manifest {
    /// The directory relative component paths are resolved against.
    pub base: PathBuf,
    /// The objects it holds, in order.
    pub objects: Vec<Object>,
    /// For a Spin application, what the CLI gathers for its Apps (which `objects` holds).
    pub spin: Option<SpinApp>,
}

/// Reads and parses every manifest named by `files`; any error fails the whole set. A Spin
/// manifest's variables are read with `values`.
pub fn read_manifests(
    files: &[String],
    namespace: &str,
    values: &Values,
) -> anyhow::Result<Vec<Manifest>> {
    let mut paths = Vec::new();
    let mut manifests = Vec::new();
    for f in files {
        if f == "-" {
            paths.push(None);
            continue;
        }
        let p = PathBuf::from(f);
        if let Some((file, text)) = super::spin::manifest_in(&p) {
            let spin = super::spin::read(&file, &text, values, namespace)?;
            manifests.push(Manifest {
                base: file.parent().map(Path::to_path_buf).unwrap_or_default(),
                objects: spin
                    .components
                    .iter()
                    .map(|c| Object::App(c.app.clone()))
                    .collect(),
                spin: Some(spin),
            });
            continue;
        }
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .with_context(|| format!("{f}: cannot read directory"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            entries.sort();
            if entries.is_empty() {
                bail!("{f}: directory has no .yaml or .yml files and no spin.toml");
            }
            paths.extend(entries.into_iter().map(Some));
        } else {
            paths.push(Some(p));
        }
    }
    for path in paths {
        let (name, text, base) = match path {
            None => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("cannot read standard input")?;
                if shoal_manifest::spin::is_spin_manifest(&text) {
                    bail!(
                        "-: this is a Spin manifest, whose sources and files are relative to it; give its path: shoal apply -f spin.toml"
                    );
                }
                ("-".to_string(), text, std::env::current_dir()?)
            }
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("{}: cannot read", p.display()))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (p.display().to_string(), text, base)
            }
        };
        let mut objects = shoal_manifest::parse(&name, &text)?;
        for object in &mut objects {
            let meta = match object {
                Object::App(app) => &mut app.metadata,
                Object::Job(job) => &mut job.metadata,
                Object::Namespace(_) => continue,
            };
            if meta.namespace == shoal_api::DEFAULT_NAMESPACE {
                meta.namespace = namespace.to_string();
            }
        }
        manifests.push(Manifest {
            base,
            objects,
            spin: None,
        });
    }
    Ok(manifests)
}

/// Validates every manifest in `files` first, then uploads and applies; returns what the
/// server stored.
pub async fn apply_paths(
    client: &Client,
    files: &[String],
    namespace: &str,
    values: &Values,
) -> anyhow::Result<Vec<Applied>> {
    let sources = Sources { files, spin: &[] };
    apply_all(client, sources, namespace, values).await
}

/// Validates every local manifest first, then has the server pull what registries hold,
/// uploads what is local, and applies; returns what the server stored.
pub async fn apply_all(
    client: &Client,
    sources: Sources<'_>,
    namespace: &str,
    values: &Values,
) -> anyhow::Result<Vec<Applied>> {
    let manifests = read_manifests(sources.files, namespace, values)?;
    // Resolve every local component before touching the server: a bad path anywhere applies nothing.
    let mut pending = Vec::new();
    let mut namespaces = Vec::new();
    for m in manifests {
        if let Some(spin) = m.spin {
            for mut c in spin.components {
                let parts = super::spin::parts(&m.base, &mut c).await?;
                if let Some((name, bytes)) = &parts.component {
                    let what = format!("component.{}.source", c.id);
                    check_wasm(&what, name, bytes, Needs::HttpComponent)?;
                }
                let object = format!("component.{}", c.id);
                let local = LocalParts {
                    component: parts.component.map(|(n, b)| (PathBuf::from(n), b)),
                    trees: parts.tree.map(|t| (0, t)).into_iter().collect(),
                    dependencies: local_dependencies(&m.base, &object, &c.app.spec.dependencies)?,
                };
                pending.push((Object::App(c.app), local));
            }
            continue;
        }
        for object in m.objects {
            let local = match &object {
                Object::App(app) => local_parts(
                    &m.base,
                    &format!("app/{}", app.metadata.name),
                    &app.spec.component,
                    &app.spec.files,
                    &app.spec.dependencies,
                    Needs::HttpComponent,
                )?,
                Object::Job(job) => local_parts(
                    &m.base,
                    &format!("job/{}", job.metadata.name),
                    &job.spec.component,
                    &job.spec.files,
                    &Default::default(),
                    Needs::Command,
                )?,
                Object::Namespace(ns) => {
                    namespaces.push(ns.clone());
                    continue;
                }
            };
            pending.push((object, local));
        }
    }
    for reference in sources.spin {
        for app in super::transfer::pull_spin(client, reference, namespace, values).await? {
            let local = LocalParts {
                component: None,
                trees: Vec::new(),
                dependencies: Vec::new(),
            };
            pending.push((Object::App(app), local));
        }
    }
    // Namespaces first: what the rest is applied into.
    let mut applied = Vec::new();
    for ns in namespaces {
        applied.push(Applied::Namespace(client.apply_namespace(&ns).await?));
    }
    // Registries next: each component the server pulls, with progress, pinned to its digest.
    for (object, _) in &mut pending {
        let (what, component) = match object {
            Object::App(app) => (
                format!("app/{}", app.metadata.name),
                &mut app.spec.component,
            ),
            Object::Job(job) => (
                format!("job/{}", job.metadata.name),
                &mut job.spec.component,
            ),
            Object::Namespace(_) => continue,
        };
        if let ComponentRef::Oci(reference) = component {
            let pinned = super::transfer::pull_component(client, reference)
                .await
                .with_context(|| format!("{what}: spec.component"))?;
            *component = ComponentRef::Oci(pinned);
        }
        let Object::App(app) = object else { continue };
        for (name, d) in &mut app.spec.dependencies {
            if let Some(ComponentRef::Oci(reference)) = &mut d.component {
                let pinned = super::transfer::pull_component(client, reference)
                    .await
                    .with_context(|| format!("{what}: spec.dependencies[\"{name}\"].component"))?;
                d.component = Some(ComponentRef::Oci(pinned));
            }
        }
    }
    let mut limit = None;
    for (object, local) in pending {
        let what = match &object {
            Object::App(app) => format!("app/{}", app.metadata.name),
            Object::Job(job) => format!("job/{}", job.metadata.name),
            Object::Namespace(_) => continue,
        };
        let component = match local.component {
            Some((path, bytes)) => Some(
                super::transfer::upload(client, bytes, &mut limit)
                    .await
                    .with_context(|| {
                        format!("{what}: spec.component: uploading {}", path.display())
                    })?,
            ),
            None => None,
        };
        match object {
            Object::App(mut app) => {
                if let Some(digest) = component {
                    app.spec.component = digest.into();
                }
                for (i, tree) in local.trees {
                    let digest = super::transfer::upload(client, tree, &mut limit)
                        .await
                        .with_context(|| format!("{what}: spec.files[{i}].source: uploading"))?;
                    app.spec.files[i].source = digest.into();
                }
                for (name, bytes) in local.dependencies {
                    let digest = super::transfer::upload(client, bytes, &mut limit)
                        .await
                        .with_context(|| {
                            format!("{what}: spec.dependencies[\"{name}\"].component: uploading")
                        })?;
                    if let Some(d) = app.spec.dependencies.get_mut(&name) {
                        d.component = Some(digest.into());
                    }
                }
                applied.push(Applied::App(client.apply_app(&app).await?));
            }
            Object::Job(mut job) => {
                if let Some(digest) = component {
                    job.spec.component = digest.into();
                }
                for (i, tree) in local.trees {
                    let digest = super::transfer::upload(client, tree, &mut limit)
                        .await
                        .with_context(|| format!("{what}: spec.files[{i}].source: uploading"))?;
                    job.spec.files[i].source = digest.into();
                }
                applied.push(Applied::Job(client.apply_job(&job).await?));
            }
            Object::Namespace(_) => {}
        }
    }
    Ok(applied)
}

/// What an object needs uploaded: its component (unless a digest or an image), its file
/// trees and its dependencies' local components (by name).
struct LocalParts {
    component: Option<(PathBuf, Vec<u8>)>,
    trees: Vec<(usize, Vec<u8>)>,
    dependencies: Vec<(String, Vec<u8>)>,
}

/// Reads and checks everything local `object` refers to, before anything is sent.
fn local_parts(
    base: &Path,
    object: &str,
    component: &ComponentRef,
    files: &[shoal_api::FileMount],
    dependencies: &std::collections::BTreeMap<String, shoal_api::Dependency>,
    needs: Needs,
) -> anyhow::Result<LocalParts> {
    let mut trees = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let ComponentRef::Path(source) = &f.source else {
            continue;
        };
        let dir = base.join(source);
        let packed = shoal_blobs::trees::pack_dir(&dir)
            .map_err(|e| anyhow::anyhow!("{object}: spec.files[{i}].source: {e}"))?;
        trees.push((i, packed));
    }
    Ok(LocalParts {
        component: read_component(base, &format!("{object}: spec.component"), component, needs)?,
        trees,
        dependencies: local_dependencies(base, object, dependencies)?,
    })
}

/// The dependencies of `object` whose component is a local file, read and checked.
fn local_dependencies(
    base: &Path,
    object: &str,
    dependencies: &std::collections::BTreeMap<String, shoal_api::Dependency>,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut local = Vec::new();
    for (name, d) in dependencies {
        let Some(c) = &d.component else { continue };
        // With `app`, the server sets the component (a stored spec applied again).
        if d.app.is_some() {
            continue;
        }
        let what = format!("{object}: spec.dependencies[\"{name}\"].component");
        if let Some((_, bytes)) = read_component(base, &what, c, Needs::Component)? {
            local.push((name.clone(), bytes));
        }
    }
    Ok(local)
}

/// What kind of WebAssembly an object's `spec.component` must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// An App: a component.
    HttpComponent,
    /// A Job: a command component or a core module.
    Command,
    /// An App's dependency: any component.
    Component,
}

/// A local component path, read and checked; `None` for a digest or an image the server
/// resolves.
pub(crate) fn read_component(
    base: &Path,
    what: &str,
    c: &ComponentRef,
    needs: Needs,
) -> anyhow::Result<Option<(PathBuf, Vec<u8>)>> {
    let ComponentRef::Path(c) = c else {
        return Ok(None);
    };
    let path = base.join(c);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{what}: {c} does not exist (looked for {}); paths are relative to the manifest",
                path.display()
            )
        }
        Err(e) => bail!("{what}: cannot read {}: {e}", path.display()),
    };
    check_wasm(what, c, &bytes, needs)?;
    Ok(Some((path, bytes)))
}

/// Checks that `bytes` (the file or URL `name`, for field `what`) are what `needs` says.
fn check_wasm(what: &str, name: &str, bytes: &[u8], needs: Needs) -> anyhow::Result<()> {
    match WasmKind::of(bytes) {
        None => bail!(
            "{what}: {name} is not a WebAssembly file (it does not start with the \\0asm magic bytes)"
        ),
        Some(WasmKind::Module) if needs == Needs::HttpComponent => bail!(
            "{what}: {name} is a core WebAssembly module, not a component; an App needs a wasi:http component"
        ),
        Some(WasmKind::Module) if needs == Needs::Component => bail!(
            "{what}: {name} is a core WebAssembly module, not a component; a dependency must be a component that exports what it satisfies"
        ),
        Some(_) => Ok(()),
    }
}
