//! Small HTTP helpers: responses, JSON writing, percent-decoding, query strings, times.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::body::MockBody;

pub(crate) type Resp = Response<MockBody>;

pub(crate) const JSON: &str = "application/json";

pub(crate) fn response(status: StatusCode, content_type: &'static str, body: MockBody) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(crate) fn json_response(status: StatusCode, value: &impl Serialize) -> Resp {
    response(status, JSON, MockBody::full(to_bytes(value)))
}

/// Serialises into a fresh buffer. Our types cannot fail to serialise; if one did, the
/// client gets `null` rather than a panic.
pub(crate) fn to_bytes(value: &impl Serialize) -> Bytes {
    let mut buf = BytesMut::with_capacity(512);
    write_json(&mut buf, value);
    buf.freeze()
}

pub(crate) fn write_json(buf: &mut BytesMut, value: &impl Serialize) {
    let start = buf.len();
    if serde_json::to_writer(buf.writer(), value).is_err() {
        buf.truncate(start);
        buf.extend_from_slice(b"null");
    }
}

/// Adds a header whose value we built (never fails for our ASCII values; skipped otherwise).
pub(crate) fn set_header(resp: &mut Resp, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

pub(crate) fn set_static_header(resp: &mut Resp, name: &'static str, value: &'static str) {
    resp.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_static(value));
}

/// Decodes `%XX` escapes (invalid escapes are kept as written; `+` stays a plus, as in paths).
pub(crate) fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The first value of a query parameter, percent-decoded.
pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// A path and query for the recorder, with the `key=` credential redacted.
pub(crate) fn redacted_path(path: &str, query: Option<&str>) -> String {
    let Some(query) = query else {
        return path.to_string();
    };
    let parts: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("key", _)) => Cow::Owned(format!("key={}", crate::state::REDACTED)),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// Seconds a `Retry-After` value asks for: a number of seconds or an HTTP-date.
pub(crate) fn retry_after_secs(value: &str) -> Option<f64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).map(|d| d.as_secs_f64()).unwrap_or(0.0))
}

/// `2s`, `1.5s`, `0.644s` (the style of OpenAI messages and Google's Duration JSON).
pub(crate) fn format_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}s", secs as u64)
    } else {
        let s = format!("{secs:.3}");
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// RFC 3339 UTC time, `secs` from now (Anthropic's rate-limit reset headers).
pub(crate) fn rfc3339_in(secs: f64) -> String {
    let at = SystemTime::now() + Duration::from_secs_f64(secs.clamp(0.0, 1e9));
    let total = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (total / 86_400, total % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("m+text=%22a%20b%22"), "m+text=\"a b\"");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
        assert_eq!(percent_decode("%2A"), "*");
    }

    #[test]
    fn query_params_and_redaction() {
        assert_eq!(query_param(Some("alt=sse&key=abc"), "key").as_deref(), Some("abc"));
        assert_eq!(query_param(Some("alt=sse"), "key"), None);
        assert_eq!(redacted_path("/p", Some("alt=sse&key=abc")), "/p?alt=sse&key=[redacted]");
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(retry_after_secs("2"), Some(2.0));
        assert_eq!(retry_after_secs("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0.0));
        assert_eq!(retry_after_secs("soon"), None);
        assert_eq!(format_secs(2.0), "2s");
        assert_eq!(format_secs(1.5), "1.5s");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
