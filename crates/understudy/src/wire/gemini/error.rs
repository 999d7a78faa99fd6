//! Gemini error bodies -> [`Failure`].
//!
//! The body is Google's `{"error":{"code","message","status","details":[...]}}`, sometimes
//! wrapped in a one-element array. The class comes from the HTTP status first, then the gRPC
//! status name and `details`; message text is consulted only where Gemini leaves no other signal
//! (a bad key and context overflow are both plain 400 `INVALID_ARGUMENT`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::canonical::Dialect;
use crate::failure::{Failure, FailureClass};
use crate::wire::retry_after;

/// Longest message kept in a [`Failure`].
const MAX_MESSAGE: usize = 500;

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";

/// Classifies a non-2xx answer from its status, headers and raw body.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let parsed = serde_json::from_slice::<Value>(body).ok().and_then(|v| GoogleError::from_value(&v));
    let err = parsed.unwrap_or_else(|| GoogleError::from_text(body));
    decide(status, headers, &err, Bytes::copy_from_slice(body))
}

/// Classifies an already parsed error body. Also used for errors inside a 200 (a non-streaming
/// body or a stream chunk holding `error`): when `status` is not an error status, the body's own
/// `code` (or its gRPC status name) stands in for it.
pub fn classify_value(status: u16, headers: &HeaderMap, body: &Value) -> Failure {
    let err = GoogleError::from_value(body).unwrap_or_default();
    let raw = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    decide(status, headers, &err, raw)
}

/// The parts of a Google error body that classification looks at.
#[derive(Debug, Default)]
struct GoogleError {
    code: Option<u16>,
    /// The gRPC status name: `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`...
    status: String,
    message: String,
    /// `google.rpc.ErrorInfo.reason` values (`API_KEY_INVALID`).
    reasons: Vec<String>,
    /// `google.rpc.QuotaFailure.violations[].quotaId` values.
    quota_ids: Vec<String>,
    /// `google.rpc.RetryInfo.retryDelay`.
    retry_delay: Option<Duration>,
}

impl GoogleError {
    /// Reads `{"error":{...}}` or `[{"error":{...}}]`; `None` when the value holds no error object.
    fn from_value(v: &Value) -> Option<GoogleError> {
        let v = match v {
            Value::Array(items) if items.len() == 1 => items.first()?,
            other => other,
        };
        let e = v.get("error")?.as_object()?;
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut out = GoogleError {
            code: e.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()),
            status: text("status"),
            message: text("message"),
            ..Default::default()
        };
        for d in e.get("details").and_then(Value::as_array).into_iter().flatten() {
            out.read_detail(d);
        }
        Some(out)
    }

    /// A body that is not JSON (an HTML error page, a proxy's text): only its text is kept.
    fn from_text(body: &[u8]) -> GoogleError {
        GoogleError { message: String::from_utf8_lossy(body).trim().to_string(), ..Default::default() }
    }

    fn read_detail(&mut self, d: &Value) {
        if let Some(reason) = d.get("reason").and_then(Value::as_str) {
            self.reasons.push(reason.to_string());
        }
        match d.get("@type").and_then(Value::as_str) {
            Some(RETRY_INFO) => {
                self.retry_delay = d.get("retryDelay").and_then(Value::as_str).and_then(retry_after::parse_go_duration);
            }
            Some(QUOTA_FAILURE) => {
                let violations = d.get("violations").and_then(Value::as_array).into_iter().flatten();
                let ids = violations.filter_map(|v| v.get("quotaId").and_then(Value::as_str));
                self.quota_ids.extend(ids.map(str::to_string));
            }
            _ => {}
        }
    }

    fn is_bad_key(&self) -> bool {
        self.reasons.iter().any(|r| r == "API_KEY_INVALID")
            || self.message.contains("API key not valid")
            || self.message.contains("API key expired")
    }

    fn is_context_overflow(&self) -> bool {
        let m = self.message.to_ascii_lowercase();
        m.contains("input token count") && m.contains("exceeds the maximum")
    }

    fn is_daily_quota(&self) -> bool {
        self.quota_ids.iter().any(|q| q.contains("PerDay"))
    }
}

/// The status to classify by: the HTTP status when it is an error status, else (an error inside
/// a 200) the body's code or the HTTP equivalent of its gRPC status, else a server error.
fn effective_status(status: u16, err: &GoogleError) -> u16 {
    if (400..=599).contains(&status) {
        return status;
    }
    err.code.filter(|c| (400..=599).contains(c)).or_else(|| grpc_to_http(&err.status)).unwrap_or(500)
}

/// HTTP equivalents of the gRPC status names (google.rpc.Code).
fn grpc_to_http(status: &str) -> Option<u16> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ABORTED" | "ALREADY_EXISTS" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "UNKNOWN" | "INTERNAL" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

fn decide(status: u16, headers: &HeaderMap, err: &GoogleError, raw: Bytes) -> Failure {
    let status = effective_status(status, err);
    let (class, detail) = class_of(status, err);
    let retry = match (class, detail) {
        (FailureClass::RateLimited, None) => retry_hint(headers, err),
        _ => None,
    };
    let mut f = Failure::new(class, message(status, err)).status(status).retry_after(retry);
    f.detail = detail;
    if (400..=499).contains(&status) {
        f = f.upstream(Dialect::Gemini, raw);
    }
    f
}

fn class_of(status: u16, err: &GoogleError) -> (FailureClass, Option<&'static str>) {
    use FailureClass::*;
    match status {
        400 if err.is_bad_key() => (Auth, Some("invalid_api_key")),
        400 if err.is_context_overflow() => (ContextWindow, None),
        // Billing or region: waiting does not help, another provider may.
        400 if err.status == "FAILED_PRECONDITION" => (Auth, Some("failed_precondition")),
        401 | 403 => (Auth, None),
        402 => (RateLimited, Some("quota_exhausted")),
        404 => (DeploymentInvalid, None),
        // A daily cap: fail over rather than wait until tomorrow.
        429 if err.is_daily_quota() => (RateLimited, Some("quota_exhausted")),
        429 => (RateLimited, None),
        408 | 499 | 500..=599 => (Overloaded, None),
        _ => (InvalidRequest, None),
    }
}

/// RetryInfo in the body, then the headers, then "Please retry in 40.5s" in the message.
fn retry_hint(headers: &HeaderMap, err: &GoogleError) -> Option<Duration> {
    err.retry_delay
        .or_else(|| retry_after::from_headers(headers, SystemTime::now()))
        .or_else(|| retry_after::from_message(&err.message))
}

fn message(status: u16, err: &GoogleError) -> String {
    let m = if !err.message.is_empty() {
        err.message.as_str()
    } else if !err.status.is_empty() {
        err.status.as_str()
    } else {
        return format!("HTTP {status}");
    };
    m.chars().take(MAX_MESSAGE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(code: u16, status: &str, message: &str, details: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {"code": code, "message": message, "status": status, "details": details}}))
            .unwrap()
    }

    fn run(status: u16, b: &[u8]) -> Failure {
        classify(status, &HeaderMap::new(), b)
    }

    #[test]
    fn bad_api_key_is_auth_despite_400() {
        let b = body(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]),
        );
        let f = run(400, &b);
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.detail, Some("invalid_api_key"));
        assert_eq!(f.status, Some(400));
        assert_eq!(f.message, "API key not valid. Please pass a valid API key.");
        assert_eq!(f.upstream, Some((Dialect::Gemini, Bytes::from(b))));

        // The message alone is enough when details are missing.
        let b = body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", json!([]));
        assert_eq!(run(400, &b).detail, Some("invalid_api_key"));
    }

    #[test]
    fn context_overflow() {
        let b = body(
            400,
            "INVALID_ARGUMENT",
            "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).",
            json!([]),
        );
        let f = run(400, &b);
        assert_eq!(f.class, FailureClass::ContextWindow);
        assert_eq!(f.status, Some(400));
    }

    #[test]
    fn other_400_is_the_callers_mistake() {
        let b = body(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"foo\"", json!([]));
        let f = run(400, &b);
        assert_eq!(f.class, FailureClass::InvalidRequest);
        assert_eq!(f.detail, None);
        assert!(f.upstream.is_some());
    }

    #[test]
    fn failed_precondition_fails_over_as_auth() {
        let b = body(
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use without a billing account linked.",
            json!([]),
        );
        let f = run(400, &b);
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.detail, Some("failed_precondition"));
        assert!(f.class.fails_over());
    }

    #[test]
    fn prepaid_credits_exhausted_402() {
        let b = body(402, "RESOURCE_EXHAUSTED", "Your prepaid credits are exhausted.", json!([]));
        let f = run(402, &b);
        assert_eq!(f.class, FailureClass::RateLimited);
        assert!(f.is_quota_exhausted());
        assert_eq!(f.retry_after, None);
    }

    #[test]
    fn unauthenticated_and_permission_denied() {
        let b = body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", json!([]));
        assert_eq!(run(401, &b).class, FailureClass::Auth);
        let b = body(403, "PERMISSION_DENIED", "The caller does not have permission", json!([]));
        let f = run(403, &b);
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.status, Some(403));
    }

    #[test]
    fn unknown_model_404() {
        let b = body(
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent. \
             Call ListModels to see the list of available models and their supported methods.",
            json!([]),
        );
        assert_eq!(run(404, &b).class, FailureClass::DeploymentInvalid);
    }

    #[test]
    fn rate_limit_with_retry_info() {
        let b = body(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota. Please retry in 40.5s.",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                     "quotaDimensions": {"model": "gemini-2.5-flash", "location": "global"}, "quotaValue": "10"}]},
                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more", "url": "https://ai.google.dev"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"}
            ]),
        );
        let f = run(429, &b);
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.detail, None);
        assert_eq!(f.retry_after, Some(Duration::from_secs(41)));
    }

    #[test]
    fn rate_limit_hint_falls_back_to_headers_then_message() {
        let b = body(429, "RESOURCE_EXHAUSTED", "Please retry in 40.5s.", json!([]));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(classify(429, &h, &b).retry_after, Some(Duration::from_secs(7)));
        assert_eq!(run(429, &b).retry_after, Some(Duration::from_millis(40_500)));
        let b = body(429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.", json!([]));
        assert_eq!(run(429, &b).retry_after, None);
    }

    #[test]
    fn daily_quota_is_exhausted_not_retried() {
        let b = body(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota. Please retry in 2h3m.",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                    {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7380s"}
            ]),
        );
        let f = run(429, &b);
        assert_eq!(f.class, FailureClass::RateLimited);
        assert!(f.is_quota_exhausted());
        assert_eq!(f.retry_after, None);
    }

    #[test]
    fn server_errors_are_overloaded() {
        for (code, status) in [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"), (499, "CANCELLED")]
        {
            let b = body(code, status, "The model is overloaded. Please try again later.", json!([]));
            let f = run(code, &b);
            assert_eq!(f.class, FailureClass::Overloaded, "{code}");
            assert_eq!(f.status, Some(code));
            assert_eq!(f.upstream.is_some(), code < 500, "{code}");
        }
        assert_eq!(run(408, b"").class, FailureClass::Overloaded);
        assert_eq!(run(502, b"").class, FailureClass::Overloaded);
    }

    #[test]
    fn array_wrapped_body() {
        let inner: Value = serde_json::from_slice(&body(403, "PERMISSION_DENIED", "denied", json!([]))).unwrap();
        let b = serde_json::to_vec(&json!([inner])).unwrap();
        let f = run(403, &b);
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.message, "denied");
    }

    #[test]
    fn non_json_bodies_classify_by_status() {
        let html = b"<html><body>502 Bad Gateway</body></html>";
        let f = run(502, html);
        assert_eq!(f.class, FailureClass::Overloaded);
        assert_eq!(f.message, "<html><body>502 Bad Gateway</body></html>");
        assert_eq!(run(400, b"nope").class, FailureClass::InvalidRequest);
        assert_eq!(run(401, b"").class, FailureClass::Auth);
        assert_eq!(run(404, b"Not Found").class, FailureClass::DeploymentInvalid);
        assert_eq!(run(413, b"too large").class, FailureClass::InvalidRequest);
        let f = run(429, b"slow down");
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.retry_after, None);
        assert_eq!(run(500, b"").message, "HTTP 500");
    }

    #[test]
    fn long_messages_are_truncated() {
        let long = "é".repeat(2000);
        let f = run(400, &body(400, "INVALID_ARGUMENT", &long, json!([])));
        assert_eq!(f.message.chars().count(), MAX_MESSAGE);
    }

    #[test]
    fn errors_inside_a_200_use_the_body_code() {
        let v = json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}});
        let f = classify_value(200, &HeaderMap::new(), &v);
        assert_eq!(f.class, FailureClass::Overloaded);
        assert_eq!(f.status, Some(503));
        let v = json!({"error": {"message": "slow down", "status": "RESOURCE_EXHAUSTED"}});
        assert_eq!(classify_value(200, &HeaderMap::new(), &v).class, FailureClass::RateLimited);
        let v = json!({"error": {"message": "?"}});
        assert_eq!(classify_value(200, &HeaderMap::new(), &v).class, FailureClass::Overloaded);
    }
}
