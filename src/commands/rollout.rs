//! `shoal rollout status|history|undo app NAME`: follow, list and roll back an App's revisions.

use super::RolloutKind as Kind;
use crate::output::{age, table};
use crate::settings::Global;
use anyhow::{Context, bail};
use shoal_api::{DurationSpec, Revision};

/// Arguments of `shoal rollout`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with the rollout.
#[derive(clap::Subcommand)]
pub enum Action {
    /// Wait until the latest revision serves (exit 0) or has failed (exit 1).
    Status {
        /// Kind of the object (`app`).
        kind: Kind,
        /// Name of the app.
        name: String,
        /// Give up after this long (e.g. 30s, 2m).
        #[arg(long, default_value = "120s", value_parser = DurationSpec::parse)]
        timeout: DurationSpec,
    },
    /// List the app's revisions (the last 10 are kept).
    History {
        /// Kind of the object (`app`).
        kind: Kind,
        /// Name of the app.
        name: String,
    },
    /// Apply an earlier revision's spec again, as a new revision.
    Undo {
        /// Kind of the object (`app`).
        kind: Kind,
        /// Name of the app.
        name: String,
        /// The revision to return to; default: the one before the latest.
        #[arg(long)]
        to_revision: Option<u64>,
    },
}

/// Runs `shoal rollout`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Status {
            kind,
            name,
            timeout,
        } => {
            let wait = super::wait::Args {
                kind: match kind {
                    Kind::App => super::Kind::App,
                },
                name: name.clone(),
                until: super::wait::Until::Ready,
                timeout,
            };
            super::wait::run(g, wait).await
        }
        Action::History {
            kind: Kind::App,
            name,
        } => {
            let client = g.client()?;
            let app = client.get_app(&g.namespace, &name).await?;
            let revisions = client.revisions(&g.namespace, &name).await?;
            print!(
                "{}",
                history_table(
                    &revisions,
                    app.status.serving_generation,
                    chrono::Utc::now()
                )
            );
            Ok(())
        }
        Action::Undo {
            kind: Kind::App,
            name,
            to_revision,
        } => {
            let client = g.client()?;
            let mut app = client.get_app(&g.namespace, &name).await?;
            let revisions = client.revisions(&g.namespace, &name).await?;
            let target = match to_revision {
                Some(n) => revisions.iter().find(|r| r.revision == n).with_context(|| {
                    format!(
                        "app/{name} has no revision {n}; `shoal rollout history app {name}` lists the kept ones"
                    )
                })?,
                None => match revisions.iter().rev().find(|r| r.revision < app.metadata.generation) {
                    Some(r) => r,
                    None => bail!("app/{name} has no earlier revision to return to"),
                },
            };
            if target.spec == app.spec {
                println!(
                    "app/{name} already runs revision {}'s spec; nothing to do",
                    target.revision
                );
                return Ok(());
            }
            let from = target.revision;
            app.spec = target.spec.clone();
            let applied = client.roll_back(&app, from).await?;
            println!(
                "app/{name} rolled back to revision {from} (as revision {})",
                applied.object.metadata.generation
            );
            Ok(())
        }
    }
}

/// REVISION, COMPONENT, AGE, and which one serves.
pub fn history_table(
    revisions: &[Revision],
    serving: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            vec![
                r.revision.to_string(),
                shoal_api::short_digest(&r.spec.component.to_string()).to_string(),
                age(r.metadata.creation_timestamp, now),
                if r.revision == serving { "serving" } else { "" }.to_string(),
            ]
        })
        .collect();
    table(&["REVISION", "COMPONENT", "AGE", "STATUS"], &rows)
}
