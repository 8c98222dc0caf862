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
    let client = g.client()?;
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
    let what = format!("app/{}", args.name);
    let phase = app_until(
        &client,
        &g.namespace,
        &args.name,
        args.until,
        deadline,
        &args.timeout,
    )
    .await?;
    match phase {
        None => println!("{what} deleted"),
        Some(phase) => println!("{what} {}", phase.to_string().to_lowercase()),
    }
    Ok(())
}

/// Waits until app `name` serves its latest generation (`shoal apply --wait`).
///
/// # Errors
/// The generation failed, or the deadline passed.
pub async fn app_ready(
    client: &shoal_client::Client,
    namespace: &str,
    name: &str,
    deadline: tokio::time::Instant,
    timeout: &DurationSpec,
) -> anyhow::Result<()> {
    app_until(client, namespace, name, Until::Ready, deadline, timeout)
        .await
        .map(|_| ())
}

/// Waits until app `name` reaches `until`, its state shown as it changes (see
/// `crate::progress::Wait`); returns the phase reached, `None` once deleted.
async fn app_until(
    client: &shoal_client::Client,
    namespace: &str,
    name: &str,
    until: Until,
    deadline: tokio::time::Instant,
    timeout: &DurationSpec,
) -> anyhow::Result<Option<Phase>> {
    let mut shown = crate::progress::Wait::new(&format!("app/{name}"));
    let mut last;
    loop {
        match (client.get_app(namespace, name).await, until) {
            (Err(e), Until::Delete) if e.is_not_found() => return Ok(None),
            (Err(e), _) if !e.is_not_found() => return Err(e.into()),
            (Err(_), _) => last = "not found".into(),
            (Ok(app), until) => {
                let current = app.status.observed_generation == app.metadata.generation;
                let phase = app.status.phase;
                match (until, current, phase) {
                    (Until::Ready, true, Phase::Ready) | (Until::Failed, true, Phase::Failed) => {
                        return Ok(Some(phase));
                    }
                    (Until::Ready, true, Phase::Failed) => {
                        bail!(
                            "app/{name} failed: {}",
                            app.status.message.unwrap_or_default()
                        )
                    }
                    _ => last = state_line(&app),
                }
            }
        }
        shown.update(&last);
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout} waiting for app/{name}; last seen: {last}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What an app is doing, for a wait: its phase, how far its nodes are, and its message.
fn state_line(app: &shoal_api::App) -> String {
    let generation = app.metadata.generation;
    let mut line = format!(
        "{} (generation {generation}, observed {})",
        app.status.phase, app.status.observed_generation
    );
    let nodes = &app.status.nodes;
    if !nodes.is_empty() {
        let ready = nodes
            .values()
            .filter(|n| n.generation == generation && n.phase == Phase::Ready)
            .count();
        line.push_str(&format!(", {ready}/{} nodes ready", nodes.len()));
    }
    if let Some(m) = &app.status.message {
        line.push_str(&format!(": {m}"));
    }
    line
}

/// Waits until the job's latest run (of its current spec) finished as `args.until` asks, or
/// the job is gone.
async fn wait_job(g: &Global, args: &Args, deadline: tokio::time::Instant) -> anyhow::Result<()> {
    let client = g.client()?;
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
