//! `shoal push FILE oci://REGISTRY/REPO[:TAG]`: publishes a component to a registry as a CNCF
//! Wasm artifact; `shoal push -f spin.toml oci://…` publishes a Spin application in `spin
//! registry push`'s format. Either prints the reference pinned to the manifest digest.

use super::apply::Needs;
use crate::progress::Transfers;
use anyhow::{Context, bail};
use shoal_api::{ComponentRef, OciRef, WasmKind};
use shoal_manifest::spin::SpinSource;
use shoal_manifest::spin::locked::{ContentPath, ContentRef, INLINE_MAX, LockedDependency};
use shoal_oci::{Registry, SpinLayer, media};
use std::path::{Path, PathBuf};

/// Arguments of `shoal push`.
#[derive(clap::Args)]
pub struct Args {
    /// `FILE oci://…` (a component, `.wasm`), or with `-f` just `oci://…`: where, as
    /// `oci://REGISTRY/REPOSITORY[:TAG]` (the tag defaults to `latest`).
    #[arg(num_args = 1..=2, required = true, value_name = "[FILE] REFERENCE")]
    pub args: Vec<String>,
    /// A Spin application to publish instead: its spin.toml, or a directory holding one.
    #[arg(short = 'f', long = "filename", value_name = "SPIN_TOML")]
    pub spin: Option<PathBuf>,
    /// A registry reached over plain HTTP although it is not on loopback; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

/// Runs `shoal push`.
pub async fn run(g: &crate::settings::Global, args: Args) -> anyhow::Result<()> {
    let (file, reference) = match (args.args.as_slice(), &args.spin) {
        ([file, reference], None) => (Some(PathBuf::from(file)), reference),
        ([reference], Some(_)) => (None, reference),
        ([_], None) => bail!("give the component to push: shoal push FILE oci://…"),
        (_, Some(_)) => bail!("with -f, give only the reference: shoal push -f spin.toml oci://…"),
        _ => unreachable!("clap takes one or two"),
    };
    let reference = target(reference)?;
    // A push reads only the registry's short answers; no download limit applies.
    let http = shoal_blobs::Fetcher::from_env(1 << 20)?;
    let credentials = crate::credentials::for_registry(&g.data_dir(), &reference.registry)?;
    let registry = Registry::new(&reference.registry, credentials, &args.insecure, http);
    let bars: shoal_oci::progress::Sink = Transfers::new("pushing");
    let digest = match (file, &args.spin) {
        (Some(file), _) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if WasmKind::of(&bytes) != Some(WasmKind::Component) {
                bail!(
                    "{} is not a WebAssembly component; shoal push publishes components",
                    file.display()
                );
            }
            shoal_oci::push(&registry, &reference, &bytes, &bars).await?
        }
        (None, Some(spin)) => {
            let (locked, layers) = spin_app(g, spin, &args.insecure).await?;
            shoal_oci::push_spin(&registry, &reference, locked, layers, &bars).await?
        }
        (None, None) => unreachable!("checked above"),
    };
    let mut pinned = reference;
    pinned.digest = Some(digest);
    println!("{pinned}");
    Ok(())
}

/// The reference pushed to: an `oci://` one with a tag (or none), not a digest.
fn target(text: &str) -> anyhow::Result<OciRef> {
    let ComponentRef::Oci(reference) =
        ComponentRef::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        bail!("'{text}' is not a registry reference; use oci://REGISTRY/REPOSITORY[:TAG]");
    };
    if reference.digest.is_some() {
        bail!("{reference}: push to a tag; the digest is what the push prints");
    }
    Ok(reference)
}

/// A Spin application's locked app (JSON) and layers: each component's Wasm and its
/// dependencies' (read from their paths, or pulled from the registries their packages name:
/// what is published runs without them, as with `spin registry push`), each file over
/// [`INLINE_MAX`] bytes (smaller ones are inline in the locked app, as Spin does).
async fn spin_app(
    g: &crate::settings::Global,
    path: &Path,
    insecure: &[String],
) -> anyhow::Result<(Vec<u8>, Vec<SpinLayer>)> {
    let Some((file, text)) = super::spin::manifest_in(path) else {
        bail!(
            "{}: not a Spin manifest (a spin.toml, or a directory holding one)",
            path.display()
        );
    };
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    // Read as an apply reads it, so what is published is what Shoal runs.
    let values = super::spin::values(&[], true)?;
    let app = super::spin::read(&file, &text, &values, shoal_api::DEFAULT_NAMESPACE)?;
    let mut locked = shoal_manifest::spin::locked::lock(&file.display().to_string(), &text)?;
    let mut layers = Vec::new();
    for mut c in app.components {
        let what = format!("component.{}", c.id);
        let entry = locked
            .components
            .iter_mut()
            .find(|l| l.id == c.id)
            .with_context(|| format!("{what}: not in the locked app"))?;
        let files = super::spin::files(&base, &c)?;
        let parts = super::spin::parts(&base, &mut c).await?;
        let (name, wasm) = match (parts.component, &c.source) {
            (Some(read), _) => read,
            (None, SpinSource::Oci(r)) => {
                let wasm = pulled(g, insecure, &format!("{what}.source"), r).await?;
                (r.to_string(), wasm)
            }
            (None, _) => bail!("{what}.source: names no component"),
        };
        if WasmKind::of(&wasm) != Some(WasmKind::Component) {
            bail!("{what}.source: {name} is not a WebAssembly component");
        }
        entry.source.content = ContentRef::of(&wasm);
        layers.push(SpinLayer {
            media_type: media::SPIN_WASM,
            bytes: wasm,
        });
        for (name, d) in &c.app.spec.dependencies {
            let field = format!("{what}.dependencies.\"{name}\"");
            let wasm = match &d.component {
                Some(c @ ComponentRef::Path(_)) => {
                    // Read and checked as `shoal apply -f` reads a dependency.
                    let read = super::apply::read_component(&base, &field, c, Needs::Component)?;
                    read.map(|(_, wasm)| wasm).expect("a path is read")
                }
                Some(ComponentRef::Oci(r)) => {
                    let wasm = pulled(g, insecure, &field, r).await?;
                    if WasmKind::of(&wasm) != Some(WasmKind::Component) {
                        bail!("{field}: {r} is not a WebAssembly component");
                    }
                    wasm
                }
                _ => bail!("{field}: names no component"),
            };
            let dependency = LockedDependency::of(&wasm, d.export.clone(), d.inherit_capabilities);
            entry.dependencies.insert(name.clone(), dependency);
            layers.push(SpinLayer {
                media_type: media::SPIN_WASM,
                bytes: wasm,
            });
        }
        for (rel, full) in files {
            let bytes = std::fs::read(&full)
                .with_context(|| format!("{what}.files: {}", full.display()))?;
            entry.files.push(ContentPath {
                content: ContentRef::of(&bytes),
                path: portable(&rel),
            });
            if bytes.len() > INLINE_MAX {
                layers.push(SpinLayer {
                    media_type: media::SPIN_DATA,
                    bytes,
                });
            }
        }
    }
    // Components no HTTP trigger serves are not published: Shoal could not run them.
    let served: Vec<String> = locked
        .components
        .iter()
        .filter(|c| c.source.content.digest.is_some())
        .map(|c| c.id.clone())
        .collect();
    locked.components.retain(|c| served.contains(&c.id));
    Ok((serde_json::to_vec(&locked)?, layers))
}

/// The component registry package `reference` names, pulled for `field` (with the
/// credentials `shoal login` keeps for its registry), its download drawn as a bar.
async fn pulled(
    g: &crate::settings::Global,
    insecure: &[String],
    field: &str,
    reference: &OciRef,
) -> anyhow::Result<Vec<u8>> {
    let max = super::spin::MAX_SOURCE_BYTES;
    let http = shoal_blobs::Fetcher::from_env(max)?;
    let credentials = crate::credentials::for_registry(&g.data_dir(), &reference.registry)?;
    let registry = Registry::new(&reference.registry, credentials, insecure, http);
    let bars: shoal_oci::progress::Sink = Transfers::new("pulling");
    let pulled = shoal_oci::pull_showing(&registry, reference, max, &bars)
        .await
        .map_err(|e| anyhow::anyhow!("{field}: {reference}: {e}"))?;
    Ok(pulled.component)
}

/// A path in the tree with `/` separators, as registries carry them.
fn portable(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
