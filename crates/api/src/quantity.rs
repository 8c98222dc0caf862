//! Quantities (`64Mi`) and durations (`100ms`) as users write them in specs.

use crate::InvalidValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A byte quantity in Kubernetes notation (`64Mi`, `1Gi`, `500k`, `1048576`); keeps the user's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    bytes: u64,
}

impl Quantity {
    /// Parses `text`; the error says what a valid quantity looks like.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::parse_text(text).map_err(InvalidValue::from)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        let err = || format!("'{text}' is not a quantity; use e.g. 64Mi, 1Gi or 500k");
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, suffix) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| err())?;
        let mult: u64 = match suffix {
            "" => 1,
            "k" => 1000,
            "M" => 1000u64.pow(2),
            "G" => 1000u64.pow(3),
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            _ => return Err(err()),
        };
        let bytes = n.checked_mul(mult).ok_or_else(err)?;
        Ok(Self {
            text: t.to_string(),
            bytes,
        })
    }

    /// The quantity in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = StringOrInt::deserialize(d)?;
        Quantity::parse(&v.0).map_err(serde::de::Error::custom)
    }
}

/// A duration as users write it: `250ms`, `30s`, `5m`, `1h`; keeps the user's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationSpec {
    text: String,
    value: Duration,
}

impl DurationSpec {
    /// The longest duration: 10 years. Every deadline (`now + d`) and every date (`now - d`)
    /// of a longer one could overflow, so none is taken.
    pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

    /// Parses `text`; the error says what a valid duration looks like.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::parse_text(text).map_err(InvalidValue::from)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        let err = || format!("'{text}' is not a duration; use e.g. 100ms, 30s or 5m");
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| err())?;
        let value = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
            _ => return Err(err()),
        };
        if value > Self::MAX {
            return Err(format!(
                "'{text}' is longer than the longest duration Shoal takes, {}h (10 years)",
                Self::MAX.as_secs() / 3600
            ));
        }
        Ok(Self {
            text: t.to_string(),
            value,
        })
    }

    /// The duration.
    pub fn get(&self) -> Duration {
        self.value
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        DurationSpec::parse(&v).map_err(serde::de::Error::custom)
    }
}

/// Accepts `64Mi` as well as a bare YAML integer for byte counts.
struct StringOrInt(String);

impl<'de> Deserialize<'de> for StringOrInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StringOrInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 64Mi")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StringOrInt, E> {
                Ok(StringOrInt(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StringOrInt, E> {
                Ok(StringOrInt(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StringOrInt, E> {
                Ok(StringOrInt(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases = [
            ("64Mi", 64 << 20),
            ("1Gi", 1 << 30),
            ("500k", 500_000),
            ("1024", 1024),
        ];
        for (text, bytes) in cases {
            assert_eq!(Quantity::parse(text).unwrap().bytes(), bytes, "{text}");
        }
        assert_eq!(
            Quantity::parse("64MB").unwrap_err(),
            "'64MB' is not a quantity; use e.g. 64Mi, 1Gi or 500k"
        );
        assert!(Quantity::parse("Mi").is_err());
        assert!(Quantity::parse("99999999999999Ti").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            DurationSpec::parse("100ms").unwrap().get(),
            Duration::from_millis(100)
        );
        assert_eq!(
            DurationSpec::parse("5m").unwrap().get(),
            Duration::from_secs(300)
        );
        assert_eq!(
            DurationSpec::parse("10").unwrap_err(),
            "'10' is not a duration; use e.g. 100ms, 30s or 5m"
        );
        assert_eq!(
            DurationSpec::parse("87600h").unwrap().get(),
            DurationSpec::MAX
        );
        for huge in [
            "87601h",
            "3000000000h",
            "2562047788015215h",
            "18446744073709551615ms",
        ] {
            assert_eq!(
                DurationSpec::parse(huge).unwrap_err().to_string(),
                format!(
                    "'{huge}' is longer than the longest duration Shoal takes, 87600h (10 years)"
                )
            );
        }
    }
}
