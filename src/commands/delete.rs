//! `shoal delete app|job|node|namespace|token NAME` and `shoal delete -f FILE`.

use super::DeleteKind as Kind;
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
    let client = g.client()?;
    let mut targets = Vec::new();
    if args.files.is_empty() {
        let (Some(kind), false) = (args.kind, args.names.is_empty()) else {
            bail!(
                "name what to delete: `shoal delete app|job|node|namespace|token NAME…` or `shoal delete -f FILE`"
            );
        };
        targets.extend(
            args.names
                .iter()
                .map(|n| (kind, g.namespace.clone(), n.clone())),
        );
    } else {
        let values = super::spin::values(&[], true)?;
        for m in super::apply::read_manifests(&args.files, &g.namespace, &values)? {
            for object in m.objects {
                targets.push(match object {
                    Object::App(a) => (Kind::App, a.metadata.namespace, a.metadata.name),
                    Object::Job(j) => (Kind::Job, j.metadata.namespace, j.metadata.name),
                    Object::Namespace(n) => {
                        (Kind::Namespace, n.metadata.namespace, n.metadata.name)
                    }
                });
            }
        }
    }
    let mut failed = 0;
    for (kind, ns, name) in targets {
        let deleted = match kind {
            Kind::App => client.delete_app(&ns, &name).await,
            Kind::Job => client.delete_job(&ns, &name).await,
            Kind::Node => client.delete_node(&name).await,
            Kind::Namespace => client.delete_namespace(&name).await,
            Kind::Token => client.delete_token(&name).await,
        };
        match deleted {
            Ok(()) => println!("{}/{name} deleted", kind.noun()),
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
