//! Anthropic errors: [`encode`] a gateway error in the caller's shape, [`classify`] a provider's
//! error answer into a [`Failure`].
//!
//! Classification reads `error.type` first, then the status; message text is read only where
//! Anthropic leaves no other signal (context overflow, the workspace spend limit, prefill).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Map, Value};

use crate::canonical::Dialect;
use crate::failure::{Failure, FailureClass};
use crate::wire::retry_after::{self, MAX_HINT};
use crate::wire::ErrorBody;

/// Longest provider message kept in a [`Failure`].
const MAX_MESSAGE_CHARS: usize = 500;

const QUOTA: &str = "quota_exhausted";

/// A gateway error as Anthropic's error body. `type` and `message` win over same-named extras.
pub fn encode(err: &ErrorBody) -> Value {
    let mut error = Map::new();
    error.insert("type".into(), Value::from(err.error_type.as_str()));
    error.insert("message".into(), Value::from(err.message.as_str()));
    for (k, v) in &err.extra {
        error.entry(k.clone()).or_insert_with(|| v.clone());
    }
    json!({"type": "error", "error": error})
}

/// Classifies a non-2xx answer. 4xx bodies are kept as `upstream` so a caller of this dialect
/// can receive its own mistake unchanged.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    classify_at(status, headers, body, SystemTime::now())
}

/// Classifies an Anthropic `error` object: the `error` member of an error body, or of an
/// in-stream `error` event (then `status` is the stream's 200 and the type decides).
pub fn classify_error_object(status: u16, headers: &HeaderMap, error: &Value) -> Failure {
    classify_object_at(status, headers, error, SystemTime::now())
}

fn classify_at(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
    let failure = match error {
        Some(e) => classify_object_at(status, headers, e, now),
        // Not Anthropic's shape (Cloudflare's 413 page, a proxy's 502): the status decides.
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
            let (class, detail) = by_status(status);
            failure(class, detail, status, &message, retry_hint(class, detail, headers, now))
        }
    };
    if (400..500).contains(&status) {
        failure.upstream(Dialect::Anthropic, Bytes::copy_from_slice(body))
    } else {
        failure
    }
}

fn classify_object_at(status: u16, headers: &HeaderMap, error: &Value, now: SystemTime) -> Failure {
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    let spend_cap =
        error.pointer("/details/error_code").and_then(Value::as_str) == Some("enforced_spend_limit_reached");
    let (class, detail) = decide(status, kind, message, spend_cap);
    let message = match (message.is_empty(), kind.is_empty()) {
        (false, _) => message.to_string(),
        (true, false) => kind.to_string(),
        (true, true) => format!("HTTP {status}"),
    };
    failure(class, detail, status, &message, retry_hint(class, detail, headers, now))
}

fn failure(
    class: FailureClass,
    detail: Option<&'static str>,
    status: u16,
    message: &str,
    retry_after: Option<Duration>,
) -> Failure {
    let mut f = Failure::new(class, truncate(message)).status(status).retry_after(retry_after);
    f.detail = detail;
    f
}

/// The class from the error type, the status and, where nothing else tells, the message.
fn decide(status: u16, kind: &str, message: &str, spend_cap: bool) -> (FailureClass, Option<&'static str>) {
    let lower = message.to_ascii_lowercase();
    // The monthly spend cap (429), billing (402) and the workspace's own limit (400) are all
    // exhaustion that waiting within a request does not fix.
    if spend_cap
        || kind == "billing_error"
        || status == 402
        || lower.contains("reached your specified api usage limits")
    {
        return (FailureClass::RateLimited, Some(QUOTA));
    }
    if kind == "invalid_request_error" || (kind.is_empty() && status == 400) {
        if lower.contains("prompt is too long") || lower.contains("exceed context limit") {
            return (FailureClass::ContextWindow, None);
        }
        if lower.contains("does not support assistant message prefill") {
            return (FailureClass::DeploymentInvalid, Some("prefill_unsupported"));
        }
    }
    match kind {
        "authentication_error" | "permission_error" => (FailureClass::Auth, None),
        "not_found_error" => (FailureClass::DeploymentInvalid, None),
        "rate_limit_error" => (FailureClass::RateLimited, None),
        "overloaded_error" | "api_error" | "timeout_error" => (FailureClass::Overloaded, None),
        "invalid_request_error" | "request_too_large" | "conflict_error" => (FailureClass::InvalidRequest, None),
        _ => by_status(status),
    }
}

/// When the body names no known type.
fn by_status(status: u16) -> (FailureClass, Option<&'static str>) {
    match status {
        401 | 403 => (FailureClass::Auth, None),
        402 => (FailureClass::RateLimited, Some(QUOTA)),
        404 => (FailureClass::DeploymentInvalid, None),
        429 => (FailureClass::RateLimited, None),
        400..=499 => (FailureClass::InvalidRequest, None),
        // 5xx, and an unknown error type inside a 200 stream: the provider's trouble.
        _ => (FailureClass::Overloaded, None),
    }
}

/// When to come back: rate limits from `retry-after` or the rate-limit reset times; overload
/// from `retry-after` when the provider sent one; never for exhausted quotas.
fn retry_hint(
    class: FailureClass,
    detail: Option<&'static str>,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    match class {
        _ if detail == Some(QUOTA) => None,
        FailureClass::RateLimited => retry_after::from_headers(headers, now).or_else(|| ratelimit_reset(headers, now)),
        FailureClass::Overloaded => retry_after::from_headers(headers, now),
        _ => None,
    }
}

/// The wait implied by `anthropic-ratelimit-*-reset` (RFC 3339 times). When some limits report
/// `remaining: 0`, the latest of their resets (all exhausted limits must have reset); otherwise
/// the earliest reset of any limit.
fn ratelimit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut earliest: Option<Duration> = None;
    let mut exhausted: Option<Duration> = None;
    for (name, value) in headers {
        let Some(limit) = name.as_str().strip_prefix("anthropic-ratelimit-").and_then(|n| n.strip_suffix("-reset"))
        else {
            continue;
        };
        let Some(at) = value.to_str().ok().and_then(parse_rfc3339) else {
            continue;
        };
        let wait = at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_HINT);
        earliest = Some(earliest.map_or(wait, |e| e.min(wait)));
        let remaining = headers.get(format!("anthropic-ratelimit-{limit}-remaining")).and_then(|v| v.to_str().ok());
        if remaining.map(str::trim) == Some("0") {
            exhausted = Some(exhausted.map_or(wait, |e| e.max(wait)));
        }
    }
    exhausted.or(earliest)
}

/// Parses an RFC 3339 time (`2026-01-01T00:00:30Z`, `2026-01-01T01:00:30.5+01:00`). Written by
/// hand because `httpdate` reads only HTTP dates and these headers need no more than this.
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let sep = |at: usize, allowed: &[u8]| s.as_bytes().get(at).is_some_and(|b| allowed.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (d, tail) = frac.split_at(digits);
        // Keep nanosecond precision: pad or cut to nine digits.
        let nine: String = d.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = nine.parse().ok()?;
        rest = tail;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') || hh > 23 || mm > 59 {
                return None;
            }
            sign * (hh * 3600 + mm * 60)
        }
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn truncate(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests;
