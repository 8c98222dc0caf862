//! `GET .../apps/{name}/logs`: an app's log lines, optionally followed as they are written.

use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use shoal_api::DurationSpec;
use shoal_logs::line_time;
use std::sync::Arc;
use std::time::Duration;

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    /// A Job's run (default: the latest).
    pub(crate) run: Option<u64>,
    tail: Option<usize>,
    since: Option<String>,
    #[serde(default)]
    follow: bool,
}

pub(crate) async fn logs(
    State(state): State<Arc<ApiState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let what = shoal_api::ObjectRef::new("app", &ns, &name);
    let app: shoal_api::App = crate::apps::find(&state, &what).await?;
    let holders = app.status.placement.map(|p| p.nodes).unwrap_or_default();
    let source = source(&state, &what.to_string(), &holders).await?;
    serve(source, what.to_string(), ns, name, q).await
}

/// Where the logs are: this server's disk (`shoal up`), or the nodes that hold the object
/// (each keeps its own part).
pub(crate) enum Source {
    /// The log directory of the node beside this server.
    Local(shoal_logs::LogDir),
    /// The nodes that hold the object, and a client that reaches them.
    Nodes {
        nodes: crate::reach::Nodes,
        http: reqwest::Client,
    },
}

/// The logs of `what`, held by the cluster nodes `holders` (ignored beside a single node).
pub(crate) async fn source(
    state: &ApiState,
    what: &str,
    holders: &[String],
) -> Result<Source, ApiError> {
    if let Some(logs) = &state.logs {
        return Ok(Source::Local(logs.clone()));
    }
    if state.join_token.is_none() {
        return Err(ApiError::NotFound("this server keeps no logs".into()));
    }
    let nodes = crate::reach::Nodes::of(state, Some(holders)).await?;
    if nodes.nodes.is_empty() {
        return Err(ApiError::NotFound(format!(
            "{what} runs on no node now, so no node has its log"
        )));
    }
    let http = nodes.client(Duration::from_secs(10))?;
    Ok(Source::Nodes { nodes, http })
}

/// Reads one log from its source.
struct Reader {
    source: Source,
    scope: String,
    name: String,
}

impl Reader {
    /// Lines at or after `since`, then the last `tail`; from several nodes, merged in time order.
    async fn read(
        &self,
        since: Option<chrono::DateTime<Utc>>,
        tail: Option<usize>,
    ) -> std::io::Result<Vec<String>> {
        let (nodes, http) = match &self.source {
            Source::Local(logs) => return logs.read(&self.scope, &self.name, since, tail),
            Source::Nodes { nodes, http } => (&nodes.nodes, http),
        };
        let mut query = vec![("scope", self.scope.clone()), ("name", self.name.clone())];
        if let Some(t) = since {
            query.push((
                "since",
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ));
        }
        if let Some(n) = tail {
            query.push(("tail", n.to_string()));
        }
        let mut lines = Vec::new();
        let mut reached = false;
        for (_, node, credential) in nodes {
            let resp = http
                .get(format!("{node}/.shoal/logs"))
                .query(&query)
                .bearer_auth(credential)
                .send()
                .await;
            if let Ok(r) = resp
                && r.status().is_success()
                && let Ok(text) = r.text().await
            {
                reached = true;
                lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
            }
        }
        if !reached {
            return Err(std::io::Error::other("no node that holds it answered"));
        }
        // Lines start with RFC 3339 timestamps of one format: text order is time order.
        lines.sort();
        if let Some(n) = tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        Ok(lines)
    }
}

/// The lines of log `scope/name` (see [`shoal_logs::LogDir`]) that `q` selects, followed
/// when it asks to.
pub(crate) async fn serve(
    source: Source,
    what: String,
    scope: String,
    name: String,
    q: LogQuery,
) -> Result<Response, ApiError> {
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => {
            let d =
                DurationSpec::parse(s).map_err(|e| ApiError::BadRequest(format!("since: {e}")))?;
            // Before the earliest date there is: every line.
            chrono::Duration::from_std(d.get())
                .ok()
                .and_then(|d| Utc::now().checked_sub_signed(d))
        }
    };
    let reader = Arc::new(Reader {
        source,
        scope,
        name,
    });
    let first = reader
        .read(since, q.tail)
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot read the log of {what}: {e}")))?;
    let mut text = first.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    if !q.follow {
        return Ok(Response::new(Body::from(text)));
    }
    // Follow: send what exists, then every newer line, until the client goes away.
    let last = first.last().and_then(|l| line_time(l));
    let stream = futures::stream::unfold(
        (Some(text), last, first.last().cloned()),
        move |(pending, last, last_line)| {
            let reader = reader.clone();
            async move {
                if let Some(text) = pending {
                    return Some((Ok::<_, std::io::Error>(text), (None, last, last_line)));
                }
                loop {
                    tokio::time::sleep(FOLLOW_POLL).await;
                    let Ok(lines) = reader.read(last, None).await else {
                        continue;
                    };
                    // Lines with the same timestamp as the last one sent may repeat it: skip through it.
                    let start = match &last_line {
                        Some(l) => lines.iter().position(|x| x == l).map_or(0, |i| i + 1),
                        None => 0,
                    };
                    let new = &lines[start..];
                    if new.is_empty() {
                        continue;
                    }
                    let mut text = new.join("\n");
                    text.push('\n');
                    let next_last = new.last().and_then(|l| line_time(l)).or(last);
                    return Some((Ok(text), (None, next_last, new.last().cloned())));
                }
            }
        },
    );
    Ok(Response::new(Body::from_stream(stream)))
}
