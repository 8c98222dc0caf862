//! What a server measures and serves at `GET /metrics`: its API requests by route and status,
//! its controllers' passes, whether it leads, its etcd, and the process — and in `shoal up`,
//! the node beside it (the families [`ApiState::with_node`] adds).

use crate::ApiState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal_metrics::{Counter, Exposition, Gauge, Histogram, Kind, Timer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A controller the leading server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// Apps' nodes, jobs' node, nodes' reservations (`placement`).
    Placement,
    /// Nodes' Ready or NotReady (`liveness`).
    Liveness,
}

impl Controller {
    const ALL: [Controller; 2] = [Self::Placement, Self::Liveness];

    fn label(self) -> &'static str {
        match self {
            Self::Placement => "placement",
            Self::Liveness => "liveness",
        }
    }
}

/// One controller's passes.
#[derive(Debug, Default)]
struct Passes {
    took: Histogram,
    failed: Counter,
}

/// One pass of a controller: timed until dropped, and counted as failed (once) if anything in
/// it failed.
pub struct Pass<'a> {
    _timer: Timer<'a>,
    failed: Option<&'a Counter>,
}

impl Pass<'_> {
    /// Something in this pass failed.
    pub fn failed(&mut self) {
        if let Some(failed) = self.failed.take() {
            failed.inc();
        }
    }
}

/// A server's measures.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    /// API requests answered, by (route template, method, status).
    api: Mutex<BTreeMap<(String, String, u16), u64>>,
    api_duration: Histogram,
    leading: Gauge,
    passes: [Passes; Controller::ALL.len()],
}

impl ServerMetrics {
    /// This server now leads (or no longer does).
    pub fn set_leading(&self, leading: bool) {
        self.leading.set(i64::from(leading));
    }

    /// A pass of `controller` starts now; it is counted when the [`Pass`] is dropped.
    pub fn pass(&self, controller: Controller) -> Pass<'_> {
        let passes = &self.passes[controller as usize];
        Pass {
            _timer: passes.took.time(),
            failed: Some(&passes.failed),
        }
    }

    fn api_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.api_duration.observe(took);
        let mut api = self.api.lock().unwrap_or_else(|p| p.into_inner());
        *api.entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
    }

    /// Writes the server's families (not the process's).
    pub fn write(&self, out: &mut Exposition) {
        let name = "shoal_api_requests_total";
        out.family(
            name,
            "API requests answered, by route, method and status code.",
            Kind::Counter,
        );
        let api = self.api.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((route, method, status), n) in &api {
            let code = status.to_string();
            let pairs = [
                ("route", route.as_str()),
                ("method", method.as_str()),
                ("code", code.as_str()),
            ];
            out.sample(name, "", &pairs, *n);
        }
        out.single_histogram(
            "shoal_api_request_duration_seconds",
            "Time to answer an API request (to the response head; streams run on).",
            &self.api_duration,
        );
        out.single(
            "shoal_leader",
            "1 while this server leads the cluster and runs its controllers.",
            Kind::Gauge,
            self.leading.get(),
        );
        let name = "shoal_reconcile_duration_seconds";
        out.family(
            name,
            "Passes of the leader's controllers, and how long each took.",
            Kind::Histogram,
        );
        for c in Controller::ALL {
            let labels = shoal_metrics::labels(&[("controller", c.label())]);
            out.histogram(name, &labels, &self.passes[c as usize].took);
        }
        let name = "shoal_reconcile_errors_total";
        out.family(
            name,
            "Passes of the leader's controllers that failed (the store did not answer).",
            Kind::Counter,
        );
        for c in Controller::ALL {
            let failed = self.passes[c as usize].failed.get();
            out.sample(name, "", &[("controller", c.label())], failed);
        }
    }
}

/// Counts every API request by its route's template (`/v1/namespaces/{ns}/apps/{name}`:
/// bounded, whatever the names), method and status.
pub(crate) async fn count(
    State(state): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let response = next.run(req).await;
    state.metrics.api_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`: the process's, this server's, its etcd's and (in `shoal up`) its node's
/// families, in Prometheus's text format.
pub(crate) async fn serve(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = Exposition::new();
    shoal_metrics::write_process(&mut out);
    state.metrics.write(&mut out);
    if let Some(etcd) = &state.leases {
        etcd.write_metrics(&mut out);
    }
    if let Some(node) = &state.node {
        node.write_metrics(&mut out);
    }
    (
        [(http::header::CONTENT_TYPE, shoal_metrics::CONTENT_TYPE)],
        out.finish(),
    )
        .into_response()
}
