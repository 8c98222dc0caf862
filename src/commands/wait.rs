//! `shoal wait app NAME --for ready`: block until the App's latest spec is Ready (or Failed).

use super::Kind;
use crate::settings::Global;
use anyhow::bail;
use shoal_api::{DurationSpec, Phase};

/// What to wait for.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The latest generation serves.
    Ready,
    /// The latest generation failed.
    Failed,
    /// The object no longer exists.
    Delete,
}

/// Arguments of `shoal wait`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind of the object.
    pub kind: Kind,
    /// Name of the object.
    pub name: String,
    /// The condition to wait for.
    #[arg(long = "for", value_enum, default_value = "ready")]
    pub until: Until,
    /// Give up after this long (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = DurationSpec::parse)]
    pub timeout: DurationSpec,
}

/// Runs `shoal wait`; exits non-zero if the condition is not met in time, or can no longer be.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client();
    let deadline = tokio::time::Instant::now() + args.timeout.get();
    let mut last;
    loop {
        match (client.get_app(&g.namespace, &args.name).await, args.until) {
            (Err(e), Until::Delete) if e.is_not_found() => {
                println!("app/{} deleted", args.name);
                return Ok(());
            }
            (Err(e), _) if !e.is_not_found() => return Err(e.into()),
            (Err(_), _) => last = "not found".into(),
            (Ok(app), until) => {
                let current = app.status.observed_generation == app.metadata.generation;
                let phase = app.status.phase;
                match (until, current, phase) {
                    (Until::Ready, true, Phase::Ready) | (Until::Failed, true, Phase::Failed) => {
                        println!("app/{} {}", args.name, phase.to_string().to_lowercase());
                        return Ok(());
                    }
                    (Until::Ready, true, Phase::Failed) => {
                        bail!(
                            "app/{} failed: {}",
                            args.name,
                            app.status.message.unwrap_or_default()
                        )
                    }
                    _ => {
                        last = format!(
                            "{phase} (generation {}, observed {})",
                            app.metadata.generation, app.status.observed_generation
                        )
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "timed out after {} waiting for app/{}; last seen: {last}",
                args.timeout,
                args.name
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
