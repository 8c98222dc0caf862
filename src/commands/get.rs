//! `shoal get apps|jobs|nodes|namespaces`, `shoal get app|job|node|namespace NAME [-o
//! wide|json|yaml] [--watch]`, `shoal get events`, `shoal get tokens`.

use super::GetKind;
use crate::output::{
    Format, STATS_HEADER, age, event_row, print_serialized, stats_cells, table, widths,
};
use crate::settings::Global;
use shoal_api::{App, AppStats, Event, Job, Node};
use std::collections::HashMap;

/// Arguments of `shoal get`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind to list: `apps` (or `app`), `jobs`, `nodes`, `namespaces` (or `ns`), `events`,
    /// `tokens`.
    pub kind: GetKind,
    /// Show only this object.
    pub name: Option<String>,
    /// Output format (`wide`: apps with their request rate, p99, errors, instances, memory).
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
    /// After the list, print each object again whenever it changes (and each new event),
    /// until interrupted.
    #[arg(short, long)]
    pub watch: bool,
}

/// How often `--watch` looks again.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `shoal get`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    match (args.kind, args.watch) {
        (GetKind::Namespace | GetKind::Token, true) => anyhow::bail!(
            "--watch follows apps, jobs, nodes and events; list namespaces and tokens without it"
        ),
        (GetKind::Namespace, false) => {
            return super::tenants::get_namespaces(&g, args.name.as_deref(), args.output).await;
        }
        (GetKind::Token, false) => return super::tenants::get_tokens(&g, args.output).await,
        _ => {}
    }
    if let (GetKind::Event, Some(name)) = (args.kind, &args.name) {
        anyhow::bail!(
            "events are listed, not fetched by name ('{name}'); use `shoal get events` or `shoal describe app NAME`"
        );
    }
    let client = g.client()?;
    let first = listing(&client, &g, &args).await?;
    if !args.output.is_table() && !args.watch {
        return match (&args.name, first.rows.first()) {
            (Some(_), Some(row)) => print_serialized(&row.value, args.output),
            _ => print_serialized(&first.values(), args.output),
        };
    }
    let widths = first.print(args.output)?;
    if !args.watch {
        return Ok(());
    }
    // Then every change: an object whose stored form differs from what was printed last.
    let mut printed: HashMap<String, serde_json::Value> =
        first.rows.into_iter().map(|r| (r.key, r.value)).collect();
    loop {
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let Ok(now) = listing(&client, &g, &args).await else {
            continue;
        };
        for row in now.rows {
            if printed.get(&row.key) == Some(&row.value) {
                continue;
            }
            match args.output {
                Format::Table | Format::Wide => print!("{}", aligned(&row.cells, &widths)),
                other => print_serialized(&row.value, other)?,
            }
            printed.insert(row.key, row.value);
        }
    }
}

/// One object as `get` shows it: its table cells and its stored form.
struct Row {
    /// What tells it from the others (its name; an event: all of it).
    key: String,
    cells: Vec<String>,
    value: serde_json::Value,
}

/// What `get` lists, as a table and as objects.
struct Listing {
    header: Vec<&'static str>,
    rows: Vec<Row>,
    /// What an empty listing says it found none of, and where: "apps", "in namespace default".
    noun: (&'static str, String),
}

impl Listing {
    fn values(&self) -> Vec<&serde_json::Value> {
        self.rows.iter().map(|r| &r.value).collect()
    }

    /// Prints the table (or a note on stderr when empty) and returns its column widths.
    fn print(&self, output: Format) -> anyhow::Result<Vec<usize>> {
        if !output.is_table() {
            for row in &self.rows {
                print_serialized(&row.value, output)?;
            }
            return Ok(Vec::new());
        }
        if self.rows.is_empty() {
            eprintln!("No {} found {}.", self.noun.0, self.noun.1);
        }
        let cells: Vec<Vec<String>> = self.rows.iter().map(|r| r.cells.clone()).collect();
        let text = table(&self.header, &cells);
        if !self.rows.is_empty() {
            print!("{text}");
        }
        Ok(widths(&self.header, &cells))
    }
}

/// One more row under a table of `widths` (a longer cell pushes the rest right).
fn aligned(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        line.push_str(cell);
        if i + 1 < cells.len() {
            let width = widths.get(i).copied().unwrap_or(0);
            line.push_str(&" ".repeat(width.saturating_sub(cell.chars().count()) + 3));
        }
    }
    line.push('\n');
    line
}

/// The rows of `objects`, keyed by `key`, with their table `cells`.
fn rows<T: serde::Serialize>(
    objects: &[T],
    key: impl Fn(&T) -> String,
    cells: Vec<Vec<String>>,
) -> anyhow::Result<Vec<Row>> {
    objects
        .iter()
        .zip(cells)
        .map(|(o, cells)| {
            Ok(Row {
                key: key(o),
                cells,
                value: serde_json::to_value(o)?,
            })
        })
        .collect()
}

/// Fetches what `args` asks for.
async fn listing(
    client: &shoal_client::Client,
    g: &Global,
    args: &Args,
) -> anyhow::Result<Listing> {
    let now = chrono::Utc::now();
    let name = args.name.as_deref();
    let in_ns = |noun: &'static str| (noun, format!("in namespace {}", g.namespace));
    Ok(match args.kind {
        GetKind::Event => {
            let events = client.list_events(&g.namespace).await?;
            let cells = event_rows(&events, now);
            Listing {
                header: EVENT_HEADER.to_vec(),
                rows: rows(
                    &events,
                    |e| serde_json::to_string(e).unwrap_or_default(),
                    cells,
                )?,
                noun: in_ns("events"),
            }
        }
        GetKind::Node => {
            let nodes = match name {
                Some(name) => vec![client.get_node(name).await?],
                None => client.list_nodes().await?,
            };
            Listing {
                header: NODE_HEADER.to_vec(),
                rows: rows(&nodes, |n| n.metadata.name.clone(), node_rows(&nodes, now))?,
                noun: ("nodes", "in the cluster".into()),
            }
        }
        GetKind::Job => {
            let jobs = match name {
                Some(name) => vec![client.get_job(&g.namespace, name).await?],
                None => client.list_jobs(&g.namespace).await?,
            };
            Listing {
                header: JOB_HEADER.to_vec(),
                rows: rows(&jobs, |j| j.metadata.name.clone(), job_rows(&jobs, now))?,
                noun: in_ns("jobs"),
            }
        }
        GetKind::App => {
            let apps = match name {
                Some(name) => vec![client.get_app(&g.namespace, name).await?],
                None => client.list_apps(&g.namespace).await?,
            };
            let mut header = APP_HEADER.to_vec();
            let mut cells = app_rows(&apps, now);
            if args.output == Format::Wide {
                let stats: HashMap<String, AppStats> = client
                    .app_stats(&g.namespace)
                    .await?
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect();
                header.extend(STATS_HEADER);
                for (app, row) in apps.iter().zip(&mut cells) {
                    match stats.get(&app.metadata.name) {
                        Some(s) => row.extend(stats_cells(s)),
                        None => row.extend(["-", "-", "-", "0", "0"].map(String::from)),
                    }
                }
            }
            Listing {
                header,
                rows: rows(&apps, |a| a.metadata.name.clone(), cells)?,
                noun: in_ns("apps"),
            }
        }
        GetKind::Namespace | GetKind::Token => unreachable!("listed by tenants"),
    })
}

const APP_HEADER: [&str; 5] = ["NAME", "STATUS", "REVISION", "ROUTES", "AGE"];

/// Each app's NAME, STATUS, REVISION, ROUTES, AGE.
fn app_rows(apps: &[App], now: chrono::DateTime<chrono::Utc>) -> Vec<Vec<String>> {
    apps.iter()
        .map(|a| {
            let revision = match a.status.serving_generation {
                0 => "-".to_string(),
                g => g.to_string(),
            };
            let routes = match a.spec.routes.is_empty() {
                // Reached only by in-memory calls from its namespace's apps.
                true => "(private)".to_string(),
                false => a
                    .spec
                    .routes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            };
            let status = match &a.status.scale {
                Some(scale) if scale.state == shoal_api::Activity::Idle => {
                    format!("{} (Idle)", a.status.phase)
                }
                _ => a.status.phase.to_string(),
            };
            vec![
                a.metadata.name.clone(),
                status,
                revision,
                routes,
                age(a.metadata.creation_timestamp, now),
            ]
        })
        .collect()
}

/// NAME, STATUS, RUN, EXIT, ATTEMPTS, DURATION, SCHEDULE, AGE: each job with its latest run.
fn job_rows(jobs: &[Job], now: chrono::DateTime<chrono::Utc>) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            let latest = j.status.latest();
            let status = match (latest, &j.status.message) {
                (_, Some(_)) => "Invalid".to_string(),
                (Some(r), None) => r.phase.to_string(),
                (None, None) if j.spec.schedule.is_some() => "Scheduled".into(),
                (None, None) => "Pending".into(),
            };
            vec![
                j.metadata.name.clone(),
                status,
                latest.map_or("-".into(), |r| r.number.to_string()),
                // The code it exited with, else how it ended (a trap is no exit code).
                match latest.map(|r| (r.exit_code, r.ended)) {
                    Some((Some(code), _)) => code.to_string(),
                    Some((None, Some(ended))) => ended.to_string(),
                    _ => "-".into(),
                },
                latest.map_or("-".into(), |r| r.attempts.to_string()),
                latest.map_or("-".into(), |r| super::describe::duration(r, now)),
                j.spec.schedule.clone().unwrap_or_else(|| "-".into()),
                age(j.metadata.creation_timestamp, now),
            ]
        })
        .collect()
}

const JOB_HEADER: [&str; 8] = [
    "NAME", "STATUS", "RUN", "EXIT", "ATTEMPTS", "DURATION", "SCHEDULE", "AGE",
];

/// NAME, STATUS, APPS, MEMORY (reserved/capacity), AGE, LABELS.
fn node_rows(nodes: &[Node], now: chrono::DateTime<chrono::Utc>) -> Vec<Vec<String>> {
    let mib = |b: u64| format!("{}Mi", b >> 20);
    nodes
        .iter()
        .map(|n| {
            let labels = n
                .metadata
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                n.metadata.name.clone(),
                n.status.phase.to_string(),
                n.status.apps.to_string(),
                format!(
                    "{}/{}",
                    mib(n.status.memory_reserved),
                    mib(n.spec.capacity_memory)
                ),
                age(n.metadata.creation_timestamp, now),
                if labels.is_empty() {
                    "<none>".into()
                } else {
                    labels
                },
            ]
        })
        .collect()
}

const NODE_HEADER: [&str; 6] = ["NAME", "STATUS", "APPS", "MEMORY", "AGE", "LABELS"];

/// LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, as kubectl lists events.
fn event_rows(events: &[Event], now: chrono::DateTime<chrono::Utc>) -> Vec<Vec<String>> {
    events
        .iter()
        .map(|e| {
            let about = format!("{}/{}", e.involved_object.kind, e.involved_object.name);
            event_row(e, about, now)
        })
        .collect()
}

const EVENT_HEADER: [&str; 5] = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
