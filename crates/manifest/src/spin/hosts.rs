//! `allowed_outbound_hosts` in Spin's syntax, turned into Shoal's allow-list entries
//! (`spec.capabilities.outbound`).
//!
//! Spin's `scheme://host[:port]` with `*` for the scheme, the host or the port, `*.domain`
//! subdomains and `a..b` port ranges. Shoal's outbound capability speaks HTTP only, so a
//! `*` scheme becomes `http` and `https`, and entries for other schemes (redis, mysql,
//! postgres, mqtt: interfaces this node does not provide) are dropped with a note.

/// Most ports one `a..b` range may expand to.
const MAX_RANGE: u32 = 64;

/// What one Spin entry becomes.
pub(crate) struct Translated {
    /// Shoal allow-list entries.
    pub entries: Vec<String>,
    /// What was dropped, and why.
    pub note: Option<String>,
}

/// Translates one (template-expanded) entry.
///
/// # Errors
/// The entry is malformed, as Spin would refuse it, or uses what Shoal cannot enforce.
pub(crate) fn translate(entry: &str) -> Result<Translated, String> {
    let entry = entry.trim();
    if entry == "insecure:allow-all" {
        return Err(
            "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic".into(),
        );
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return Err(if matches!(entry, "*" | ":" | "" | "?") {
            format!(
                "\"{entry}\" is not an allowed outbound host format; hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each (all outbound networking: '*://*:*')"
            )
        } else {
            format!("\"{entry}\" does not contain a scheme (e.g., 'http://' or '*://')")
        });
    };
    if scheme.contains('{') {
        return Err(format!("\"{entry}\": scheme lists are not supported"));
    }
    if scheme != "*" && !scheme.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "\"{entry}\": invalid scheme '{scheme}': only alphabetic characters are allowed"
        ));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = split_port(rest);
    if host.contains('{') {
        return Err(format!("\"{entry}\": host lists are not yet supported"));
    }
    if host.contains('/') {
        if host
            .split('/')
            .next()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        {
            return Err(format!(
                "\"{entry}\": IP address ranges are not supported by Shoal; name each address"
            ));
        }
        return Err(format!("\"{entry}\": the host must not include a path"));
    }
    if host.is_empty() {
        return Err(format!("\"{entry}\": the host is empty"));
    }
    // `self` (the application's own routes) stays, and is served in memory by the node;
    // `self.alt` (the same through the network) is not routed.
    if host.starts_with("self.") {
        return Ok(Translated {
            entries: Vec::new(),
            note: Some(format!(
                "\"{entry}\": requests to the app itself through the network are not routed by Shoal; `http://self` is; the entry is dropped"
            )),
        });
    }
    if host.contains('*') && host != "*" && host.strip_prefix("*.").is_none_or(|d| d.contains('*'))
    {
        return Err(format!(
            "\"{entry}\": wildcards are allowed only as subdomains (*.example.com) or as the whole host"
        ));
    }
    let schemes: Vec<&str> = match scheme.to_ascii_lowercase().as_str() {
        "*" => vec!["http", "https"],
        "http" => vec!["http"],
        "https" => vec!["https"],
        other => {
            return Ok(Translated {
                entries: Vec::new(),
                note: Some(format!(
                    "\"{entry}\": Shoal sends only HTTP; {other} connections are refused whatever the manifest allows, so the entry is dropped"
                )),
            });
        }
    };
    let ports: Vec<String> = match port {
        None => vec![String::new()],
        Some("*") => vec![":*".into()],
        Some(p) if p.contains(',') => {
            return Err(format!("\"{entry}\": port lists are not yet supported"));
        }
        Some(p) => match p.split_once("..") {
            Some((a, b)) => {
                let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) else {
                    return Err(format!(
                        "\"{entry}\": port range \"{p}\" contains non-number"
                    ));
                };
                if u32::from(b).saturating_sub(u32::from(a)) > MAX_RANGE {
                    return Err(format!(
                        "\"{entry}\": port range \"{p}\" spans more than {MAX_RANGE} ports; Shoal allows single ports, short ranges or '*'"
                    ));
                }
                (a..b).map(|p| format!(":{p}")).collect()
            }
            None => {
                if p.parse::<u16>().is_err() {
                    return Err(format!("\"{entry}\": port \"{p}\" is not a number"));
                }
                vec![format!(":{p}")]
            }
        },
    };
    let mut entries = Vec::new();
    for scheme in schemes {
        for port in &ports {
            entries.push(format!("{scheme}://{host}{port}"));
        }
    }
    Ok(Translated {
        entries,
        note: None,
    })
}

/// `host[:port]` or `[v6][:port]`.
fn split_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.split_once("]:") {
            Some((h, p)) => (&s[..h.len() + 1], Some(p)),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(entry: &str) -> Vec<String> {
        translate(entry).unwrap().entries
    }

    #[test]
    fn spin_hosts() {
        assert_eq!(ok("https://example.com"), ["https://example.com"]);
        assert_eq!(
            ok("*://api.example.com:*"),
            ["http://api.example.com:*", "https://api.example.com:*"]
        );
        assert_eq!(ok("https://*.example.com/"), ["https://*.example.com"]);
        assert_eq!(ok("http://*:*"), ["http://*:*"]);
        assert_eq!(ok("http://[::1]:8080"), ["http://[::1]:8080"]);
        assert_eq!(
            ok("http://localhost:8000..8002"),
            ["http://localhost:8000", "http://localhost:8001"]
        );
        assert!(translate("redis://cache:6379").unwrap().note.is_some());
        assert_eq!(ok("http://self"), ["http://self"]);
        assert!(translate("http://self.alt").unwrap().note.is_some());
        for bad in [
            "example.com",
            "*",
            "insecure:allow-all",
            "ht1p://x",
            "http://a.*.com",
            "http://10.0.0.0/8:80",
            "http://x:port",
            "{http,https}://x",
        ] {
            assert!(translate(bad).is_err(), "{bad}");
        }
    }
}
