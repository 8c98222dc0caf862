//! `GET .../apps/{name}/logs`: an app's log lines, optionally followed as they are written.

use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use shoal_api::DurationSpec;
use shoal_store::logs::line_time;
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
    let logs = log_dir(&state)?;
    let what = shoal_api::ObjectRef::new("app", &ns, &name);
    let _: shoal_api::App =
        crate::apps::find(&state, &what, &shoal_store::app_key(&ns, &name)).await?;
    serve(logs, what.to_string(), ns, name, q).await
}

/// The node's log directory, when this server runs beside the node.
pub(crate) fn log_dir(state: &ApiState) -> Result<shoal_store::LogDir, ApiError> {
    state.logs.clone().ok_or_else(|| {
        ApiError::NotFound("this server keeps no logs; ask the node that runs the object".into())
    })
}

/// The lines of log `scope/name` (see [`shoal_store::LogDir`]) that `q` selects, followed
/// when it asks to.
pub(crate) async fn serve(
    logs: shoal_store::LogDir,
    what: String,
    ns: String,
    name: String,
    q: LogQuery,
) -> Result<Response, ApiError> {
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => {
            let d =
                DurationSpec::parse(s).map_err(|e| ApiError::BadRequest(format!("since: {e}")))?;
            Some(Utc::now() - chrono::Duration::from_std(d.get()).unwrap_or_default())
        }
    };
    let read = {
        let (logs, ns, name) = (logs.clone(), ns.clone(), name.clone());
        move |since, tail| logs.read(&ns, &name, since, tail)
    };
    let first = read(since, q.tail)
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
            let read = read.clone();
            async move {
                if let Some(text) = pending {
                    return Some((Ok::<_, std::io::Error>(text), (None, last, last_line)));
                }
                loop {
                    tokio::time::sleep(FOLLOW_POLL).await;
                    let Ok(lines) = read(last, None) else {
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
