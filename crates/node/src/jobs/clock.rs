//! Wall-clock time for the job controller, which tests can make follow tokio's paused clock.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Wall-clock time for the controller: the system's, or one that follows tokio's clock (so
/// that tests can drive schedules and backoffs with `tokio::time::pause()`).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Option<(Instant, DateTime<Utc>)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { base: None }
    }

    /// `start` now, then advancing with `tokio::time`.
    pub fn following_tokio(start: DateTime<Utc>) -> Self {
        Self {
            base: Some((Instant::now(), start)),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self.base {
            None => Utc::now(),
            Some((at, start)) => {
                start + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }
}
