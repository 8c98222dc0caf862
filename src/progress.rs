//! Progress of what the CLI waits on: bytes moving (uploads to the server, pushes to a
//! registry, the server's pulls) as bars with size, rate and time left, and waits for a
//! condition (compilation, readiness) as a spinner with its latest state. On a terminal
//! only (stderr); otherwise one plain line per blob when it is done and per state change,
//! so logs of CI jobs stay readable.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Bars for the blobs of one transfer (`verb`: "uploading", "pushing", "pulling").
pub struct Transfers {
    verb: &'static str,
    multi: Option<MultiProgress>,
    blobs: Mutex<HashMap<String, Blob>>,
}

/// One blob in flight.
struct Blob {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
}

impl Transfers {
    /// Bars on stderr if it is a terminal, else plain lines.
    pub fn new(verb: &'static str) -> Arc<Self> {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Self {
            verb,
            multi,
            blobs: Mutex::default(),
        })
    }

    /// Sets how far blob `id` is, in bytes (for progress that arrives as totals).
    pub fn set(&self, id: &str, done: u64) {
        let mut blobs = self.blobs.lock().expect("progress lock");
        if let Some(b) = blobs.get_mut(id) {
            b.done = done;
            if let Some(bar) = &b.bar {
                bar.set_position(done);
            }
        }
    }
}

impl shoal_oci::Progress for Transfers {
    fn start(&self, id: &str, total: u64) {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:28}] {bytes}/{total_bytes} {bytes_per_sec} {eta} left",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{} {}", self.verb, shoal_api::short_digest(id)));
            bar
        });
        self.blobs.lock().expect("progress lock").insert(
            id.to_string(),
            Blob {
                bar,
                total,
                done: 0,
                started: Instant::now(),
            },
        );
    }

    fn advance(&self, id: &str, bytes: u64) {
        let mut blobs = self.blobs.lock().expect("progress lock");
        if let Some(b) = blobs.get_mut(id) {
            b.done += bytes;
            if let Some(bar) = &b.bar {
                bar.set_position(b.done);
            }
        }
    }

    fn finish(&self, id: &str) {
        let Some(b) = self.blobs.lock().expect("progress lock").remove(id) else {
            // Never started: the other side had it.
            if self.multi.is_none() {
                eprintln!(
                    "{} {}: already there",
                    self.verb,
                    shoal_api::short_digest(id)
                );
            }
            return;
        };
        let took = b.started.elapsed();
        // Complete: all of it moved, whatever the last report said.
        let moved = b.total.max(b.done);
        match b.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!(
                "{} {}: {} in {:.1} s ({}/s)",
                self.verb,
                shoal_api::short_digest(id),
                indicatif::HumanBytes(moved),
                took.as_secs_f64(),
                indicatif::HumanBytes((moved as f64 / took.as_secs_f64().max(1e-3)) as u64),
            ),
        }
    }
}

/// A wait for something (`what`, e.g. `app/hello`) to reach a state.
pub struct Wait {
    what: String,
    spinner: Option<ProgressBar>,
    last: String,
}

impl Wait {
    /// A spinner on stderr if it is a terminal, else plain lines.
    pub fn new(what: &str) -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let s = ProgressBar::new_spinner();
            s.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                    .expect("static template"),
            );
            s.set_prefix(what.to_string());
            s.enable_steady_tick(std::time::Duration::from_millis(120));
            s
        });
        Self {
            what: what.into(),
            spinner,
            last: String::new(),
        }
    }

    /// The state is now `state`; a plain line is printed only when it changes.
    pub fn update(&mut self, state: &str) {
        if state == self.last {
            return;
        }
        state.clone_into(&mut self.last);
        match &self.spinner {
            Some(s) => s.set_message(state.to_string()),
            None => eprintln!("{}: {state}", self.what),
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(s) = &self.spinner {
            s.finish_and_clear();
        }
    }
}
