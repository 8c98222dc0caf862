//! What a workload runs, named: content digests, and the one typed reference that
//! `spec.component` (and a file tree's `source`) holds. Parsed here and nowhere else.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::fmt;

/// A content digest, `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a reference does not parse; the text says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    /// Parses `sha256:<64 lowercase hex>`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let hex = text.strip_prefix("sha256:").unwrap_or("");
        let valid = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(ReferenceError(format!(
                "'{text}' is not a sha256:<64 hex digits> digest"
            )))
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// `sha256:` and the first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        short_digest(&self.0)
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A digest cut for people: `sha256:` and the first 12 hex digits (any text: at most 19
/// characters of it).
pub fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An image in an OCI registry: `oci://REGISTRY/REPOSITORY[:TAG][@sha256:…]`.
///
/// Parsed and stored; not yet pulled (a server refuses it until registries are served).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciRef {
    /// `host[:port]`, e.g. `ghcr.io`.
    pub registry: String,
    /// Slash-separated lowercase path, e.g. `acme/hello`.
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// The manifest digest, when given (it wins over the tag).
    pub digest: Option<Digest>,
}

impl OciRef {
    fn parse(text: &str) -> Result<Self, ReferenceError> {
        let hint = "use oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. oci://ghcr.io/acme/hello:1.0";
        let err = |why: &str| ReferenceError(format!("'{text}' {why}; {hint}"));
        let rest = text.strip_prefix("oci://").unwrap_or(text);
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|_| err("has a bad digest"))?),
            ),
            None => (rest, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| err("has no repository"))?;
        let registry_ok = !registry.is_empty()
            && registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !registry_ok {
            return Err(err("has an invalid registry"));
        }
        // A tag follows the last ':' after the last '/'.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(err(
                "has an invalid repository (lowercase letters, digits, '.', '_', '-')",
            ));
        }
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(err("has an invalid tag"));
            }
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// What `spec.component` names: an uploaded blob, a local file (the CLI uploads it and puts
/// its digest here), or an OCI image. A file tree's `source` is a digest or a local directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ComponentRef {
    /// An uploaded blob.
    Digest(Digest),
    /// A path relative to the manifest.
    Path(String),
    /// An image in a registry.
    Oci(OciRef),
}

impl ComponentRef {
    /// Parses a reference: `sha256:…`, `oci://…`, or a local path.
    ///
    /// # Errors
    /// Empty text, a malformed digest or OCI reference, or another URL scheme.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if text.trim().is_empty() {
            return Err(ReferenceError(
                "must name a file or directory relative to the manifest, or a sha256:<digest>"
                    .into(),
            ));
        }
        if text.starts_with("sha256:") {
            return Digest::parse(text).map(Self::Digest);
        }
        if text.starts_with("oci://") {
            return OciRef::parse(text).map(Self::Oci);
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(ReferenceError(match scheme {
                "http" | "https" => format!(
                    "'{text}': fetching components from URLs is not supported; download it and give its path"
                ),
                _ => format!(
                    "'{text}' has an unknown scheme; give a path, a sha256: digest or an oci:// reference"
                ),
            }));
        }
        Ok(Self::Path(text.to_string()))
    }

    /// The digest, when this is one.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Self::Digest(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Digest(d) => d.fmt(f),
            Self::Path(p) => f.write_str(p),
            Self::Oci(o) => o.fmt(f),
        }
    }
}

impl From<Digest> for ComponentRef {
    fn from(d: Digest) -> Self {
        Self::Digest(d)
    }
}

impl Serialize for ComponentRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ComponentRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What kind of WebAssembly binary a file holds, from its first [`WasmKind::HEAD`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core module (layer 0).
    Module,
    /// A component (layer 1).
    Component,
}

impl WasmKind {
    /// Bytes needed to tell the kind.
    pub const HEAD: usize = 8;

    /// The kind of the binary that starts with `head`; `None` if it is not WebAssembly.
    pub fn of(head: &[u8]) -> Option<Self> {
        if head.len() < Self::HEAD || !head.starts_with(b"\0asm") {
            return None;
        }
        // Bytes 6..8 are the layer: 0 for core modules, 1 for components.
        Some(match head[6..8] {
            [0, 0] => Self::Module,
            _ => Self::Component,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_one_place() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            ComponentRef::parse(&d),
            Ok(ComponentRef::Digest(Digest(d.clone())))
        );
        assert_eq!(Digest::parse(&d).unwrap().short(), "sha256:aaaaaaaaaaaa");
        assert!(ComponentRef::parse("sha256:abc").is_err());
        assert_eq!(
            ComponentRef::parse("./hello.wasm"),
            Ok(ComponentRef::Path("./hello.wasm".into()))
        );
        let oci = ComponentRef::parse("oci://ghcr.io/acme/hello:1.0").unwrap();
        assert_eq!(
            oci,
            ComponentRef::Oci(OciRef {
                registry: "ghcr.io".into(),
                repository: "acme/hello".into(),
                tag: Some("1.0".into()),
                digest: None,
            })
        );
        assert_eq!(oci.to_string(), "oci://ghcr.io/acme/hello:1.0");
        let pinned = format!("oci://localhost:5000/hello@{d}");
        let ComponentRef::Oci(o) = ComponentRef::parse(&pinned).unwrap() else {
            panic!("not an OCI reference")
        };
        assert_eq!(
            (o.registry.as_str(), o.tag, o.digest.is_some()),
            ("localhost:5000", None, true)
        );
        for bad in [
            "",
            "oci://ghcr.io",
            "oci://ghcr.io/Acme/x",
            "oci://r/x:bad tag",
            "https://x/y.wasm",
            "ftp://x",
        ] {
            assert!(ComponentRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_are_told_by_their_head() {
        assert_eq!(WasmKind::of(b"\0asm\x01\0\0\0"), Some(WasmKind::Module));
        assert_eq!(
            WasmKind::of(b"\0asm\x0d\0\x01\0"),
            Some(WasmKind::Component)
        );
        assert_eq!(WasmKind::of(b"\0asm"), None);
        assert_eq!(WasmKind::of(b"#!/bin/sh\n"), None);
    }
}
