//! `shoal logs [app|job] NAME [--run N] [-f] [--since 10m] [--tail N]`: an app's output and
//! runtime events, or one run of a job's.

use super::Kind;
use crate::settings::Global;
use anyhow::bail;
use shoal_api::DurationSpec;
use shoal_client::LogSource;
use std::io::Write;

/// Arguments of `shoal logs`.
#[derive(clap::Args)]
pub struct Args {
    /// `NAME` or `app/NAME` for an app, `job NAME` or `job/NAME` for a job.
    #[arg(required = true, num_args = 1..=2, value_name = "[KIND] NAME")]
    pub target: Vec<String>,
    /// For a job: the run (default: the latest).
    #[arg(long)]
    pub run: Option<u64>,
    /// Keep printing new lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines from this recent period (e.g. 10m, 1h).
    #[arg(long, value_parser = DurationSpec::parse)]
    pub since: Option<DurationSpec>,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
}

/// Runs `shoal logs`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client()?;
    let (kind, name) = parse_target(&args.target)?;
    let source = match kind {
        Kind::App if args.run.is_some() => bail!("--run applies to jobs; apps have one log"),
        Kind::App => LogSource::App(name),
        Kind::Job => LogSource::Job {
            name,
            run: args.run,
        },
    };
    let since = args.since.as_ref().map(ToString::to_string);
    let mut resp = client
        .logs(
            &g.namespace,
            &source,
            args.tail,
            since.as_deref(),
            args.follow,
        )
        .await?;
    let mut out = std::io::stdout();
    while let Some(chunk) = resp.chunk().await? {
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(())
}

/// `NAME`, `KIND/NAME` or `KIND NAME`; an app when no kind is given.
fn parse_target(target: &[String]) -> anyhow::Result<(Kind, String)> {
    let kind_of = |k: &str| match k {
        "app" | "apps" => Ok(Kind::App),
        "job" | "jobs" => Ok(Kind::Job),
        other => bail!("'{other}' is not a kind with logs; use app or job"),
    };
    match target {
        [one] => match one.split_once('/') {
            Some((kind, name)) => Ok((kind_of(kind)?, name.to_string())),
            None => Ok((Kind::App, one.clone())),
        },
        [kind, name] => Ok((kind_of(kind)?, name.clone())),
        _ => bail!("give the object as NAME, KIND/NAME or KIND NAME"),
    }
}
