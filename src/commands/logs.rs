//! `shoal logs APP [-f] [--since 10m] [--tail N]`: an app's output and runtime events.

use crate::settings::Global;
use shoal_api::DurationSpec;
use std::io::Write;

/// Arguments of `shoal logs`.
#[derive(clap::Args)]
pub struct Args {
    /// The app (`NAME` or `app/NAME`).
    pub app: String,
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
    let client = g.client();
    let name = args.app.strip_prefix("app/").unwrap_or(&args.app);
    let since = args.since.as_ref().map(ToString::to_string);
    let mut resp = client
        .logs(&g.namespace, name, args.tail, since.as_deref(), args.follow)
        .await?;
    let mut out = std::io::stdout();
    while let Some(chunk) = resp.chunk().await? {
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(())
}
