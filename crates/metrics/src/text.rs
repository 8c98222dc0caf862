//! Prometheus's text exposition format (0.0.4): families with their `# HELP` and `# TYPE`
//! lines, then their samples, every sample of a family before the next family starts.

use crate::primitives::{DURATION_BUCKETS, Histogram};
use std::fmt::Write as _;

/// The content type of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What kind of family a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_bucket` series by `le`, then `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A number as the format writes it.
pub trait Number {
    /// Appends the number to `out`.
    fn write_to(&self, out: &mut String);
}

impl Number for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Number for i64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Number for usize {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Number for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// One scrape's answer, written family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty answer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name`: its help and type. Its samples follow, before the next family.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.word());
        self.out.push('\n');
    }

    /// One sample: `name{labels,extra} value`. `labels` is a set already rendered by
    /// [`labels`] (possibly empty); `extra` are further pairs, escaped here.
    pub fn sample(&mut self, name: &str, labels: &str, extra: &[(&str, &str)], value: impl Number) {
        self.out.push_str(name);
        if !labels.is_empty() || !extra.is_empty() {
            self.out.push('{');
            self.out.push_str(labels);
            for (i, (key, val)) in extra.iter().enumerate() {
                if i > 0 || !labels.is_empty() {
                    self.out.push(',');
                }
                push_pair(&mut self.out, key, val);
            }
            self.out.push('}');
        }
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
    }

    /// A family of one sample without labels: `name` is `value`.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: impl Number) {
        self.family(name, help, kind);
        self.sample(name, "", &[], value);
    }

    /// A histogram family of one histogram without labels.
    pub fn single_histogram(&mut self, name: &str, help: &str, histogram: &Histogram) {
        self.family(name, help, Kind::Histogram);
        self.histogram(name, "", histogram);
    }

    /// The samples of one histogram of the family `name` (already started, of kind
    /// [`Kind::Histogram`]) with `labels`.
    pub fn histogram(&mut self, name: &str, labels: &str, histogram: &Histogram) {
        let cumulative = histogram.cumulative();
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for (i, count) in cumulative.iter().enumerate() {
            le.clear();
            match DURATION_BUCKETS.get(i) {
                Some(bound) => bound.write_to(&mut le),
                None => le.push_str("+Inf"),
            }
            self.sample(&bucket, labels, &[("le", &le)], *count);
        }
        let total = cumulative[cumulative.len() - 1];
        self.sample(
            &format!("{name}_sum"),
            labels,
            &[],
            histogram.sum().as_secs_f64(),
        );
        self.sample(&format!("{name}_count"), labels, &[], total);
    }

    /// The text so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// `pairs` rendered as a label set without its braces (`k="v",…`), values escaped: what
/// [`Exposition::sample`] takes, made once for a series that is written at every scrape.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, val)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_pair(&mut out, key, val);
    }
    out
}

fn push_pair(out: &mut String, key: &str, val: &str) {
    out.push_str(key);
    out.push_str("=\"");
    for c in val.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn families_samples_and_escapes_read_as_the_format_says() {
        let mut e = Exposition::new();
        e.family("x_total", "Things \\ counted.\nTwice.", Kind::Counter);
        let l = labels(&[("app", "a\"b\\c\nd")]);
        e.sample("x_total", &l, &[("code", "2xx")], 3u64);
        e.sample("x_total", "", &[], 4u64);
        e.family("g", "A gauge.", Kind::Gauge);
        e.sample("g", "", &[("k", "v")], f64::INFINITY);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things \\\\ counted.\\nTwice.\n# TYPE x_total counter\n\
             x_total{app=\"a\\\"b\\\\c\\nd\",code=\"2xx\"} 3\nx_total 4\n\
             # HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} +Inf\n"
        );
    }

    #[test]
    fn a_histogram_writes_cumulative_buckets_then_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_millis(40));
        let mut e = Exposition::new();
        e.family("d_seconds", "Durations.", Kind::Histogram);
        e.histogram("d_seconds", "app=\"a\"", &h);
        let text = e.finish();
        assert!(
            text.contains("d_seconds_bucket{app=\"a\",le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{app=\"a\",le=\"0.0025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{app=\"a\",le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{app=\"a\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_sum{app=\"a\"} 0.042\n"), "{text}");
        assert!(text.ends_with("d_seconds_count{app=\"a\"} 2\n"), "{text}");
    }
}
