//! The outbound HTTP capability's spec: allow-list entries (`spec.capabilities.outbound`) and
//! how a destination is matched.
//!
//! An entry is `scheme://host[:port]`: `host` may be `*` (any host), `*.example.com` (any
//! subdomain, not the apex), an IPv4 literal or a bracketed IPv6 literal; `port` may be `*`; without a port, the
//! scheme's default port. Matching is on the parsed destination only — never on headers.

use crate::{FieldError, InvalidValue, WorkloadSpec, fail, host_ip, normalise_host};
use std::fmt;
use std::net::IpAddr;

/// The capability's name, as the host's list of capabilities calls it.
pub const NAME: &str = "outbound";

/// The import names (prefixes) through which it is granted: outgoing HTTP (WASI 0.2 and 0.3, and Spin's), and sockets (never granted).
pub const INTERFACES: &[&str] = &[
    "wasi:http/outgoing-handler",
    "wasi:http/client",
    "fermyon:spin/http",
    "spin:http/",
    "wasi:sockets/",
];

/// The allow-list entries `spec` lists (only Apps have any).
pub fn entries(spec: WorkloadSpec<'_>) -> &[String] {
    match spec {
        WorkloadSpec::App(app) => &app.capabilities.outbound,
        WorkloadSpec::Job(_) => &[],
    }
}

/// The parsed allow-list of `spec`.
///
/// # Errors
/// An entry does not parse (a validated spec never has one).
pub fn rules(spec: WorkloadSpec<'_>) -> Result<Vec<OutboundRule>, FieldError> {
    entries(spec)
        .iter()
        .enumerate()
        .map(|(i, e)| {
            OutboundRule::parse(e)
                .map_err(|m| FieldError::new(format!("spec.capabilities.outbound[{i}]"), m))
        })
        .collect()
}

/// Every entry parses.
///
/// # Errors
/// The first entry that does not.
pub fn validate(spec: WorkloadSpec<'_>) -> Result<(), FieldError> {
    for (i, entry) in entries(spec).iter().enumerate() {
        if let Err(m) = OutboundRule::parse(entry) {
            return fail(format!("spec.capabilities.outbound[{i}]"), m);
        }
    }
    Ok(())
}

/// The host part of an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Any host (internal addresses still only when named exactly).
    Any,
    /// Exactly this DNS name (lowercase, no trailing dot).
    Exact(String),
    /// Any strict subdomain of this name: `*.example.com` matches `a.example.com`.
    Subdomain(String),
    /// Exactly this IP address.
    Ip(IpAddr),
}

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// `http` or `https`.
    pub scheme: String,
    /// Which hosts.
    pub host: HostPattern,
    /// `None` means any port.
    pub port: Option<u16>,
}

/// Where a request is going, as parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `http` or `https`, lowercase.
    pub scheme: String,
    /// The host as [`normalise_host`] leaves it (an IPv6 literal in brackets).
    pub host: String,
    /// Explicit or default port.
    pub port: u16,
}

/// The default port of a scheme Shoal can send to.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OutboundRule {
    /// Parses an allow-list entry; the error says what a valid one looks like.
    pub fn parse(entry: &str) -> Result<Self, InvalidValue> {
        Self::parse_entry(entry).map_err(InvalidValue::from)
    }

    fn parse_entry(entry: &str) -> Result<Self, String> {
        let hint = "use scheme://host[:port], e.g. https://api.example.com, https://*.example.com or http://10.0.0.5:8080";
        let err = |why: &str| format!("'{entry}' {why}; {hint}");
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| err("has no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if default_port(&scheme).is_none() {
            return Err(err("has a scheme other than http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(err("has a path, query or fragment"));
        }
        if rest.contains('@') {
            return Err(err("contains user information"));
        }
        let (host, port) =
            split_host_port(rest).ok_or_else(|| err("has an invalid host or port"))?;
        let port = match port {
            None => default_port(&scheme),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| err("has an invalid port"))?,
            ),
        };
        let host_norm = normalise_host(host);
        let host = if host_norm == "*" {
            HostPattern::Any
        } else if let Some(ip) = host_ip(&host_norm) {
            HostPattern::Ip(ip)
        } else if let Some(domain) = host_norm.strip_prefix("*.") {
            if !is_dns_name(domain) {
                return Err(err("has an invalid wildcard host"));
            }
            HostPattern::Subdomain(domain.to_string())
        } else if is_dns_name(&host_norm) {
            HostPattern::Exact(host_norm)
        } else {
            return Err(err("has an invalid host"));
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether `dest` is allowed by this rule.
    pub fn allows(&self, dest: &Destination) -> bool {
        if self.scheme != dest.scheme || self.port.is_some_and(|p| p != dest.port) {
            return false;
        }
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == dest.host,
            HostPattern::Subdomain(d) => dest
                .host
                .strip_suffix(d.as_str())
                .is_some_and(|p| p.len() > 1 && p.ends_with('.')),
            HostPattern::Ip(ip) => host_ip(&dest.host) == Some(*ip),
        }
    }

    /// Whether this rule names `ip` exactly (the only way to reach a private address), or
    /// names `localhost` and `ip` is a loopback address (`localhost` is never looked up: it is
    /// the loopback interface, RFC 6761).
    pub fn names_ip(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostPattern::Ip(named) => *named == ip,
            HostPattern::Exact(h) => h == LOCALHOST && ip.is_loopback(),
            _ => false,
        }
    }
}

/// The one name that reaches the node's loopback interface when an entry names it.
pub const LOCALHOST: &str = "localhost";

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Any => "*".to_string(),
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Subdomain(d) => format!("*.{d}"),
            HostPattern::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            HostPattern::Ip(ip) => ip.to_string(),
        };
        match self.port {
            Some(p) => write!(f, "{}://{host}:{p}", self.scheme),
            None => write!(f, "{}://{host}:*", self.scheme),
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        return match after {
            "" => Some((&s[..v6.len() + 2], None)),
            p => Some((&s[..v6.len() + 2], Some(p.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((s, None)),
    }
    .filter(|(h, _)| !h.is_empty())
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Whether an address is one a guest must not reach unless an entry names it exactly:
/// loopback, private, link-local (which includes cloud metadata at 169.254.169.254),
/// unique-local and site-local, unspecified, broadcast, documentation, benchmarking
/// (198.18.0.0/15) and shared (CGNAT) ranges, and every IPv6 form that carries or reaches an
/// IPv4 address: mapped, compatible, 6to4 (2002::/16), Teredo (2001::/32) and NAT64
/// (64:ff9b::/96, 64:ff9b:1::/48).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated, still routed inside)
                || s[0] == 0x2002 // 6to4: an IPv4 address inside
                || (s[0] == 0x2001 && s[1] == 0) // Teredo: an IPv4 address inside
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0) // IPv4-compatible
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (both prefixes) reaches IPv4 internals
                || s[0] == 0x2001 && s[1] == 0xdb8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(scheme: &str, host: &str, port: u16) -> Destination {
        Destination {
            scheme: scheme.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_entries() {
        let r = OutboundRule::parse("HTTPS://API.Example.com.").unwrap();
        assert_eq!(r.to_string(), "https://api.example.com:443");
        assert_eq!(
            OutboundRule::parse("http://*.example.com:*")
                .unwrap()
                .to_string(),
            "http://*.example.com:*"
        );
        assert_eq!(
            OutboundRule::parse("http://[::1]:8080")
                .unwrap()
                .to_string(),
            "http://[::1]:8080"
        );
        assert_eq!(
            OutboundRule::parse("http://127.0.0.1:9").unwrap().host,
            HostPattern::Ip("127.0.0.1".parse().unwrap())
        );
        for bad in [
            "api.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "https://exa mple.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://*.*.com",
            "https://",
        ] {
            assert!(OutboundRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_destinations() {
        let exact = OutboundRule::parse("https://api.example.com").unwrap();
        let wild = OutboundRule::parse("https://*.example.com:*").unwrap();
        let cases = [
            (&exact, dest("https", "api.example.com", 443), true),
            (&exact, dest("https", "api.example.com", 8443), false),
            (&exact, dest("http", "api.example.com", 443), false),
            (&exact, dest("https", "example.com", 443), false),
            (&exact, dest("https", "evil.api.example.com", 443), false),
            (
                &exact,
                dest("https", "api.example.com.evil.net", 443),
                false,
            ),
            (&wild, dest("https", "a.example.com", 8443), true),
            (&wild, dest("https", "a.b.example.com", 443), true),
            (&wild, dest("https", "example.com", 443), false),
            (&wild, dest("https", "badexample.com", 443), false),
        ];
        for (rule, d, want) in cases {
            assert_eq!(rule.allows(&d), want, "{rule} vs {d:?}");
        }
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "fec0::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "198.20.0.1",
            "2606:4700::1111",
            "2001:4860::8888",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
