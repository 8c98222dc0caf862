//! What a node measures and serves to a scrape: every app it holds (one
//! [`AppMetrics`] per app, handed to each of its deployments so that its counters outlive a
//! revision), its ingress's connections, its runtime (compiles, pooled slots) and the
//! process; and the `--metrics` listener that serves them in Prometheus's text format.

use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use shoal_metrics::{AppMetrics, Counter, DURATION_BUCKETS, Exposition, Gauge, Kind, Window};
use shoal_runtime::Runtime;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use tokio_util::sync::CancellationToken;

/// A node's measures.
pub struct NodeMetrics {
    /// Every app deployed here, by (namespace, name); an entry dies with the app's last
    /// deployment on this node.
    apps: Mutex<BTreeMap<(String, String), Tracked>>,
    runtime: Arc<Runtime>,
    /// Ingress connections open now.
    pub(crate) connections: Gauge,
    /// Ingress connections accepted, in all.
    pub(crate) accepted: Counter,
    /// Requests relayed to the node holding their app.
    pub(crate) forwarded: Counter,
}

/// An app's measures, and the samples of them its recent figures are made of.
struct Tracked {
    app: Weak<AppMetrics>,
    window: Window,
}

impl NodeMetrics {
    pub(crate) fn new(runtime: Arc<Runtime>) -> Self {
        Self {
            apps: Mutex::default(),
            runtime,
            connections: Gauge::default(),
            accepted: Counter::default(),
            forwarded: Counter::default(),
        }
    }

    /// The measures of app `name` of `namespace`: the ones its earlier deployments here had,
    /// if one is still alive.
    pub(crate) fn app(&self, namespace: &str, name: &str) -> Arc<AppMetrics> {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        if let Some(live) = apps.get(&key).and_then(|t| t.app.upgrade()) {
            return live;
        }
        let fresh = Arc::new(AppMetrics::new(namespace, name));
        let app = Arc::downgrade(&fresh);
        apps.insert(
            key,
            Tracked {
                app,
                window: Window::default(),
            },
        );
        fresh
    }

    /// Keeps a sample of every app's totals (see [`sample`]), forgetting the apps gone.
    fn sample(&self) {
        let now = std::time::Instant::now();
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        apps.retain(|_, t| match t.app.upgrade() {
            Some(app) => {
                t.window.sample(now, app.totals());
                true
            }
            None => false,
        });
    }

    /// What the apps of `namespace` here (every app's, without one) are doing now.
    pub fn stats(&self, namespace: Option<&str>) -> Vec<shoal_api::AppStats> {
        let now = std::time::Instant::now();
        let apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        apps.iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .filter_map(|((ns, name), t)| {
                let app = t.app.upgrade()?;
                let totals = app.totals();
                let (in_flight, instances, memory) = app.now();
                let recent = t.window.since(now, &totals).map_or_else(
                    shoal_api::Recent::default,
                    |(took, grown)| shoal_api::Recent {
                        seconds: took.as_secs_f64(),
                        per_second: grown.responses.map(|n| n as f64 / took.as_secs_f64()),
                        durations: grown.durations.to_vec(),
                        bounds: DURATION_BUCKETS.to_vec(),
                    },
                );
                Some(shoal_api::AppStats {
                    namespace: ns.clone(),
                    name: name.clone(),
                    requests: totals.responses,
                    in_flight,
                    instances,
                    memory,
                    recent,
                })
            })
            .collect()
    }

    /// Writes the node's families and its apps'.
    pub fn write(&self, out: &mut Exposition) {
        out.single(
            "shoal_node_connections",
            "Ingress connections open now.",
            Kind::Gauge,
            self.connections.get(),
        );
        out.single(
            "shoal_node_connections_accepted_total",
            "Ingress connections accepted.",
            Kind::Counter,
            self.accepted.get(),
        );
        out.single(
            "shoal_node_forwarded_requests_total",
            "Requests relayed to the node that holds their app.",
            Kind::Counter,
            self.forwarded.get(),
        );
        self.runtime.write_metrics(out);
        let apps: Vec<Arc<AppMetrics>> = {
            let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
            apps.retain(|_, t| t.app.strong_count() > 0);
            apps.values().filter_map(|t| t.app.upgrade()).collect()
        };
        out.single(
            "shoal_node_apps",
            "Apps deployed on this node now.",
            Kind::Gauge,
            apps.len(),
        );
        AppMetrics::write_families(out, &apps);
    }

    /// The whole answer of a node's scrape: the process's families, then [`Self::write`].
    pub fn render(&self) -> String {
        let mut out = Exposition::new();
        shoal_metrics::write_process(&mut out);
        self.write(&mut out);
        out.finish()
    }
}

/// Samples every app's totals every [`shoal_metrics::SAMPLE_EVERY`] until `shutdown`, so
/// that [`NodeMetrics::stats`] can tell what happened in the last few seconds.
pub(crate) async fn sample(metrics: Arc<NodeMetrics>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(shoal_metrics::SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => metrics.sample(),
        }
    }
}

/// Serves `GET /metrics` (see [`NodeMetrics::render`]) on `listener` until `shutdown`; any
/// other request is answered 404. No token: what it shows is counts, by app name.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<NodeMetrics>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics listener: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer<B>(metrics: &NodeMetrics, req: &hyper::Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/metrics") => (
            StatusCode::OK,
            shoal_metrics::CONTENT_TYPE,
            metrics.render(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "this address serves GET /metrics only\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
