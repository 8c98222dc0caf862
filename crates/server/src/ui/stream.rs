//! `GET /v1/namespaces/{ns}/dashboard`: what the dashboard shows, as server-sent events — a
//! `snapshot` of the namespace's apps (status and the figures of the last seconds), jobs and
//! their runs, recent events and (to an admin) the nodes, every [`EVERY`]; a `problem` event
//! instead when one cannot be read (the store is down, say), and the stream goes on.

use crate::{ApiState, Role};
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::sse::{Event as Sse, KeepAlive};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Serialize;
use shoal_api::{App, AppStats, Event, Job, JobRun, Node};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often a snapshot is sent (the nodes sample their figures every 5 s).
const EVERY: Duration = Duration::from_secs(2);
/// The most apps a snapshot lists (the busiest first, then by name); it says how many exist.
const MAX_APPS: usize = 500;
/// How many of the namespace's latest events a snapshot holds.
const EVENTS: usize = 30;
/// How many of a job's latest runs a snapshot holds.
const RUNS: usize = 5;

/// One update of the dashboard.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    namespace: String,
    time: DateTime<Utc>,
    /// How many apps the namespace has (`apps` holds at most [`MAX_APPS`]).
    apps_total: usize,
    apps: Vec<AppView>,
    jobs: Vec<JobView>,
    /// `None`: the viewer may not list nodes (only an admin may).
    nodes: Option<Vec<Node>>,
    /// Newest first.
    events: Vec<Event>,
}

/// An app as the dashboard lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppView {
    name: String,
    phase: String,
    message: Option<String>,
    /// The revision (generation) serving, and the latest one applied.
    serving: u64,
    generation: u64,
    routes: Vec<String>,
    wasi: Option<String>,
    nodes: Vec<String>,
    /// Active, Idle…; `None` for an app that never scales to zero.
    activity: Option<String>,
    /// Requests per second lately, p99 in seconds, share answered 5xx (`None`: none lately).
    rate: Option<f64>,
    p99: Option<f64>,
    error_ratio: Option<f64>,
    in_flight: u64,
    instances: u64,
    memory: u64,
}

impl AppView {
    fn of(app: &App, stats: Option<&AppStats>) -> Self {
        let s = &app.status;
        Self {
            name: app.metadata.name.clone(),
            phase: s.phase.to_string(),
            message: s.message.clone(),
            serving: s.serving_generation,
            generation: app.metadata.generation,
            routes: app
                .spec
                .routes
                .iter()
                .map(|r| format!("{}{}", r.host.as_deref().unwrap_or(""), r.path))
                .collect(),
            wasi: s.wasi.clone(),
            nodes: s.nodes.keys().cloned().collect(),
            activity: s.scale.as_ref().map(|sc| format!("{:?}", sc.state)),
            rate: stats.and_then(AppStats::rate),
            p99: stats.and_then(|st| st.quantile(0.99)),
            error_ratio: stats.and_then(AppStats::error_ratio),
            in_flight: stats.map_or(0, |st| st.in_flight),
            instances: stats.map_or(0, |st| st.instances),
            memory: stats.map_or(0, |st| st.memory),
        }
    }
}

/// A job as the dashboard lists it, with its latest runs.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobView {
    name: String,
    schedule: Option<String>,
    message: Option<String>,
    runs: Vec<JobRun>,
}

pub(crate) async fn stream(
    State(state): State<Arc<ApiState>>,
    Path(ns): Path<String>,
    Extension(role): Extension<Role>,
) -> axum::response::Sse<impl Stream<Item = Result<Sse, Infallible>>> {
    let nodes = role.is_admin();
    let tick = tokio::time::interval(EVERY);
    let events =
        futures::stream::unfold((state, ns, tick), move |(state, ns, mut tick)| async move {
            tick.tick().await;
            let event = match snapshot(&state, &ns, nodes).await {
                Ok(snap) => Sse::default().event("snapshot").json_data(&snap),
                Err(e) => Ok(Sse::default().event("problem").data(e.to_string())),
            };
            let event =
                event.unwrap_or_else(|e| Sse::default().event("problem").data(e.to_string()));
            Some((Ok(event), (state, ns, tick)))
        });
    axum::response::Sse::new(events).keep_alive(KeepAlive::default())
}

async fn snapshot(state: &ApiState, ns: &str, nodes: bool) -> Result<Snapshot, crate::ApiError> {
    let (apps, _) = state.objects.list::<App>(Some(ns)).await?;
    let stats: HashMap<String, AppStats> = crate::stats::of_namespace(state, ns)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut apps: Vec<AppView> = apps
        .iter()
        .map(|a| AppView::of(a, stats.get(&a.metadata.name)))
        .collect();
    let apps_total = apps.len();
    apps.sort_by(|a, b| {
        let rate = |v: &AppView| v.rate.unwrap_or(0.0);
        rate(b)
            .total_cmp(&rate(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    apps.truncate(MAX_APPS);
    let (jobs, _) = state.objects.list::<Job>(Some(ns)).await?;
    let jobs = jobs
        .into_iter()
        .map(|j| JobView {
            name: j.metadata.name,
            schedule: j.spec.schedule,
            message: j.status.message,
            runs: j.status.runs.into_iter().rev().take(RUNS).collect(),
        })
        .collect();
    let nodes = match nodes {
        true => Some(state.objects.list::<Node>(None).await?.0),
        false => None,
    };
    let mut events = state.objects.events_in(ns).await?;
    events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    events.truncate(EVENTS);
    Ok(Snapshot {
        namespace: ns.to_string(),
        time: Utc::now(),
        apps_total,
        apps,
        jobs,
        nodes,
        events,
    })
}
