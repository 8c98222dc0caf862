//! `shoal describe app|job NAME`: spec, status, conditions or runs, and recent events, for
//! people (`describe namespace`: `tenants`).

use super::DescribeKind as Kind;
use crate::output::{age, event_row, table};
use crate::settings::Global;
use chrono::{DateTime, Utc};
use shoal_api::{App, Event, Job, JobRun, ObjectMeta, short_digest};
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
    let client = g.client()?;
    let text = match args.kind {
        Kind::App => {
            let app = client.get_app(&g.namespace, &args.name).await?;
            let events = client.events(&g.namespace, "app", &args.name).await?;
            describe_app(&app, &events, Utc::now())
        }
        Kind::Job => {
            let job = client.get_job(&g.namespace, &args.name).await?;
            let events = client.events(&g.namespace, "job", &args.name).await?;
            describe_job(&job, &events, Utc::now())
        }
        Kind::Namespace => return super::tenants::describe_namespace(&g, &args.name).await,
    };
    print!("{text}");
    Ok(())
}

/// The text of `describe app`.
pub fn describe_app(app: &App, events: &[Event], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let (spec, s) = (&app.spec, &app.status);
    header(&mut out, &app.metadata, s.observed_generation, now);
    field(&mut out, "Component", &spec.component);
    if let Some(source) = &spec.component_source {
        field(&mut out, "Pulled from", source);
    }
    let routes = match spec.routes.is_empty() {
        true => "<none> (private: reached only by in-memory calls from its namespace)".into(),
        false => join(spec.routes.iter().map(ToString::to_string)),
    };
    field(&mut out, "Routes", routes);
    let l = spec.limits.resolve();
    field(
        &mut out,
        "Limits",
        format!(
            "memory {} MiB, cpu {:?}, timeout {:?}, concurrency {}",
            l.memory >> 20,
            l.cpu,
            l.timeout,
            l.concurrency
        ),
    );
    if let Some(init) = &spec.init {
        let timeout = init.timeout();
        field(
            &mut out,
            "Init",
            format!("{} at deploy time (at most {timeout:?})", init.function),
        );
    }
    if !spec.dependencies.is_empty() {
        let each = spec.dependencies.iter().map(|(name, d)| {
            let from = match (&d.app, &d.component) {
                (Some(app), _) => format!("app/{app}"),
                (None, Some(c)) => short_digest(&c.to_string()).to_string(),
                (None, None) => "?".into(),
            };
            let inherits = if d.inherit_capabilities {
                ", inherits capabilities"
            } else {
                ""
            };
            format!("{name} from {from}{inherits}")
        });
        field(&mut out, "Dependencies", join(each));
    }
    if !spec.env.is_empty() {
        field(
            &mut out,
            "Env",
            join(spec.env.iter().map(|(k, v)| format!("{k}={v}"))),
        );
    }
    field(&mut out, "Status", s.phase);
    if let Some(msg) = &s.message {
        field(&mut out, "Message", msg);
    }
    match (&s.serving_component, s.serving_generation) {
        (Some(c), g) if g > 0 => field(&mut out, "Serving", format!("generation {g}, {c}")),
        _ => field(&mut out, "Serving", "nothing yet"),
    }
    if let Some(wasi) = &s.wasi {
        let handler = match wasi.as_str() {
            "0.3" => "wasi:http/handler@0.3",
            _ => "wasi:http/incoming-handler@0.2",
        };
        field(&mut out, "WASI", format!("{wasi} ({handler})"));
    }
    if s.placement.is_some() && !s.nodes.is_empty() {
        let reports = s.nodes.iter().map(|(n, r)| {
            let mut text = format!("{n} {} (generation {})", r.phase, r.generation);
            if let Some(m) = &r.message {
                text.push_str(&format!(": {m}"));
            }
            text
        });
        field(&mut out, "Nodes", join(reports));
    }
    if let Some(p) = &s.placement {
        let nodes = if p.nodes.is_empty() {
            "none".to_string()
        } else {
            p.nodes.join(", ")
        };
        match &p.message {
            Some(m) => field(&mut out, "Placement", format!("{nodes} ({m})")),
            None => field(&mut out, "Placement", nodes),
        }
    }
    let idle_after = match shoal_api::Scale::idle_after(spec.scale.as_ref()) {
        Some(d) => format!("goes idle after {d:?} without requests"),
        None => "never goes idle (toZero: false)".into(),
    };
    match &s.scale {
        Some(scale) => field(
            &mut out,
            "Scale",
            format!(
                "{} since {} ago; {} activations, idle {} times; {idle_after}",
                scale.state,
                age(Some(scale.since), now),
                scale.activations,
                scale.scaled_to_zero
            ),
        ),
        None => field(&mut out, "Scale", idle_after),
    }
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
    section(
        &mut out,
        "Conditions",
        &["TYPE", "STATUS", "REASON", "MESSAGE"],
        &rows,
    );
    events_section(&mut out, events, now);
    out
}

/// The text of `describe job`.
pub fn describe_job(job: &Job, events: &[Event], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let spec = &job.spec;
    header(&mut out, &job.metadata, job.status.observed_generation, now);
    field(&mut out, "Component", &spec.component);
    if let Some(source) = &spec.component_source {
        field(&mut out, "Pulled from", source);
    }
    if !spec.args.is_empty() {
        field(
            &mut out,
            "Args",
            join(spec.args.iter().map(|a| format!("{a:?}"))),
        );
    }
    if !spec.env.is_empty() {
        field(
            &mut out,
            "Env",
            join(spec.env.iter().map(|(k, v)| format!("{k}={v}"))),
        );
    }
    if spec.stdin.is_some() || spec.stdin_base64.is_some() {
        field(
            &mut out,
            "Stdin",
            format!("{} bytes", spec.stdin_bytes().len()),
        );
    }
    if !spec.config.is_empty() {
        field(&mut out, "Config", join(spec.config.keys().cloned()));
    }
    if spec.identity() == shoal_api::Identity::Env {
        field(&mut out, "Identity", "in the environment too (SHOAL_JOB_*)");
    }
    if !spec.files.is_empty() {
        let mounts = spec.files.iter().map(|f| {
            let mode = match f.mode {
                Some(shoal_api::MountMode::Rw) => "rw, a copy per attempt",
                _ => "ro",
            };
            format!("{} ({mode})", f.mount)
        });
        field(&mut out, "Files", join(mounts));
    }
    if let Some(dir) = &spec.working_dir {
        field(&mut out, "Working dir", dir);
    }
    let cpu = spec
        .limits
        .cpu
        .as_ref()
        .map_or("unlimited within the timeout".into(), ToString::to_string);
    field(
        &mut out,
        "Limits",
        format!(
            "memory {} MiB, cpu {cpu}, timeout {:?}",
            spec.limits.memory() >> 20,
            spec.timeout()
        ),
    );
    field(
        &mut out,
        "Retries",
        format!(
            "{} (backoff {:?}, doubling)",
            spec.max_attempts() - 1,
            spec.backoff_after(1)
        ),
    );
    if let Some(schedule) = &spec.schedule {
        field(
            &mut out,
            "Schedule",
            format!(
                "{schedule} (UTC), concurrencyPolicy {:?}",
                spec.concurrency_policy()
            ),
        );
        if let Some(t) = job.status.last_schedule_time {
            field(&mut out, "Last schedule", t.to_rfc3339());
        }
    }
    if let Some(message) = &job.status.message {
        field(&mut out, "Message", message);
    }
    let rows: Vec<Vec<String>> = job
        .status
        .runs
        .iter()
        .map(|r| {
            vec![
                r.number.to_string(),
                r.phase.to_string(),
                r.exit_code.map_or("-".into(), |c| c.to_string()),
                r.ended.map_or("-".into(), |e| e.to_string()),
                r.attempts.to_string(),
                age(r.start_time, now),
                duration(r, now),
                r.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    section(
        &mut out,
        "Runs",
        &[
            "RUN", "STATUS", "EXIT", "ENDED", "ATTEMPTS", "STARTED", "DURATION", "MESSAGE",
        ],
        &rows,
    );
    events_section(&mut out, events, now);
    out
}

/// How long a run took (or has taken so far), e.g. `1.2s`.
pub fn duration(run: &JobRun, now: DateTime<Utc>) -> String {
    let Some(start) = run.start_time else {
        return "-".into();
    };
    let end = run.finish_time.unwrap_or(now);
    let ms = (end - start).num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{}.{}s", ms / 1000, ms % 1000 / 100)
    } else {
        age(Some(start), end)
    }
}

/// One `Name:`-style field, aligned.
fn field(out: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<14}{v}", format!("{k}:"));
}

/// The fields every kind starts with: name, namespace, labels, created, generation.
fn header(out: &mut String, m: &ObjectMeta, observed: u64, now: DateTime<Utc>) {
    field(out, "Name", &m.name);
    field(out, "Namespace", &m.namespace);
    if !m.labels.is_empty() {
        field(
            out,
            "Labels",
            join(m.labels.iter().map(|(k, v)| format!("{k}={v}"))),
        );
    }
    let created = m.creation_timestamp.map_or("-".into(), |t| {
        format!("{} ({} ago)", t.to_rfc3339(), age(Some(t), now))
    });
    field(out, "Created", created);
    field(
        out,
        "Generation",
        format!("{} (status observed {observed})", m.generation),
    );
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// A titled table, indented under its title, or `<none>`.
fn section(out: &mut String, title: &str, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "{title}:");
    if rows.is_empty() {
        out.push_str("  <none>\n");
        return;
    }
    for line in table(header, rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn events_section(out: &mut String, events: &[Event], now: DateTime<Utc>) {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| event_row(e, e.source.clone(), now))
        .collect();
    section(
        out,
        "Events",
        &["AGE", "TYPE", "REASON", "FROM", "MESSAGE"],
        &rows,
    );
}
