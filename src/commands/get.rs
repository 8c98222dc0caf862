//! `shoal get apps`, `shoal get app NAME [-o json|yaml]`.

use super::Kind;
use crate::output::{Format, age, print_serialized, table};
use crate::settings::Global;
use shoal_api::App;

/// Arguments of `shoal get`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind to list (`app` or `apps`).
    pub kind: Kind,
    /// Show only this object.
    pub name: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

/// Runs `shoal get`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client();
    let Kind::App = args.kind;
    let apps = match &args.name {
        Some(name) => {
            let app = client.get_app(&g.namespace, name).await?;
            if args.output != Format::Table {
                return print_serialized(&app, args.output);
            }
            vec![app]
        }
        None => client.list_apps(&g.namespace).await?,
    };
    if args.output != Format::Table {
        return print_serialized(&apps, args.output);
    }
    if apps.is_empty() {
        eprintln!("No apps found in namespace {}.", g.namespace);
        return Ok(());
    }
    print!("{}", app_table(&apps, chrono::Utc::now()));
    Ok(())
}

/// NAME, STATUS, REVISION, ROUTES, AGE.
pub fn app_table(apps: &[App], now: chrono::DateTime<chrono::Utc>) -> String {
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            let revision = match a.status.serving_generation {
                0 => "-".to_string(),
                g => g.to_string(),
            };
            let routes = a
                .spec
                .routes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            vec![
                a.metadata.name.clone(),
                a.status.phase.to_string(),
                revision,
                routes,
                age(a.metadata.creation_timestamp, now),
            ]
        })
        .collect();
    table(&["NAME", "STATUS", "REVISION", "ROUTES", "AGE"], &rows)
}
