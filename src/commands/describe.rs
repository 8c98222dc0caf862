//! `shoal describe app NAME`: spec, status, conditions and recent events, for people.

use super::Kind;
use crate::output::{age, event_row, table};
use crate::settings::Global;
use shoal_api::{App, Event};
use std::fmt::Write;

/// Arguments of `shoal describe`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind of the object.
    pub kind: Kind,
    /// Name of the object.
    pub name: String,
}

/// Runs `shoal describe`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let client = g.client();
    let Kind::App = args.kind;
    let app = client.get_app(&g.namespace, &args.name).await?;
    let events = client.events(&g.namespace, "app", &args.name).await?;
    print!("{}", describe_app(&app, &events, chrono::Utc::now()));
    Ok(())
}

/// The text of `describe app`.
pub fn describe_app(app: &App, events: &[Event], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::new();
    let m = &app.metadata;
    let s = &app.status;
    let mut field = |k: &str, v: String| {
        let _ = writeln!(out, "{:<14}{v}", format!("{k}:"));
    };
    field("Name", m.name.clone());
    field("Namespace", m.namespace.clone());
    if !m.labels.is_empty() {
        field(
            "Labels",
            m.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    field(
        "Created",
        m.creation_timestamp.map_or("-".into(), |t| {
            format!("{} ({} ago)", t.to_rfc3339(), age(Some(t), now))
        }),
    );
    field(
        "Generation",
        format!(
            "{} (status observed {})",
            m.generation, s.observed_generation
        ),
    );
    field("Component", app.spec.component.clone());
    field(
        "Routes",
        app.spec
            .routes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    let l = app.spec.limits.resolve();
    field(
        "Limits",
        format!(
            "memory {} MiB, cpu {:?}, timeout {:?}, concurrency {}",
            l.memory >> 20,
            l.cpu,
            l.timeout,
            l.concurrency
        ),
    );
    if !app.spec.env.is_empty() {
        field(
            "Env",
            app.spec
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    field("Status", s.phase.to_string());
    if let Some(msg) = &s.message {
        field("Message", msg.clone());
    }
    match (&s.serving_component, s.serving_generation) {
        (Some(c), g) if g > 0 => field("Serving", format!("generation {g}, {c}")),
        _ => field("Serving", "nothing yet".into()),
    }
    out.push_str("Conditions:\n");
    if s.conditions.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .conditions
            .iter()
            .map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]
            })
            .collect();
        for line in table(&["TYPE", "STATUS", "REASON", "MESSAGE"], &rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out.push_str("Events:\n");
    if events.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| event_row(e, e.source.clone(), now))
            .collect();
        for line in table(&["AGE", "TYPE", "REASON", "FROM", "MESSAGE"], &rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}
