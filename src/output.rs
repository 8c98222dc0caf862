//! Rendering objects for people: tables, ages, and JSON/YAML.

use chrono::{DateTime, Utc};

/// Output formats of `get`.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table.
    Table,
    /// The whole object(s) as JSON.
    Json,
    /// The whole object(s) as YAML.
    Yaml,
}

/// Prints any serializable value as JSON or YAML.
pub fn print_serialized<T: serde::Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(value)?),
        Format::Table => unreachable!("tables are printed by their command"),
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

/// Left-aligned columns separated by three spaces, like kubectl.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
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
