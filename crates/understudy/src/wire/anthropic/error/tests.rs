use proptest::prelude::*;

use super::*;

/// 2026-01-01T00:00:00Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn body(kind: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011"})
        .to_string()
        .into_bytes()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

fn check(status: u16, b: &[u8], class: FailureClass, detail: Option<&str>) -> Failure {
    let f = classify_at(status, &HeaderMap::new(), b, now());
    assert_eq!(f.class, class, "{status} {}", String::from_utf8_lossy(b));
    assert_eq!(f.detail, detail, "{status} {}", String::from_utf8_lossy(b));
    assert_eq!(f.status, Some(status));
    f
}

#[test]
fn every_row_of_the_reference_table() {
    use FailureClass::*;
    let quota = Some("quota_exhausted");
    let f = check(400, &body("invalid_request_error", "messages: field required"), InvalidRequest, None);
    assert_eq!(f.message, "messages: field required");
    assert_eq!(
        f.upstream,
        Some((Dialect::Anthropic, Bytes::from(body("invalid_request_error", "messages: field required"))))
    );
    check(
        400,
        &body(
            "invalid_request_error",
            "You have reached your specified API usage limits. You will regain access on 2026-02-01 at 00:00 UTC.",
        ),
        RateLimited,
        quota,
    );
    check(401, &body("authentication_error", "invalid x-api-key"), Auth, None);
    check(402, &body("billing_error", "Your credit balance is too low"), RateLimited, quota);
    check(403, &body("permission_error", "Your API key does not have permission"), Auth, None);
    let f = check(404, &body("not_found_error", "model: claude-x"), DeploymentInvalid, None);
    assert_eq!(f.message, "model: claude-x");
    check(409, &body("conflict_error", "conflict"), InvalidRequest, None);
    check(413, &body("request_too_large", "Request exceeds the maximum size"), InvalidRequest, None);
    check(
        429,
        &body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        RateLimited,
        None,
    );
    let f = check(500, &body("api_error", "Internal server error"), Overloaded, None);
    assert_eq!(f.upstream, None, "5xx bodies are not the caller's to see");
    check(500, &body("api_error", "Overloaded"), Overloaded, None);
    check(504, &body("timeout_error", "Request timed out"), Overloaded, None);
    check(529, &body("overloaded_error", "Overloaded"), Overloaded, None);
}

#[test]
fn context_overflow_and_prefill() {
    use FailureClass::*;
    check(
        400,
        &body("invalid_request_error", "prompt is too long: 210266 tokens > 200000 maximum"),
        ContextWindow,
        None,
    );
    check(
        400,
        &body(
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000, decrease input length or `max_tokens` and try again",
        ),
        ContextWindow,
        None,
    );
    check(
        400,
        &body(
            "invalid_request_error",
            "This model does not support assistant message prefill. The conversation must end with a user message.",
        ),
        DeploymentInvalid,
        Some("prefill_unsupported"),
    );
}

#[test]
fn spend_cap_is_quota_without_retry() {
    let b = json!({"type": "error", "error": {"type": "rate_limit_error",
        "message": "You have reached your monthly spend limit.", "details": {"error_code": "enforced_spend_limit_reached"}}})
    .to_string();
    // Even a stray retry-after must not invite a retry.
    let f = classify_at(429, &headers(&[("retry-after", "30")]), b.as_bytes(), now());
    assert_eq!(f.class, FailureClass::RateLimited);
    assert!(f.is_quota_exhausted());
    assert_eq!(f.retry_after, None);
}

#[test]
fn rate_limit_delays() {
    let b = body("rate_limit_error", "rate limited");
    let f = classify_at(429, &headers(&[("retry-after", "7")]), &b, now());
    assert_eq!((f.class, f.retry_after), (FailureClass::RateLimited, Some(Duration::from_secs(7))));

    // No retry-after: the rate-limit reset times.
    let resets = [
        ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:05Z"),
        ("anthropic-ratelimit-requests-remaining", "12"),
        ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:40Z"),
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-input-tokens-reset", "2026-01-01T01:00:20+01:00"),
        ("anthropic-ratelimit-input-tokens-remaining", "0"),
    ];
    let f = classify_at(429, &headers(&resets), &b, now());
    assert_eq!(f.retry_after, Some(Duration::from_secs(40)), "latest of the exhausted limits");
    let f = classify_at(429, &headers(&resets[..2]), &b, now());
    assert_eq!(f.retry_after, Some(Duration::from_secs(5)), "earliest when none is exhausted");
    let f = classify_at(429, &headers(&[("anthropic-ratelimit-tokens-reset", "2025-12-31T23:59:00Z")]), &b, now());
    assert_eq!(f.retry_after, Some(Duration::ZERO), "a reset in the past");
    let f = classify_at(429, &HeaderMap::new(), &b, now());
    assert_eq!(f.retry_after, None);
    // Overload carries retry-after when sent; auth never does.
    let f = classify_at(529, &headers(&[("retry-after", "2")]), &body("overloaded_error", "Overloaded"), now());
    assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
    let f = classify_at(401, &headers(&[("retry-after", "2")]), &body("authentication_error", "x"), now());
    assert_eq!(f.retry_after, None);
}

#[test]
fn bodies_that_are_not_anthropic_errors_go_by_status() {
    use FailureClass::*;
    let html = b"<html><head><title>413 Request Entity Too Large</title></head><body>cloudflare</body></html>";
    let f = check(413, html, InvalidRequest, None);
    assert!(f.message.starts_with("HTTP 413: <html>"));
    assert_eq!(f.upstream.as_ref().map(|u| &u.1[..]), Some(&html[..]));
    check(502, b"Bad Gateway", Overloaded, None);
    let f = check(503, b"", Overloaded, None);
    assert_eq!(f.message, "HTTP 503");
    check(401, b"", Auth, None);
    check(403, b"forbidden", Auth, None);
    check(402, b"", RateLimited, Some("quota_exhausted"));
    check(404, b"{}", DeploymentInvalid, None);
    check(418, b"teapot", InvalidRequest, None);
    check(400, b"{\"error\":\"flat\"}", InvalidRequest, None);
    let f = classify_at(429, &headers(&[("retry-after", "3")]), b"slow down", now());
    assert_eq!((f.class, f.retry_after), (RateLimited, Some(Duration::from_secs(3))));
    // Vertex's Google-shaped errors have no `type`: the status decides, the message survives.
    let google = br#"{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED"}}"#;
    let f = check(429, google, RateLimited, None);
    assert_eq!(f.message, "Resource exhausted. Please try again later.");
    check(401, br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#, Auth, None);
    // An unknown type inside a 5xx is still the provider's trouble.
    check(503, &body("some_new_error", "?"), Overloaded, None);
}

#[test]
fn in_stream_errors_go_by_type() {
    let none = HeaderMap::new();
    let c = |kind: &str| classify_error_object(200, &none, &json!({"type": kind, "message": "m"}));
    assert_eq!(c("overloaded_error").class, FailureClass::Overloaded);
    assert_eq!(c("api_error").class, FailureClass::Overloaded);
    assert_eq!(c("timeout_error").class, FailureClass::Overloaded);
    assert_eq!(c("rate_limit_error").class, FailureClass::RateLimited);
    assert_eq!(c("authentication_error").class, FailureClass::Auth);
    assert_eq!(c("permission_error").class, FailureClass::Auth);
    assert_eq!(c("not_found_error").class, FailureClass::DeploymentInvalid);
    assert_eq!(c("invalid_request_error").class, FailureClass::InvalidRequest);
    assert_eq!(c("billing_error").detail, Some("quota_exhausted"));
    assert_eq!(c("brand_new_error").class, FailureClass::Overloaded);
    let f = c("overloaded_error");
    assert_eq!((f.status, f.upstream, f.message.as_str()), (Some(200), None, "m"));
    let f = classify_error_object(200, &none, &json!({"type": "overloaded_error"}));
    assert_eq!(f.message, "overloaded_error");
    let f = classify_error_object(200, &none, &Value::Null);
    assert_eq!(f.class, FailureClass::Overloaded);
}

#[test]
fn long_messages_are_truncated() {
    let long = "é".repeat(800);
    let f = check(400, &body("invalid_request_error", &long), FailureClass::InvalidRequest, None);
    assert_eq!(f.message.chars().count(), 500);
}

#[test]
fn rfc3339_times() {
    let at = |s: &str| parse_rfc3339(s).and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
    assert_eq!(at("2026-01-01T00:00:00Z"), Some(Duration::from_secs(1_767_225_600)));
    assert_eq!(at("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
    assert_eq!(at("2024-02-29T12:00:00Z"), Some(Duration::from_secs(1_709_208_000)));
    assert_eq!(at("2026-01-01T01:00:00+01:00"), Some(Duration::from_secs(1_767_225_600)));
    assert_eq!(at("2025-12-31T23:00:00-01:00"), Some(Duration::from_secs(1_767_225_600)));
    assert_eq!(at("2026-01-01T00:00:00.25Z"), Some(Duration::from_millis(1_767_225_600_250)));
    assert_eq!(at("2026-01-01t00:00:00.123456789123z"), Some(Duration::new(1_767_225_600, 123_456_789)));
    for bad in [
        "",
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00+01:00x",
        "+026-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2026-01-01T00:00:00€",
        "Thu, 01 Jan 2026 00:00:00 GMT",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn encodes_gateway_errors() {
    let mut e = ErrorBody::new(503, "all_candidates_failed", "every candidate failed");
    e.extra.insert("attempts".into(), json!([{"deployment": "a", "class": "timeout"}]));
    e.extra.insert("type".into(), json!("ignored"));
    assert_eq!(
        encode(&e),
        json!({"type": "error", "error": {"type": "all_candidates_failed", "message": "every candidate failed",
            "attempts": [{"deployment": "a", "class": "timeout"}]}})
    );
}

proptest! {
    #[test]
    fn classify_never_panics(status in 0u16..1000, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let f = classify(status, &HeaderMap::new(), &bytes);
        prop_assert_eq!(f.status, Some(status));
    }

    #[test]
    fn classify_never_panics_on_odd_errors(
        status in 0u16..1000,
        kind in ".*",
        message in ".*",
        reset in ".*",
    ) {
        let b = json!({"type": "error", "error": {"type": kind, "message": message, "details": {"error_code": 1}}});
        let mut h = HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&reset) {
            h.insert("anthropic-ratelimit-tokens-reset", v.clone());
            h.insert("retry-after", v);
        }
        let f = classify(status, &h, b.to_string().as_bytes());
        prop_assert!(f.message.chars().count() <= 500);
        let _ = parse_rfc3339(&reset);
    }
}
