//! Figures over the last few seconds (request rate, recent durations) from cumulative
//! counters: a node samples every app's [`Totals`] every [`SAMPLE_EVERY`], and a reader
//! subtracts the oldest sample it keeps from the totals now.

use crate::app::Totals;
use std::time::{Duration, Instant};

/// How often a node samples its apps' totals; a window spans one to two periods.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The two latest samples of one app's totals.
#[derive(Debug, Default)]
pub struct Window {
    newer: Option<(Instant, Totals)>,
    older: Option<(Instant, Totals)>,
}

impl Window {
    /// Keeps `totals`, taken at `at`, as the newest sample.
    pub fn sample(&mut self, at: Instant, totals: Totals) {
        self.older = self.newer.replace((at, totals));
    }

    /// What happened between the oldest sample at least a second old and `now`, when the
    /// totals are `current`: the window's length and the totals' growth in it.
    pub fn since(&self, now: Instant, current: &Totals) -> Option<(Duration, Totals)> {
        let (at, then) = [self.older, self.newer]
            .into_iter()
            .flatten()
            .find(|(at, _)| now.saturating_duration_since(*at) >= Duration::from_secs(1))?;
        let grown = Totals {
            responses: std::array::from_fn(|i| {
                current.responses[i].saturating_sub(then.responses[i])
            }),
            durations: std::array::from_fn(|i| {
                current.durations[i].saturating_sub(then.durations[i])
            }),
        };
        Some((now.saturating_duration_since(at), grown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(ok: u64) -> Totals {
        Totals {
            responses: [0, ok, 0, 0, 0],
            ..Totals::default()
        }
    }

    #[test]
    fn a_window_counts_from_its_oldest_sample_of_at_least_a_second() {
        let start = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.since(start, &totals(1)), None);
        w.sample(start, totals(10));
        // Too fresh to make a rate of.
        assert_eq!(
            w.since(start + Duration::from_millis(500), &totals(11)),
            None
        );
        let (took, grown) = w
            .since(start + Duration::from_secs(2), &totals(30))
            .unwrap();
        assert_eq!((took, grown.responses[1]), (Duration::from_secs(2), 20));
        w.sample(start + Duration::from_secs(5), totals(50));
        // The older sample spans more.
        let (took, grown) = w
            .since(start + Duration::from_secs(6), &totals(60))
            .unwrap();
        assert_eq!((took, grown.responses[1]), (Duration::from_secs(6), 50));
    }
}
