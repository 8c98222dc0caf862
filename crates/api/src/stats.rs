//! What apps are doing now (`GET /v1/namespaces/NS/stats`): the figures `shoal top`, `shoal
//! get apps -o wide` and the dashboard show, summed over the nodes that hold each app.

use serde::{Deserialize, Serialize};

/// One app's activity, summed over the nodes that hold it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStats {
    /// The app's namespace.
    pub namespace: String,
    /// The app's name.
    pub name: String,
    /// Requests answered since the app came to its nodes, by status class (1xx … 5xx).
    pub requests: [u64; 5],
    /// Requests being served now.
    pub in_flight: u64,
    /// Instances alive now: serving, or kept to serve again.
    pub instances: u64,
    /// Bytes of linear memory those instances hold.
    pub memory: u64,
    /// The last few seconds.
    pub recent: Recent,
}

/// An app's requests over a recent window (5 to 10 seconds; empty before a node has sampled
/// the app once).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recent {
    /// How long the window is, in seconds (the longest of the nodes'; 0: not sampled yet).
    pub seconds: f64,
    /// Requests answered per second, by status class (1xx … 5xx).
    pub per_second: [f64; 5],
    /// How many of them took up to each of `bounds`: each bucket's own count, the last one
    /// past every bound.
    pub durations: Vec<u64>,
    /// The buckets' upper bounds, in seconds.
    pub bounds: Vec<f64>,
}

impl AppStats {
    /// Requests answered per second lately; `None` before a window was sampled.
    pub fn rate(&self) -> Option<f64> {
        (self.recent.seconds > 0.0).then(|| self.recent.per_second.iter().sum())
    }

    /// The share of recent requests answered 5xx; `None` when there were none.
    pub fn error_ratio(&self) -> Option<f64> {
        let all: f64 = self.recent.per_second.iter().sum();
        (all > 0.0).then(|| self.recent.per_second[4] / all)
    }

    /// The `q` quantile (0.99: p99) of recent request durations in seconds, interpolated
    /// within its bucket as Prometheus's `histogram_quantile` does; `None` without requests.
    /// Past the last bound it is that bound (the histogram knows no more).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let r = &self.recent;
        let total: u64 = r.durations.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &count) in r.durations.iter().enumerate() {
            if count > 0 && (below + count) as f64 >= rank {
                let Some(&upper) = r.bounds.get(i) else {
                    return r.bounds.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { r.bounds[i - 1] };
                let within = (rank - below as f64) / count as f64;
                return Some(lower + (upper - lower) * within);
            }
            below += count;
        }
        r.bounds.last().copied()
    }

    /// Adds another node's figures for the same app.
    pub fn add(&mut self, other: &AppStats) {
        for (a, b) in self.requests.iter_mut().zip(other.requests) {
            *a += b;
        }
        self.in_flight += other.in_flight;
        self.instances += other.instances;
        self.memory += other.memory;
        let (mine, theirs) = (&mut self.recent, &other.recent);
        if theirs.seconds == 0.0 {
            return;
        }
        mine.seconds = mine.seconds.max(theirs.seconds);
        for (a, b) in mine.per_second.iter_mut().zip(theirs.per_second) {
            *a += b;
        }
        if mine.durations.is_empty() {
            mine.durations = theirs.durations.clone();
            mine.bounds = theirs.bounds.clone();
        } else if mine.bounds == theirs.bounds {
            for (a, b) in mine.durations.iter_mut().zip(&theirs.durations) {
                *a += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_durations(durations: Vec<u64>) -> AppStats {
        AppStats {
            recent: Recent {
                seconds: 5.0,
                per_second: [0.0, 9.0, 0.0, 0.0, 1.0],
                durations,
                bounds: vec![0.001, 0.01, 0.1],
            },
            ..AppStats::default()
        }
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        // 100 requests: 50 up to 1 ms, 40 up to 10 ms, 10 up to 100 ms.
        let s = with_durations(vec![50, 40, 10, 0]);
        assert_eq!(s.quantile(0.5), Some(0.001));
        let p99 = s.quantile(0.99).unwrap();
        assert!((p99 - (0.01 + 0.09 * 0.9)).abs() < 1e-9, "{p99}");
        // Past every bound: the last bound.
        assert_eq!(with_durations(vec![0, 0, 0, 3]).quantile(0.99), Some(0.1));
        assert_eq!(with_durations(vec![0, 0, 0, 0]).quantile(0.99), None);
    }

    #[test]
    fn rates_and_errors_add_across_nodes() {
        let mut a = with_durations(vec![1, 0, 0, 0]);
        a.add(&with_durations(vec![0, 1, 0, 0]));
        assert_eq!(a.rate(), Some(20.0));
        assert_eq!(a.error_ratio(), Some(0.1));
        assert_eq!(a.recent.durations, vec![1, 1, 0, 0]);
        assert_eq!(AppStats::default().rate(), None);
    }
}
