//! Value types of the configuration: human durations, byte sizes, `${ENV}` strings, secrets.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `30s`, `1500ms`, `2m`, `1h 30m`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?} ({e}); write e.g. 30s, 1500ms, 2m")))
    }
}

impl From<HumanDuration> for Duration {
    fn from(h: HumanDuration) -> Duration {
        h.0
    }
}

/// A byte count: an integer, or `512KB`, `10MB`, `1MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_bytes(&s).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!("invalid size {s:?}; write e.g. 1048576, 512KB, 10MB"))
            }),
        }
    }
}

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let mult = match s[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A string in which `${VAR}` (and `${VAR:-default}`) is replaced from the environment when the
/// configuration is loaded. Variables that are unset are recorded so that loading can name them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnvString {
    pub value: String,
    /// Names of referenced variables that were unset (and had no default).
    pub missing: Vec<String>,
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        interpolate(&raw, |k| std::env::var(k).ok()).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn interpolate(raw: &str, env: impl Fn(&str) -> Option<String>) -> Result<EnvString, String> {
    let mut value = String::with_capacity(raw.len());
    let mut missing = Vec::new();
    let mut rest = raw;
    while let Some(i) = rest.find("${") {
        value.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated ${{ in {raw:?}"));
        };
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {name:?} in {raw:?}"));
        }
        match (env(name), default) {
            (Some(v), _) if !v.is_empty() => value.push_str(&v),
            (_, Some(d)) => value.push_str(d),
            (v, None) => {
                value.push_str(&v.unwrap_or_default());
                missing.push(name.to_string());
            }
        }
        rest = &after[end + 1..];
    }
    value.push_str(rest);
    Ok(EnvString { value, missing })
}

/// A credential: never printed by `Debug`, never logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(EnvString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(EnvString { value: s.into(), missing: vec![] })
    }

    pub fn expose(&self) -> &str {
        &self.0.value
    }

    pub fn is_empty(&self) -> bool {
        self.0.value.is_empty()
    }

    pub fn missing_vars(&self) -> &[String] {
        &self.0.missing
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() { "<empty>" } else { "<redacted>" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        EnvString::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation() {
        let env = |k: &str| match k {
            "A" => Some("alpha".to_string()),
            _ => None,
        };
        assert_eq!(interpolate("x-${A}-y", env).unwrap().value, "x-alpha-y");
        let e = interpolate("${B}", env).unwrap();
        assert_eq!((e.value.as_str(), e.missing.as_slice()), ("", &["B".to_string()][..]));
        assert_eq!(interpolate("${B:-dflt}", env).unwrap().value, "dflt");
        assert!(interpolate("${A", env).is_err());
        assert!(interpolate("${A B}", env).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("10MB"), Some(10_000_000));
        assert_eq!(parse_bytes("1MiB"), Some(1 << 20));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("1 PB"), None);
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("sk-123")), "<redacted>");
    }
}
