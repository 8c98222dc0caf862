//! `shoal wait app NAME --for ready`, `shoal wait job NAME --for complete`: block until an
//! object reaches a condition (or can no longer reach it).

use super::Kind;
use crate::settings::Global;
use anyhow::bail;
use shoal_api::{DurationSpec, JobPhase, Phase};

/// What to wait for.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The latest generation serves.
    Ready,
    /// The latest generation failed (an app), or the latest run failed (a job).
    Failed,
    /// The latest run succeeded (a job).
    Complete,
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
    match (args.kind, args.until) {
        (Kind::Job, Until::Ready) => {
            bail!("jobs run to an end: use --for complete, --for failed or --for delete")
        }
        (Kind::App, Until::Complete) => {
            bail!("apps serve until deleted: use --for ready, --for failed or --for delete")
        }
        (Kind::Job, _) => return wait_job(&g, &args, deadline).await,
        (Kind::App, _) => {}
    }
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

/// Waits until the job's latest run (of its current spec) finished as `args.until` asks, or
/// the job is gone.
async fn wait_job(g: &Global, args: &Args, deadline: tokio::time::Instant) -> anyhow::Result<()> {
    let client = g.client();
    let name = &args.name;
    loop {
        let last = match client.get_job(&g.namespace, name).await {
            Err(e) if e.is_not_found() && args.until == Until::Delete => {
                println!("job/{name} deleted");
                return Ok(());
            }
            Err(e) if !e.is_not_found() => return Err(e.into()),
            Err(_) => "not found".to_string(),
            Ok(job) => {
                let latest = job
                    .status
                    .latest()
                    .filter(|r| r.generation == job.metadata.generation);
                match (args.until, latest.map(|r| r.phase)) {
                    (Until::Complete, Some(JobPhase::Succeeded)) => {
                        println!("job/{name} complete");
                        return Ok(());
                    }
                    (Until::Failed, Some(JobPhase::Failed)) => {
                        println!("job/{name} failed");
                        return Ok(());
                    }
                    (Until::Complete, Some(JobPhase::Failed)) => {
                        let run = latest.expect("matched Some");
                        bail!(
                            "job/{name} run {} failed: {}",
                            run.number,
                            run.message.clone().unwrap_or_default()
                        )
                    }
                    (_, Some(phase)) => {
                        format!("run {} {phase}", latest.expect("matched Some").number)
                    }
                    (_, None) => "no run yet".into(),
                }
            }
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "timed out after {} waiting for job/{name}; last seen: {last}",
                args.timeout
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
