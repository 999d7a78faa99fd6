//! When a provider says to come back: `retry-after-ms`, `Retry-After` (seconds or HTTP-date).

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// Longest wait taken from a header; anything longer is a daily quota in disguise.
pub const MAX_HINT: Duration = Duration::from_secs(24 * 3600);

/// Reads `retry-after-ms` (float milliseconds, preferred as OpenAI's SDK does), then
/// `retry-after` (float seconds or an HTTP-date).
pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = headers.get("retry-after-ms").and_then(|v| v.to_str().ok()) {
        if let Some(d) = parse_float(ms.trim(), 1e-3) {
            return Some(d);
        }
    }
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(v, now)
}

/// Parses a `Retry-After` value: delay-seconds (fractions tolerated) or an HTTP-date.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    if let Some(d) = parse_float(v, 1.0) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_HINT))
}

fn parse_float(v: &str, unit_secs: f64) -> Option<Duration> {
    let n: f64 = v.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64((n * unit_secs).min(MAX_HINT.as_secs_f64())))
}

/// Parses Go-style durations that providers put in bodies and headers: `644ms`, `1.5s`,
/// `6m0s`, `41s`, `2m30.5s`.
pub fn parse_go_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "us" | "µs" => 1e-6,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total.min(MAX_HINT.as_secs_f64())))
}

/// Finds "try again in 644ms" / "retry after 7 seconds" / "retry in 40.5s" in a message, the
/// last resort when a provider gives no header.
pub fn from_message(msg: &str) -> Option<Duration> {
    let lower = msg.to_ascii_lowercase();
    for key in ["try again in ", "retry after ", "retry in "] {
        if let Some(i) = lower.find(key) {
            let tail = &lower[i + key.len()..];
            let token: String = tail.chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
            let token = token.trim_end_matches('.');
            if let Some(d) = parse_go_duration(token) {
                return Some(d);
            }
            // "7 seconds"
            let n: String = token.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            if let (Ok(n), true) = (n.parse::<f64>(), tail[token.len()..].trim_start().starts_with("second")) {
                return Some(Duration::from_secs_f64(n.min(MAX_HINT.as_secs_f64())));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("1.5", now), Some(Duration::from_millis(1500)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn ms_header_wins() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        h.insert("retry-after-ms", "250.5".parse().unwrap());
        assert_eq!(from_headers(&h, SystemTime::now()), Some(Duration::from_micros(250_500)));
    }

    #[test]
    fn messages_and_go_durations() {
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("644ms"), Some(Duration::from_millis(644)));
        assert_eq!(
            from_message("Rate limit reached ... Please try again in 644ms. Visit"),
            Some(Duration::from_millis(644))
        );
        assert_eq!(from_message("Please retry after 7 seconds. ..."), Some(Duration::from_secs(7)));
        assert_eq!(from_message("Please retry in 40.5s."), Some(Duration::from_millis(40_500)));
        assert_eq!(from_message("no hint"), None);
    }
}
