//! Checks AWS Signature Version 4 the way the service does: rebuild the canonical request from
//! what arrived (method, path encoded once more, query, the signed headers, SHA-256 of the body
//! bytes), the string to sign and the signing key from the secret the mock knows, and compare.
//! Written from AWS's description of the algorithm, independently of the engine's signer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// AWS refuses signatures more than 15 minutes away from its clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigError {
    /// The Authorization header lacks a part (`IncompleteSignatureException`).
    Incomplete(String),
    /// The access key is not one the mock knows (`UnrecognizedClientException`).
    UnknownKey,
    /// Wrong scope, stale date or a signature that does not match (`InvalidSignatureException`).
    Invalid(String),
}

/// What arrived, as the verifier needs it.
pub(crate) struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded once).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Verifies `authorization` (the header's value, `AWS4-HMAC-SHA256 Credential=...`) for
/// `service`; `secret_for` maps an access key id to its secret. Returns the access key id.
pub(crate) fn verify(
    req: &SignedRequest<'_>,
    authorization: &str,
    service: &str,
    secret_for: impl Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Result<String, SigError> {
    let parts = Authorization::parse(authorization)?;
    let [key_id, date, region, scope_service, terminal] = parts.credential.as_slice() else {
        return Err(SigError::Incomplete(format!(
            "Credential should have 5 slash-separated parts, not {}",
            parts.credential.len()
        )));
    };
    if *terminal != "aws4_request" {
        return Err(SigError::Invalid("Credential should be scoped with a valid terminator: 'aws4_request'.".into()));
    }
    if *scope_service != service {
        return Err(SigError::Invalid(format!("Credential should be scoped to correct service: '{service}'.")));
    }
    let Some(secret) = secret_for(key_id) else {
        return Err(SigError::UnknownKey);
    };
    if !parts.signed_headers.contains(&"host") {
        return Err(SigError::Incomplete("'Host' must be a signed header.".into()));
    }
    let amz_date = header(req.headers, "x-amz-date").ok_or_else(|| {
        SigError::Incomplete("Authorization header requires existence of a 'X-Amz-Date' header.".into())
    })?;
    let signed_at =
        parse_amz_date(&amz_date).ok_or_else(|| SigError::Invalid(format!("Invalid X-Amz-Date: {amz_date}")))?;
    if amz_date.get(..8) != Some(*date) {
        return Err(SigError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601: {date}"
        )));
    }
    let skew = now.duration_since(signed_at).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(SigError::Invalid(format!("Signature expired: {amz_date} is too far from the server's time.")));
    }
    let creq = canonical_request(req, &parts.signed_headers);
    let scope = format!("{date}/{region}/{scope_service}/aws4_request");
    let to_sign = format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(creq.as_bytes())));
    let key = signing_key(&secret, date, region, scope_service);
    let expected = hex(&hmac(&key, to_sign.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), parts.signature.as_bytes()) {
        return Err(SigError::Invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details."
                .into(),
        ));
    }
    Ok(key_id.to_string())
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=abc...`
struct Authorization<'a> {
    credential: Vec<&'a str>,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(value: &'a str) -> Result<Self, SigError> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or_else(|| SigError::Incomplete(format!("Unsupported authorization type (expected {ALGORITHM})")))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let missing = |what: &str| SigError::Incomplete(format!("Authorization header requires '{what}' parameter."));
        Ok(Authorization {
            credential: credential.ok_or_else(|| missing("Credential"))?.split('/').collect(),
            signed_headers: signed.ok_or_else(|| missing("SignedHeaders"))?.split(';').collect(),
            signature: signature.ok_or_else(|| missing("Signature"))?,
        })
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn canonical_request(req: &SignedRequest<'_>, signed_headers: &[&str]) -> String {
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        headers,
        signed_headers.join(";"),
        hex(&Sha256::digest(req.body))
    )
}

/// Every service but S3 signs the path encoded a second time: each byte outside the unreserved
/// set (and `/`) is escaped, so `%3A` becomes `%253A`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    encode(path, true)
}

/// Parameters sorted by name then value, each decoded then encoded strictly.
fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    crate::http::percent_decode(s).into_owned()
}

/// Trims and turns runs of spaces into one, as the canonical header form requires.
fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails; an empty MAC would only mismatch.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20150830T123600Z` -> the time it names.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn check(
        method: &str,
        path: &str,
        query: Option<&str>,
        h: &HeaderMap,
        body: &[u8],
        auth: &str,
    ) -> Result<String, SigError> {
        let req = SignedRequest { method, path, query, headers: h, body };
        verify(&req, auth, "service", |k| (k == "AKIDEXAMPLE").then(|| SECRET.to_string()), suite_time())
    }

    fn auth(signed: &str, signature: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={signature}")
    }

    /// AWS SigV4 test suite, `get-vanilla`.
    #[test]
    fn published_vector_get_vanilla() {
        let h = headers(&[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]);
        let a = auth("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        assert_eq!(check("GET", "/", None, &h, b"", &a), Ok("AKIDEXAMPLE".into()));
        // One character off anywhere is refused.
        assert!(matches!(check("POST", "/", None, &h, b"", &a), Err(SigError::Invalid(_))));
        assert!(matches!(check("GET", "/x", None, &h, b"", &a), Err(SigError::Invalid(_))));
        assert!(matches!(check("GET", "/", None, &h, b"x", &a), Err(SigError::Invalid(_))));
    }

    /// `get-vanilla-query-order-key-case`: sorted query parameters.
    #[test]
    fn published_vector_query_order() {
        let h = headers(&[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]);
        let a = auth("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
        assert_eq!(check("GET", "/", Some("Param2=value2&Param1=value1"), &h, b"", &a), Ok("AKIDEXAMPLE".into()));
    }

    /// `post-x-www-form-urlencoded`: the body is covered.
    #[test]
    fn published_vector_with_a_body() {
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "example.amazonaws.com"),
            ("content-length", "13"),
            ("x-amz-date", "20150830T123600Z"),
            ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
        ]);
        let a = auth(
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        );
        assert_eq!(check("POST", "/", None, &h, b"Param1=value1", &a), Ok("AKIDEXAMPLE".into()));
        assert!(matches!(check("POST", "/", None, &h, b"Param1=value2", &a), Err(SigError::Invalid(_))));
    }

    /// `post-sts-header-before`: a signed session token.
    #[test]
    fn published_vector_with_a_session_token() {
        let h = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("x-amz-security-token", TOKEN),
        ]);
        let a = auth(
            "host;x-amz-date;x-amz-security-token",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        );
        assert_eq!(check("POST", "/", None, &h, b"", &a), Ok("AKIDEXAMPLE".into()));
    }

    #[test]
    fn the_path_is_encoded_twice() {
        assert_eq!(
            canonical_uri("/model/anthropic.claude-v2%3A1/converse"),
            "/model/anthropic.claude-v2%253A1/converse"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query(Some("b=2&a=x%20y&a=1")), "a=1&a=x%20y&b=2");
    }

    #[test]
    fn refusals() {
        let h = headers(&[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]);
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        assert!(matches!(check("GET", "/", None, &h, b"", "Bearer x"), Err(SigError::Incomplete(_))));
        assert!(matches!(
            check(
                "GET",
                "/",
                None,
                &h,
                b"",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
            ),
            Err(SigError::Incomplete(_))
        ));
        let other_key = auth("host;x-amz-date", sig).replace("AKIDEXAMPLE", "AKIDOTHER");
        assert_eq!(check("GET", "/", None, &h, b"", &other_key), Err(SigError::UnknownKey));
        let wrong_service = auth("host;x-amz-date", sig).replace("/service/", "/s3/");
        assert!(
            matches!(check("GET", "/", None, &h, b"", &wrong_service), Err(SigError::Invalid(m)) if m.contains("'service'"))
        );
        assert!(matches!(check("GET", "/", None, &h, b"", &auth("x-amz-date", sig)), Err(SigError::Incomplete(_))));
        let no_date = headers(&[("host", "example.amazonaws.com")]);
        assert!(matches!(
            check("GET", "/", None, &no_date, b"", &auth("host;x-amz-date", sig)),
            Err(SigError::Incomplete(_))
        ));
        // Signed an hour before the server's clock.
        let req = SignedRequest { method: "GET", path: "/", query: None, headers: &h, body: b"" };
        let late = verify(
            &req,
            &auth("host;x-amz-date", sig),
            "service",
            |_| Some(SECRET.into()),
            suite_time() + Duration::from_secs(3600),
        );
        assert!(matches!(late, Err(SigError::Invalid(m)) if m.contains("expired")));
        // A wrong secret.
        let wrong = verify(&req, &auth("host;x-amz-date", sig), "service", |_| Some("nope".into()), suite_time());
        assert!(matches!(wrong, Err(SigError::Invalid(m)) if m.contains("does not match")));
    }

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(suite_time()));
        for bad in ["2015-08-30T12:36:00Z", "20151330T123600Z", "20150830T123600", "2015083aT123600Z"] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
