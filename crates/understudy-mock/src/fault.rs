//! What the mock does wrong for one request, and the `+key=value+flag` syntax that names it.
//!
//! The same syntax is used in model names (`gpt-4o+error=rate_limit+retry_after=2`), in
//! Gemini URL paths, and in CLI flags, so [`Fault::parse`] and `Display` round-trip.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A named upstream error, rendered with each provider's real status, body and headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidKey,
    AccountDeactivated,
    Forbidden,
    ModelNotFound,
    ContextLength,
    ContentPolicy,
    RateLimit,
    QuotaExhausted,
    Server,
    BadGateway,
    Unavailable,
    Overloaded,
    BadRequest,
    Timeout,
}

impl ErrorKind {
    /// Every kind, for tests and CLI help.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidKey,
        ErrorKind::AccountDeactivated,
        ErrorKind::Forbidden,
        ErrorKind::ModelNotFound,
        ErrorKind::ContextLength,
        ErrorKind::ContentPolicy,
        ErrorKind::RateLimit,
        ErrorKind::QuotaExhausted,
        ErrorKind::Server,
        ErrorKind::BadGateway,
        ErrorKind::Unavailable,
        ErrorKind::Overloaded,
        ErrorKind::BadRequest,
        ErrorKind::Timeout,
    ];

    /// The snake_case name used in the suffix syntax and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::AccountDeactivated => "account_deactivated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::ContentPolicy => "content_policy",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Server => "server",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Timeout => "timeout",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown error kind `{s}` (known: {})", known.join(", "))
        })
    }
}

/// One fault rule. Every field is optional; the default is a well-behaved provider.
///
/// `error_rate` (default 1) is the probability that the *failure* part applies to a request:
/// `error`, `status`, `hang`, `reset`, the stream breakages (`cut_after`, `stall_after`,
/// `malformed_at`, `error_after`, `no_done`) and the bad answers (`empty`, `truncated`,
/// `content_filter`). Delays and answer shaping (`latency`, `ttft`, `chunk_delay`, `chunks`,
/// `text`, `tool_call`) always apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    /// Raw HTTP status with the provider's generic error body (overrides `error`'s status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` value, verbatim: seconds or an HTTP-date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub latency: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub latency_jitter: Option<Duration>,
    #[serde(skip_serializing_if = "is_false")]
    pub hang: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub reset: bool,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub ttft: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub chunk_delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_after: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_after: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed_at: Option<u32>,
    #[serde(skip_serializing_if = "is_false")]
    pub no_done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_after: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u32>,
    #[serde(skip_serializing_if = "is_false")]
    pub empty: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub truncated: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub content_filter: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub tool_call: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Fault {
    /// Parses the part of a model name after the first `+`, e.g. `error=rate_limit+retry_after=2`.
    /// Values may be double-quoted (`text="a + b"`, with `\"` and `\\` escapes).
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let mut fault = Fault::default();
        for (key, value) in split_items(spec)? {
            fault.apply(&key, value)?;
        }
        Ok(fault)
    }

    /// Splits `base+suffix` into the base model name and the fault suffix (if any).
    pub fn split_model(model: &str) -> (&str, Option<&str>) {
        match model.split_once('+') {
            Some((base, suffix)) => (base, Some(suffix)),
            None => (model, None),
        }
    }

    /// `error_rate` clamped to 0..=1, 1 when unset.
    pub fn effective_error_rate(&self) -> f64 {
        match self.error_rate {
            Some(r) if r.is_nan() => 0.0,
            Some(r) => r.clamp(0.0, 1.0),
            None => 1.0,
        }
    }

    fn apply(&mut self, key: &str, value: Option<String>) -> Result<(), String> {
        let key = key.replace('-', "_");
        match key.as_str() {
            "error" => self.error = Some(required(&key, value)?.parse()?),
            "status" => self.status = Some(parse_status(&required(&key, value)?)?),
            "retry_after" => self.retry_after = Some(non_empty(&key, required(&key, value)?)?),
            "error_rate" => self.error_rate = Some(parse_rate(&required(&key, value)?)?),
            "latency" => self.latency = Some(parse_duration(&key, &required(&key, value)?)?),
            "latency_jitter" => self.latency_jitter = Some(parse_duration(&key, &required(&key, value)?)?),
            "ttft" => self.ttft = Some(parse_duration(&key, &required(&key, value)?)?),
            "chunk_delay" => self.chunk_delay = Some(parse_duration(&key, &required(&key, value)?)?),
            "cut_after" => self.cut_after = Some(parse_count(&key, &required(&key, value)?)?),
            "stall_after" => self.stall_after = Some(parse_count(&key, &required(&key, value)?)?),
            "malformed_at" => self.malformed_at = Some(parse_count(&key, &required(&key, value)?)?),
            "error_after" => self.error_after = Some(parse_count(&key, &required(&key, value)?)?),
            "chunks" => self.chunks = Some(parse_count(&key, &required(&key, value)?)?),
            "text" => self.text = Some(required(&key, value)?),
            "hang" => self.hang = parse_flag(&key, value)?,
            "reset" => self.reset = parse_flag(&key, value)?,
            "no_done" => self.no_done = parse_flag(&key, value)?,
            "empty" => self.empty = parse_flag(&key, value)?,
            "truncated" => self.truncated = parse_flag(&key, value)?,
            "content_filter" => self.content_filter = parse_flag(&key, value)?,
            "tool_call" => self.tool_call = parse_flag(&key, value)?,
            _ => return Err(format!("unknown fault key `{key}` (known: {})", KEYS.join(", "))),
        }
        Ok(())
    }
}

const KEYS: [&str; 21] = [
    "error",
    "status",
    "retry_after",
    "error_rate",
    "latency",
    "latency_jitter",
    "hang",
    "reset",
    "ttft",
    "chunk_delay",
    "cut_after",
    "stall_after",
    "malformed_at",
    "no_done",
    "error_after",
    "chunks",
    "empty",
    "truncated",
    "content_filter",
    "text",
    "tool_call",
];

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Fault::parse(s)
    }
}

/// Renders the suffix syntax (without the leading `+`); `Fault::parse` reads it back.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        let mut kv = |k: &str, v: String| items.push(format!("{k}={}", quote_if_needed(&v)));
        if let Some(e) = self.error {
            kv("error", e.to_string());
        }
        if let Some(s) = self.status {
            kv("status", s.to_string());
        }
        if let Some(r) = &self.retry_after {
            kv("retry_after", r.clone());
        }
        if let Some(r) = self.error_rate {
            kv("error_rate", r.to_string());
        }
        let durations = [
            ("latency", self.latency),
            ("latency_jitter", self.latency_jitter),
            ("ttft", self.ttft),
            ("chunk_delay", self.chunk_delay),
        ];
        for (k, d) in durations {
            if let Some(d) = d {
                kv(k, format_duration(d));
            }
        }
        let counts = [
            ("cut_after", self.cut_after),
            ("stall_after", self.stall_after),
            ("malformed_at", self.malformed_at),
            ("error_after", self.error_after),
            ("chunks", self.chunks),
        ];
        for (k, n) in counts {
            if let Some(n) = n {
                kv(k, n.to_string());
            }
        }
        if let Some(t) = &self.text {
            kv("text", t.clone());
        }
        let flags = [
            ("hang", self.hang),
            ("reset", self.reset),
            ("no_done", self.no_done),
            ("empty", self.empty),
            ("truncated", self.truncated),
            ("content_filter", self.content_filter),
            ("tool_call", self.tool_call),
        ];
        for (k, on) in flags {
            if on {
                items.push(k.to_string());
            }
        }
        f.write_str(&items.join("+"))
    }
}

fn quote_if_needed(v: &str) -> String {
    if !v.is_empty() && !v.contains(['+', '"', '\\']) {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits `k=v+flag+k2="quoted + value"` into items; empty items (`a++b`) are skipped.
fn split_items(spec: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut items = Vec::new();
    let mut chars = spec.chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == '+' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let value = match chars.next() {
            Some('=') => Some(read_value(&mut chars, &key)?),
            _ => None,
        };
        let key = key.trim().to_string();
        if key.is_empty() {
            if value.is_some() {
                return Err("fault item with a value but no key".to_string());
            }
            continue;
        }
        items.push((key, value));
    }
    Ok(items)
}

/// Reads a value up to the next `+` (consumed), honouring double quotes.
fn read_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, key: &str) -> Result<String, String> {
    let mut value = String::new();
    if chars.peek() != Some(&'"') {
        for c in chars.by_ref() {
            if c == '+' {
                break;
            }
            value.push(c);
        }
        return Ok(value);
    }
    chars.next();
    loop {
        match chars.next() {
            None => return Err(format!("unterminated quote in the value of `{key}`")),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some(c) => value.push(c),
                None => return Err(format!("dangling escape in the value of `{key}`")),
            },
            Some(c) => value.push(c),
        }
    }
    match chars.next() {
        None | Some('+') => Ok(value),
        Some(c) => Err(format!("unexpected `{c}` after the quoted value of `{key}`")),
    }
}

fn required(key: &str, value: Option<String>) -> Result<String, String> {
    value.ok_or_else(|| format!("fault key `{key}` needs a value (`{key}=...`)"))
}

fn non_empty(key: &str, value: String) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(format!("fault key `{key}` needs a non-empty value"));
    }
    Ok(value)
}

fn parse_status(v: &str) -> Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(s) if (400..=599).contains(&s) => Ok(s),
        _ => Err(format!("`status` must be an HTTP error status 400..=599, got `{v}`")),
    }
}

fn parse_rate(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("`error_rate` must be a number in 0..=1, got `{v}`")),
    }
}

fn parse_count(key: &str, v: &str) -> Result<u32, String> {
    v.trim().parse::<u32>().map_err(|_| format!("`{key}` must be a non-negative integer, got `{v}`"))
}

fn parse_flag(key: &str, value: Option<String>) -> Result<bool, String> {
    match value.as_deref().map(str::trim) {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(format!("`{key}` is a flag (`+{key}` or `{key}=true|false`), got `{v}`")),
    }
}

/// Human-readable durations (`600ms`, `2s`, `1m 30s`); a bare number is refused as ambiguous.
pub(crate) fn parse_duration(key: &str, v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|e| format!("`{key}` must be a duration such as 600ms or 2s, got `{v}` ({e})"))
}

/// Compact rendering that `parse_duration` reads back: `2s`, `600ms`, else humantime's form.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_millis() * 1_000_000 == d.subsec_nanos() {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// Serde for optional durations as human-readable strings.
mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        raw.map(|v| super::parse_duration("duration", &v).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_examples() {
        let f = Fault::parse("error=rate_limit+retry_after=2").unwrap();
        assert_eq!(f.error, Some(ErrorKind::RateLimit));
        assert_eq!(f.retry_after.as_deref(), Some("2"));
        let f = Fault::parse("latency=600ms").unwrap();
        assert_eq!(f.latency, Some(Duration::from_millis(600)));
        assert!(Fault::parse("hang").unwrap().hang);
        assert_eq!(Fault::parse("cut_after=3").unwrap().cut_after, Some(3));
        assert_eq!(Fault::parse("").unwrap(), Fault::default());
    }

    #[test]
    fn splits_model_names_at_the_first_plus() {
        assert_eq!(Fault::split_model("gpt-4o"), ("gpt-4o", None));
        assert_eq!(Fault::split_model("m+hang+x=1"), ("m", Some("hang+x=1")));
    }

    #[test]
    fn quoted_values_keep_plus_and_escapes() {
        let f = Fault::parse(r#"text="a + \"b\" \\ c"+hang"#).unwrap();
        assert_eq!(f.text.as_deref(), Some(r#"a + "b" \ c"#));
        assert!(f.hang);
    }

    #[test]
    fn http_date_retry_after_is_kept_verbatim() {
        let f = Fault::parse("error=rate_limit+retry_after=Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(f.retry_after.as_deref(), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    }

    #[test]
    fn every_field_parses() {
        let spec = "error=overloaded+status=503+retry_after=1+error_rate=0.5+latency=1s+latency_jitter=20ms\
                    +hang+reset+ttft=2s+chunk_delay=5ms+cut_after=1+stall_after=2+malformed_at=3+no_done\
                    +error_after=4+chunks=9+empty+truncated+content_filter+text=hi+tool_call";
        let f = Fault::parse(spec).unwrap();
        assert_eq!(f.status, Some(503));
        assert_eq!(f.error_rate, Some(0.5));
        assert_eq!(f.chunks, Some(9));
        assert!(f.hang && f.reset && f.no_done && f.empty && f.truncated && f.content_filter && f.tool_call);
        assert_eq!(Fault::parse(&f.to_string()).unwrap(), f);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            "error=nope",
            "error",
            "latency=600",
            "latency=fast",
            "status=200",
            "status=abc",
            "error_rate=2",
            "error_rate=-0.1",
            "cut_after=-1",
            "hang=maybe",
            "frobnicate",
            "text=\"open",
            "text=\"a\"b",
            "=5",
            "retry_after=",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad} should be refused");
        }
        let msg = Fault::parse("error=nope").unwrap_err();
        assert!(msg.contains("rate_limit"), "{msg}");
    }

    #[test]
    fn dashes_and_empty_items_are_tolerated() {
        let f = Fault::parse("retry-after=3++hang+").unwrap();
        assert_eq!(f.retry_after.as_deref(), Some("3"));
        assert!(f.hang);
    }

    #[test]
    fn json_uses_duration_strings_and_rejects_unknown_fields() {
        let f: Fault = serde_json::from_str(r#"{"error":"server","latency":"250ms"}"#).unwrap();
        assert_eq!(f.latency, Some(Duration::from_millis(250)));
        let back = serde_json::to_value(&f).unwrap();
        assert_eq!(back, serde_json::json!({"error":"server","latency":"250ms"}));
        assert!(serde_json::from_str::<Fault>(r#"{"eror":"server"}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"latency":600}"#).is_err());
    }

    #[test]
    fn error_rate_defaults_to_one_and_clamps() {
        assert_eq!(Fault::default().effective_error_rate(), 1.0);
        let f = Fault { error_rate: Some(3.0), ..Fault::default() };
        assert_eq!(f.effective_error_rate(), 1.0);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,64}") {
            let _ = Fault::parse(&s);
        }

        #[test]
        fn text_round_trips(t in ".{0,32}") {
            let f = Fault { text: Some(t), tool_call: true, ..Fault::default() };
            proptest::prop_assert_eq!(Fault::parse(&f.to_string()).unwrap(), f);
        }
    }
}
