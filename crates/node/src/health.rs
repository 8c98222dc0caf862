//! Health checks: the request a new generation must answer with 2xx before it gets traffic.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use shoal_runtime::{HttpApp, RequestBody};
use std::time::Duration;

/// Attempts before a generation is declared unhealthy.
const ATTEMPTS: u32 = 5;
/// Most of a health check's answer that is read.
const MAX_BODY: usize = 1 << 20;
/// Wait before the second attempt; doubled before each later one (0.1 + 0.2 + 0.4 + 0.8 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Sends `GET path` to `app` (in process, as the ingress would) until it answers 2xx.
///
/// # Errors
/// Every attempt failed; the message names the path, the last status and the attempts.
pub(crate) async fn check(app: &HttpApp, path: &str) -> Result<(), String> {
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let req = http::Request::get(format!("http://localhost{path}"))
            .header(http::header::HOST, "localhost")
            .body(RequestBody::new(
                Empty::<Bytes>::new(),
                0,
                Duration::from_secs(10),
            ));
        let req = match req {
            Ok(req) => req,
            Err(e) => {
                return Err(format!(
                    "health check path {path} is not a valid request: {e}"
                ));
            }
        };
        let response = app.handle(req).await;
        let status = response.status();
        // Read the answer through, as a client would: a guest's work for a request ends
        // when its response is complete (a body dropped early means the client went away).
        let _ = http_body_util::Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await;
        if status.is_success() {
            return Ok(());
        }
        last = status.to_string();
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(format!(
        "health check GET {path} answered {last} ({ATTEMPTS} attempts); fix the app or spec.healthCheck"
    ))
}
