//! `shoal push FILE oci://REGISTRY/REPO[:TAG]`: publishes a component to a registry as a CNCF
//! Wasm artifact and prints the reference pinned to the manifest digest.

use anyhow::{Context, bail};
use shoal_api::{ComponentRef, WasmKind};
use shoal_oci::Registry;
use std::path::PathBuf;

/// Arguments of `shoal push`.
#[derive(clap::Args)]
pub struct Args {
    /// The component (`.wasm`) to publish.
    pub file: PathBuf,
    /// Where: `oci://REGISTRY/REPOSITORY[:TAG]` (the tag defaults to `latest`).
    pub reference: String,
    /// A registry reached over plain HTTP although it is not on loopback; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

/// Runs `shoal push`.
pub async fn run(g: &crate::settings::Global, args: Args) -> anyhow::Result<()> {
    let ComponentRef::Oci(reference) =
        ComponentRef::parse(&args.reference).map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        bail!(
            "'{}' is not a registry reference; use oci://REGISTRY/REPOSITORY[:TAG]",
            args.reference
        );
    };
    if reference.digest.is_some() {
        bail!("{reference}: push to a tag; the digest is what the push prints");
    }
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if WasmKind::of(&bytes) != Some(WasmKind::Component) {
        bail!(
            "{} is not a WebAssembly component; shoal push publishes components",
            args.file.display()
        );
    }
    // A push reads only the registry's short answers; no download limit applies.
    let http = shoal_blobs::Fetcher::from_env(1 << 20)?;
    let credentials = crate::credentials::for_registry(&g.data_dir(), &reference.registry)?;
    let registry = Registry::new(&reference.registry, credentials, &args.insecure, http);
    let digest = shoal_oci::push(&registry, &reference, &bytes).await?;
    let mut pinned = reference;
    pinned.digest = Some(digest);
    println!("{pinned}");
    Ok(())
}
