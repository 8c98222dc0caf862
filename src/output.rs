//! Rendering objects for people: tables, ages, and JSON/YAML.

use chrono::{DateTime, Utc};

/// Output formats of `get`.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table.
    Table,
    /// A table with more columns (for apps: what each is doing now).
    Wide,
    /// The whole object(s) as JSON.
    Json,
    /// The whole object(s) as YAML.
    Yaml,
}

impl Format {
    /// `table` or `wide`: drawn by the command, not serialized.
    pub fn is_table(self) -> bool {
        matches!(self, Self::Table | Self::Wide)
    }
}

/// Prints any serializable value as JSON or YAML.
pub fn print_serialized<T: serde::Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(value)?),
        Format::Table | Format::Wide => unreachable!("tables are printed by their command"),
    }
    Ok(())
}

/// kubectl-style age: `42s`, `5m`, `3h`, `2d`.
pub fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let secs = (now - since).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Each column's width in [`table`]: its widest cell or header.
pub fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

/// Left-aligned columns separated by three spaces, like kubectl.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths = widths(header, rows);
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// An app's recent figures as cells: requests per second, p99 latency, the share answered
/// 5xx, instances alive, their memory; `-` where nothing is known yet.
pub fn stats_cells(s: &shoal_api::AppStats) -> [String; 5] {
    let rate = s.rate().map_or("-".into(), |r| match r {
        r if r >= 100.0 => format!("{r:.0}"),
        r => format!("{r:.1}"),
    });
    let p99 = s.quantile(0.99).map_or("-".into(), |p| match p {
        p if p >= 1.0 => format!("{p:.2}s"),
        p => format!("{:.1}ms", p * 1000.0),
    });
    let errors = s
        .error_ratio()
        .map_or("-".into(), |e| format!("{:.1}%", e * 100.0));
    let memory = match s.memory {
        0 => "0".to_string(),
        b if b < 1 << 20 => format!("{}Ki", b.div_ceil(1 << 10)),
        b => format!("{}Mi", b.div_ceil(1 << 20)),
    };
    [rate, p99, errors, s.instances.to_string(), memory]
}

/// The headers of [`stats_cells`].
pub const STATS_HEADER: [&str; 5] = ["REQ/S", "P99", "ERRORS", "INSTANCES", "MEMORY"];

/// One event as table cells: age, type, reason, `middle` (who reported it, or what it is
/// about), message.
pub fn event_row(e: &shoal_api::Event, middle: String, now: DateTime<Utc>) -> Vec<String> {
    vec![
        age(Some(e.timestamp), now),
        format!("{:?}", e.type_),
        e.reason.to_string(),
        middle,
        e.message.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let now = Utc::now();
        let ago = |s| Some(now - chrono::Duration::seconds(s));
        assert_eq!(age(ago(5), now), "5s");
        assert_eq!(age(ago(600), now), "10m");
        assert_eq!(age(ago(3 * 3600), now), "3h");
        assert_eq!(age(ago(3 * 86400), now), "3d");
        assert_eq!(age(None, now), "-");
    }

    #[test]
    fn tables() {
        let t = table(&["NAME", "STATUS"], &[vec!["hello".into(), "Ready".into()]]);
        assert_eq!(t, "NAME    STATUS\nhello   Ready\n");
    }
}
