//! `shoal delete app NAME` and `shoal delete -f FILE`.

use super::Kind;
use crate::settings::Global;
use anyhow::bail;
use shoal_manifest::Object;

/// Arguments of `shoal delete`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind of the objects to delete.
    pub kind: Option<Kind>,
    /// Names of the objects.
    pub names: Vec<String>,
    /// Delete the objects a manifest describes instead; repeatable.
    #[arg(short = 'f', long = "filename", conflicts_with_all = ["kind", "names"])]
    pub files: Vec<String>,
}

/// Runs `shoal delete`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client();
    let mut targets = Vec::new();
    if args.files.is_empty() {
        if args.kind.is_none() || args.names.is_empty() {
            bail!("name what to delete: `shoal delete app NAME…` or `shoal delete -f FILE`");
        }
        targets.extend(args.names.iter().map(|n| (g.namespace.clone(), n.clone())));
    } else {
        for m in super::apply::read_manifests(&args.files, &g.namespace)? {
            for Object::App(app) in m.objects {
                targets.push((app.metadata.namespace, app.metadata.name));
            }
        }
    }
    let mut failed = 0;
    for (ns, name) in targets {
        match client.delete_app(&ns, &name).await {
            Ok(()) => println!("app/{name} deleted"),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} object(s) could not be deleted");
    }
    Ok(())
}
