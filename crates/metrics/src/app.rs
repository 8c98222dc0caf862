//! What every app is measured by ([`AppMetrics`]), and the families a scrape writes of many
//! apps at once ([`AppMetrics::write_families`]).

use crate::primitives::{Counter, Gauge, Histogram};
use crate::text::{Exposition, Kind, labels};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// `spec.limits.cpu`.
    Cpu,
    /// `spec.limits.memory`: a memory was refused growth.
    Memory,
    /// `spec.limits.timeout`.
    Timeout,
    /// `spec.limits.concurrency`, the namespace's instances quota, or the node's instance
    /// slots: answered 503 without running.
    Concurrency,
}

impl LimitHit {
    const ALL: [LimitHit; 4] = [Self::Cpu, Self::Memory, Self::Timeout, Self::Concurrency];

    fn label(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Timeout => "timeout",
            Self::Concurrency => "concurrency",
        }
    }
}

/// A capability that refused a guest something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// An outgoing HTTP request the allow-list does not grant.
    Outbound,
    /// A call of an import nothing grants (the rest of Spin's platform).
    Import,
}

impl Denial {
    const ALL: [Denial; 2] = [Self::Outbound, Self::Import];

    fn label(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Import => "import",
        }
    }
}

/// One app's measures on one node, kept across its revisions (the node hands every
/// deployment of the app the same one) so that its counters only go up.
#[derive(Debug)]
pub struct AppMetrics {
    /// `app/NAME`, for messages.
    name: String,
    /// `namespace="…",app="…"`, rendered once.
    labels: String,
    /// Answered, by status class (1xx … 5xx).
    responses: [Counter; 5],
    duration: Histogram,
    in_flight: Gauge,
    instances_created: Counter,
    instances_reused: Counter,
    activation: Histogram,
    limits: [Counter; LimitHit::ALL.len()],
    denials: [Counter; Denial::ALL.len()],
    outbound: Histogram,
    received: Counter,
    sent: Counter,
    /// Instances alive now, and the bytes of linear memory they hold.
    live: Gauge,
    memory: Gauge,
}

impl AppMetrics {
    /// The measures of app `name` of `namespace`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("app/{name}"),
            labels: labels(&[("namespace", namespace), ("app", name)]),
            responses: Default::default(),
            duration: Histogram::default(),
            in_flight: Gauge::default(),
            instances_created: Counter::default(),
            instances_reused: Counter::default(),
            activation: Histogram::default(),
            limits: Default::default(),
            denials: Default::default(),
            outbound: Histogram::default(),
            received: Counter::default(),
            sent: Counter::default(),
            live: Gauge::default(),
            memory: Gauge::default(),
        }
    }

    /// Measures that no scrape reads, of `what` (`job/NAME`: a job's attempt).
    pub fn unlisted(what: &str) -> Arc<Self> {
        let mut m = Self::new("", "");
        m.name = what.to_string();
        Arc::new(m)
    }

    /// `app/NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A request reached the app: in flight until the [`Request`] is dropped.
    pub fn request(self: &Arc<Self>) -> Request {
        self.in_flight.inc();
        Request {
            metrics: self.clone(),
            started: Instant::now(),
            status: CLIENT_CLOSED,
            sent: 0,
        }
    }

    /// An instance of the app came to life: alive, and its memory counted, until the
    /// [`Alive`] is dropped.
    pub fn alive(self: &Arc<Self>) -> Alive {
        self.live.inc();
        Alive {
            metrics: self.clone(),
            memory: 0,
        }
    }

    /// Requests answered and their durations so far, for [`crate::Window`].
    pub fn totals(&self) -> Totals {
        Totals {
            responses: self.responses.each_ref().map(Counter::get),
            durations: self.duration.counts(),
        }
    }

    /// Requests in flight, instances alive and the bytes of memory they hold, now.
    pub fn now(&self) -> (u64, u64, u64) {
        let get = |g: &Gauge| u64::try_from(g.get()).unwrap_or(0);
        (get(&self.in_flight), get(&self.live), get(&self.memory))
    }

    /// A request's body is done with, after `bytes` of it were read.
    pub fn received(&self, bytes: u64) {
        self.received.add(bytes);
    }

    /// A request got an instance: a fresh one, or one that answered before.
    pub fn instance(&self, reused: bool) {
        if reused {
            self.instances_reused.inc();
        } else {
            self.instances_created.inc();
        }
    }

    /// The app's component was loaded again after it went idle, taking `took`.
    pub fn activated(&self, took: Duration) {
        self.activation.observe(took);
    }

    /// A request ran into `limit`.
    pub fn limit_hit(&self, limit: LimitHit) {
        self.limits[limit as usize].inc();
    }

    /// A capability refused the guest something.
    pub fn denied(&self, denial: Denial) {
        self.denials[denial as usize].inc();
    }

    /// An outgoing HTTP request of the guest got its response head (or failed) after `took`.
    pub fn outbound(&self, took: Duration) {
        self.outbound.observe(took);
    }

    /// Requests answered so far, in all.
    pub fn responses(&self) -> u64 {
        self.responses.iter().map(Counter::get).sum()
    }

    /// Writes every app family, each with the series of all of `apps`. An app is skipped in a
    /// family where it has nothing to say (no request yet, no limit of that kind hit), so
    /// that thousands of idle apps cost a scrape little.
    pub fn write_families(out: &mut Exposition, apps: &[Arc<AppMetrics>]) {
        counters(
            out,
            apps,
            ("shoal_app_requests_total", "code"),
            "Requests the app answered, by status class.",
            |a| CLASSES.iter().copied().zip(&a.responses),
        );
        histograms(
            out,
            apps,
            "shoal_app_request_duration_seconds",
            "Time from a request reaching the app to its response's end.",
            |a| &a.duration,
        );
        let n = "shoal_app_requests_in_flight";
        out.family(n, "Requests the app is serving now.", Kind::Gauge);
        for app in apps {
            out.sample(n, &app.labels, &[], app.in_flight.get());
        }
        counters(
            out,
            apps,
            ("shoal_app_instances_total", "how"),
            "Instances that served a request: created fresh, or reused.",
            |a| {
                [
                    ("created", &a.instances_created),
                    ("reused", &a.instances_reused),
                ]
            },
        );
        histograms(
            out,
            apps,
            "shoal_app_activation_duration_seconds",
            "Activations from idle (scale from zero) and how long loading the component took.",
            |a| &a.activation,
        );
        counters(
            out,
            apps,
            ("shoal_app_limit_hits_total", "limit"),
            "Requests that ran into one of the app's limits, by limit.",
            |a| {
                LimitHit::ALL
                    .map(|l| (l.label(), &a.limits[l as usize]))
                    .to_vec()
            },
        );
        counters(
            out,
            apps,
            ("shoal_app_capability_denials_total", "capability"),
            "Things a capability refused the app, by capability.",
            |a| {
                Denial::ALL
                    .map(|d| (d.label(), &a.denials[d as usize]))
                    .to_vec()
            },
        );
        histograms(
            out,
            apps,
            "shoal_app_outbound_request_duration_seconds",
            "Outgoing HTTP requests the app made, and the time to their response head.",
            |a| &a.outbound,
        );
        for (name, help, gauge) in [
            (
                "shoal_app_instances",
                "Instances of the app alive now: serving, or kept to serve again.",
                (|a: &AppMetrics| &a.live) as fn(&AppMetrics) -> &Gauge,
            ),
            (
                "shoal_app_memory_bytes",
                "Linear memory the app's live instances hold.",
                |a: &AppMetrics| &a.memory,
            ),
        ] {
            out.family(name, help, Kind::Gauge);
            for app in apps.iter().filter(|a| a.responses() > 0) {
                out.sample(name, &app.labels, &[], gauge(app).get());
            }
        }
        for (name, help, pick) in [
            (
                "shoal_app_received_bytes_total",
                "Request body bytes the app read.",
                (|a: &AppMetrics| a.received.get()) as fn(&AppMetrics) -> u64,
            ),
            (
                "shoal_app_sent_bytes_total",
                "Response body bytes the app sent.",
                |a: &AppMetrics| a.sent.get(),
            ),
        ] {
            out.family(name, help, Kind::Counter);
            for app in apps.iter().filter(|a| a.responses() > 0) {
                out.sample(name, &app.labels, &[], pick(app));
            }
        }
    }
}

/// A counter family with one label (`family.1`): every app's counters that `pick` names by
/// that label's value, those at zero left out.
fn counters<'a, I>(
    out: &mut Exposition,
    apps: &'a [Arc<AppMetrics>],
    (name, key): (&str, &str),
    help: &str,
    pick: impl Fn(&'a AppMetrics) -> I,
) where
    I: IntoIterator<Item = (&'static str, &'a Counter)>,
{
    out.family(name, help, Kind::Counter);
    for app in apps {
        for (value, counter) in pick(app) {
            let n = counter.get();
            if n > 0 {
                out.sample(name, &app.labels, &[(key, value)], n);
            }
        }
    }
}

/// A histogram family: the histogram `pick` names of every app that counted anything in it.
fn histograms(
    out: &mut Exposition,
    apps: &[Arc<AppMetrics>],
    name: &str,
    help: &str,
    pick: impl Fn(&AppMetrics) -> &Histogram,
) {
    out.family(name, help, Kind::Histogram);
    for app in apps.iter().filter(|a| pick(a).count() > 0) {
        out.histogram(name, &app.labels, pick(app));
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The status a request is counted with when its client went away before the response
/// started (nginx's "client closed request").
const CLIENT_CLOSED: u16 = 499;

/// An app's answered requests and their durations at one moment (see [`AppMetrics::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// By status class, 1xx … 5xx.
    pub responses: [u64; 5],
    /// Each duration bucket's own count ([`crate::DURATION_BUCKETS`], then past them).
    pub durations: [u64; crate::DURATION_BUCKETS.len() + 1],
}

/// One live instance of an app (see [`AppMetrics::alive`]).
#[derive(Debug)]
pub struct Alive {
    metrics: Arc<AppMetrics>,
    memory: u64,
}

impl Alive {
    /// The instance's memories grew by `bytes` (at creation too).
    pub fn grew(&mut self, bytes: u64) {
        self.memory += bytes;
        self.metrics
            .memory
            .add(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.metrics.live.dec();
        self.metrics
            .memory
            .add(-i64::try_from(self.memory).unwrap_or(i64::MAX));
    }
}

/// One request of an app, from reaching it to the end of its response (or its client going
/// away): counted in flight meanwhile, and by status, duration and bytes sent once dropped.
#[derive(Debug)]
pub struct Request {
    metrics: Arc<AppMetrics>,
    started: Instant,
    status: u16,
    sent: u64,
}

impl Request {
    /// The response started with `status`.
    pub fn answered(&mut self, status: u16) {
        self.status = status;
    }

    /// `bytes` more of the response body were sent.
    pub fn sent(&mut self, bytes: u64) {
        self.sent += bytes;
    }

    /// The app it is a request of.
    pub fn app(&self) -> &AppMetrics {
        &self.metrics
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let m = &self.metrics;
        m.in_flight.dec();
        let class = usize::from(self.status / 100).clamp(1, 5) - 1;
        m.responses[class].inc();
        m.duration.observe(self.started.elapsed());
        m.sent.add(self.sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_app_writes_only_its_in_flight_gauge() {
        let busy = Arc::new(AppMetrics::new("team-a", "web"));
        let idle = Arc::new(AppMetrics::new("default", "x"));
        let mut done = busy.request();
        done.answered(200);
        done.sent(20);
        drop(done);
        busy.received(10);
        let _in_flight = busy.request();
        busy.limit_hit(LimitHit::Cpu);
        busy.denied(Denial::Outbound);
        let mut out = Exposition::new();
        AppMetrics::write_families(&mut out, &[busy.clone(), idle]);
        let text = out.finish();
        let web = "namespace=\"team-a\",app=\"web\"";
        for line in [
            format!("shoal_app_requests_total{{{web},code=\"2xx\"}} 1"),
            format!("shoal_app_requests_in_flight{{{web}}} 1"),
            format!("shoal_app_limit_hits_total{{{web},limit=\"cpu\"}} 1"),
            format!("shoal_app_capability_denials_total{{{web},capability=\"outbound\"}} 1"),
            format!("shoal_app_received_bytes_total{{{web}}} 10"),
            format!("shoal_app_sent_bytes_total{{{web}}} 20"),
            "shoal_app_requests_in_flight{namespace=\"default\",app=\"x\"} 0".to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        let idle_lines = text.lines().filter(|l| l.contains("app=\"x\"")).count();
        assert_eq!(idle_lines, 1, "{text}");
    }
}
