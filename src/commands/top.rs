//! `shoal top`: the apps of a namespace by what they are doing now — requests per second,
//! p99 latency, errors, requests in flight, instances and their memory — over the last few
//! seconds, refreshed until interrupted (`--once`: one table).

use crate::output::{Format, STATS_HEADER, print_serialized, stats_cells, table};
use crate::settings::Global;
use shoal_api::{AppStats, DurationSpec};
use std::io::IsTerminal;

/// Arguments of `shoal top`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the table once and exit, instead of refreshing it.
    #[arg(long)]
    pub once: bool,
    /// How often to refresh.
    #[arg(long, default_value = "2s", value_parser = DurationSpec::parse)]
    pub interval: DurationSpec,
    /// What the rows are ordered by (largest first; `name`: alphabetically).
    #[arg(long, value_enum, default_value = "rate")]
    pub sort: Sort,
    /// Output format (`json`, `yaml`: every figure, as the API gives them).
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

/// Orders of `shoal top`'s rows.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sort {
    /// Requests per second.
    Rate,
    /// p99 latency.
    P99,
    /// Share of requests answered 5xx.
    Errors,
    /// Memory of the live instances.
    Memory,
    /// The app's name.
    Name,
}

/// Runs `shoal top`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client()?;
    // On a terminal each table replaces the last; into a pipe they follow one another.
    let redraw = std::io::stdout().is_terminal() && !args.once;
    loop {
        let mut apps = client.app_stats(&g.namespace).await?;
        sort(&mut apps, args.sort);
        if redraw {
            print!("\x1b[H\x1b[2J");
        }
        if !args.output.is_table() {
            print_serialized(&apps, args.output)?;
        } else if apps.is_empty() {
            println!("No app runs in namespace {}.", g.namespace);
        } else {
            print!("{}", top_table(&apps));
        }
        if args.once {
            return Ok(());
        }
        if !redraw {
            println!();
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval.get()) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn sort(apps: &mut [AppStats], by: Sort) {
    let key = |s: &AppStats| -> f64 {
        match by {
            Sort::Rate => s.rate().unwrap_or(0.0),
            Sort::P99 => s.quantile(0.99).unwrap_or(0.0),
            Sort::Errors => s.error_ratio().unwrap_or(0.0),
            Sort::Memory => s.memory as f64,
            Sort::Name => 0.0,
        }
    };
    apps.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
}

/// NAME, REQ/S, P99, ERRORS, IN FLIGHT, INSTANCES, MEMORY.
fn top_table(apps: &[AppStats]) -> String {
    let mut header = vec!["NAME"];
    header.extend(&STATS_HEADER[..3]);
    header.push("IN FLIGHT");
    header.extend(&STATS_HEADER[3..]);
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|s| {
            let [rate, p99, errors, instances, memory] = stats_cells(s);
            vec![
                s.name.clone(),
                rate,
                p99,
                errors,
                s.in_flight.to_string(),
                instances,
                memory,
            ]
        })
        .collect();
    table(&header, &rows)
}
