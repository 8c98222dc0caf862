//! What Shoal measures and how a scrape reads it.
//!
//! The primitives ([`Counter`], [`Gauge`], [`Histogram`]) are relaxed atomics: recording is a
//! few uncontended instructions on the request path, with no lock and no allocation. A scrape
//! renders them with [`Exposition`], Prometheus's text format (version 0.0.4), one family at a
//! time. [`AppMetrics`] is what every app is measured by, wherever on the node it is recorded
//! (the ingress, the runtime, the capabilities); its labels are its namespace and name only,
//! so a node's series grow with its apps and nothing else. A [`Window`] turns an app's
//! cumulative [`Totals`] into figures over the last few seconds (what `shoal top` shows).

mod app;
mod primitives;
mod process;
mod text;
mod window;

pub use app::{Alive, AppMetrics, Denial, LimitHit, Request, Totals};
pub use primitives::{Counter, DURATION_BUCKETS, Gauge, Histogram, Timer};
pub use process::write_process;
pub use text::{CONTENT_TYPE, Exposition, Kind, labels};
pub use window::{SAMPLE_EVERY, Window};
