//! `shoal get apps|jobs|nodes|namespaces`, `shoal get app|job|node|namespace NAME [-o
//! json|yaml]`, `shoal get events`, `shoal get tokens`.

use super::GetKind;
use crate::output::{Format, age, event_row, print_serialized, table};
use crate::settings::Global;
use shoal_api::{App, Event, Job, Node};

/// Arguments of `shoal get`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind to list: `apps` (or `app`), `jobs`, `nodes`, `namespaces` (or `ns`), `events`,
    /// `tokens`.
    pub kind: GetKind,
    /// Show only this object.
    pub name: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

/// Runs `shoal get`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    match args.kind {
        GetKind::Namespace => {
            return super::tenants::get_namespaces(&g, args.name.as_deref(), args.output).await;
        }
        GetKind::Token => return super::tenants::get_tokens(&g, args.output).await,
        _ => {}
    }
    let client = g.client()?;
    if args.kind == GetKind::Event {
        if let Some(name) = &args.name {
            anyhow::bail!(
                "events are listed, not fetched by name ('{name}'); use `shoal get events` or `shoal describe app NAME`"
            );
        }
        let events = client.list_events(&g.namespace).await?;
        return print_list(
            &events,
            args.output,
            "events",
            &format!("in namespace {}", g.namespace),
            event_table,
        );
    }
    if args.kind == GetKind::Node {
        let nodes = match &args.name {
            Some(name) => {
                let node = client.get_node(name).await?;
                if args.output != Format::Table {
                    return print_serialized(&node, args.output);
                }
                vec![node]
            }
            None => client.list_nodes().await?,
        };
        return print_list(&nodes, args.output, "nodes", "in the cluster", node_table);
    }
    if args.kind == GetKind::Job {
        let jobs = match &args.name {
            Some(name) => {
                let job = client.get_job(&g.namespace, name).await?;
                if args.output != Format::Table {
                    return print_serialized(&job, args.output);
                }
                vec![job]
            }
            None => client.list_jobs(&g.namespace).await?,
        };
        return print_list(
            &jobs,
            args.output,
            "jobs",
            &format!("in namespace {}", g.namespace),
            job_table,
        );
    }
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
    print_list(
        &apps,
        args.output,
        "apps",
        &format!("in namespace {}", g.namespace),
        app_table,
    )
}

/// Prints `items` serialized, or as the table `render` draws (a note on stderr when empty).
fn print_list<T: serde::Serialize>(
    items: &[T],
    output: Format,
    noun: &str,
    scope: &str,
    render: fn(&[T], chrono::DateTime<chrono::Utc>) -> String,
) -> anyhow::Result<()> {
    if output != Format::Table {
        return print_serialized(&items, output);
    }
    if items.is_empty() {
        eprintln!("No {noun} found {scope}.");
        return Ok(());
    }
    print!("{}", render(items, chrono::Utc::now()));
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
        .collect();
    table(&["NAME", "STATUS", "REVISION", "ROUTES", "AGE"], &rows)
}

/// NAME, STATUS, RUN, EXIT, ATTEMPTS, DURATION, SCHEDULE, AGE: each job with its latest run.
pub fn job_table(jobs: &[Job], now: chrono::DateTime<chrono::Utc>) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
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
        .collect();
    table(
        &[
            "NAME", "STATUS", "RUN", "EXIT", "ATTEMPTS", "DURATION", "SCHEDULE", "AGE",
        ],
        &rows,
    )
}

/// NAME, STATUS, APPS, MEMORY (reserved/capacity), AGE, LABELS.
pub fn node_table(nodes: &[Node], now: chrono::DateTime<chrono::Utc>) -> String {
    let mib = |b: u64| format!("{}Mi", b >> 20);
    let rows: Vec<Vec<String>> = nodes
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
        .collect();
    table(
        &["NAME", "STATUS", "APPS", "MEMORY", "AGE", "LABELS"],
        &rows,
    )
}

/// LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, as kubectl lists events.
pub fn event_table(events: &[Event], now: chrono::DateTime<chrono::Utc>) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let about = format!("{}/{}", e.involved_object.kind, e.involved_object.name);
            event_row(e, about, now)
        })
        .collect();
    table(&["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], &rows)
}
