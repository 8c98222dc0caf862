//! How much of one workload's events reach the node's log. Every event goes to the
//! workload's own log (bounded per app, read with `shoal logs`); the node's log — shared by
//! every tenant, often shipped to journald or a collector — gets at most
//! [`PER_MINUTE`] of them a minute per workload, and a line saying when the rest of that
//! minute's are held back. A guest that makes every request fail, or every outgoing request
//! be denied, fills its own log, not the operator's.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most events of one workload the node's log gets in a minute.
pub const PER_MINUTE: u32 = 10;

/// The window [`PER_MINUTE`] counts in.
const WINDOW: Duration = Duration::from_secs(60);

/// One workload's budget of node-log lines.
#[derive(Default)]
pub(crate) struct Budget(Mutex<Window>);

#[derive(Default)]
struct Window {
    /// When the current window began; `None` before the first event.
    started: Option<Instant>,
    /// Events in it so far.
    events: u32,
}

/// Whether an event goes to the node's log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Echo {
    /// Yes.
    Yes,
    /// Yes, and it is the window's last: say that the rest are held back.
    Last,
    /// No: the window's budget is spent.
    No,
}

impl Budget {
    /// Counts an event at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Echo {
        let mut w = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.started.is_none_or(|s| now.duration_since(s) >= WINDOW) {
            *w = Window {
                started: Some(now),
                events: 0,
            };
        }
        w.events = w.events.saturating_add(1);
        match w.events {
            n if n < PER_MINUTE => Echo::Yes,
            PER_MINUTE => Echo::Last,
            _ => Echo::No,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_gets_per_minute_lines_then_none_until_the_minute_is_over() {
        let budget = Budget::default();
        let t0 = Instant::now();
        let mut said: Vec<Echo> = (0..PER_MINUTE + 5).map(|_| budget.admit(t0)).collect();
        assert_eq!(said.pop(), Some(Echo::No));
        assert_eq!(said[PER_MINUTE as usize - 1], Echo::Last);
        assert!(
            said[..PER_MINUTE as usize - 1]
                .iter()
                .all(|e| *e == Echo::Yes)
        );
        assert_eq!(
            budget.admit(t0 + WINDOW - Duration::from_millis(1)),
            Echo::No
        );
        assert_eq!(budget.admit(t0 + WINDOW), Echo::Yes);
    }
}
