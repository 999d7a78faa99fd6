//! OpenAI error bodies: rendering the gateway's own errors for OpenAI callers (front), and
//! classifying OpenAI and Azure OpenAI errors into [`FailureClass`]es (provider side).
//!
//! Classification follows the reference's cheat sheet: status first, then `error.code` /
//! `error.type` / Azure's `innererror.code`, and message text only where OpenAI leaves no other
//! choice (context overflow without a code, "try again in 644ms").

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::canonical::Dialect;
use crate::failure::{Failure, FailureClass};
use crate::wire::{retry_after, ErrorBody};

/// Longest provider message kept in a [`Failure`], in characters.
const MAX_MESSAGE: usize = 500;

/// A retry hint this long means a daily quota (Azure's "retry after 86400 seconds"): waiting
/// is pointless within a request.
const QUOTA_HINT: Duration = Duration::from_secs(24 * 3600);

/// `{"error":{"message","type","param","code", ...extra}}`. The four standard members win over
/// `extra` members of the same name, so a stray key cannot change the error's meaning.
pub fn encode(err: &ErrorBody) -> Value {
    let mut obj = Map::new();
    obj.insert("message".into(), Value::from(err.message.as_str()));
    obj.insert("type".into(), Value::from(err.error_type.as_str()));
    obj.insert("param".into(), err.param.as_deref().map_or(Value::Null, Value::from));
    obj.insert("code".into(), err.code.as_deref().map_or(Value::Null, Value::from));
    for (k, v) in &err.extra {
        if !obj.contains_key(k) {
            obj.insert(k.clone(), v.clone());
        }
    }
    let mut outer = Map::new();
    outer.insert("error".into(), Value::Object(obj));
    Value::Object(outer)
}

/// Classifies a non-2xx answer. A body that is not JSON (an HTML page from a proxy) still
/// classifies by status, but is not kept as `upstream`: an OpenAI SDK could not read it, so the
/// gateway renders its own error from the message instead.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let fields = Fields::from_value(&value);
            finish(status, headers, &fields, || Some(Bytes::copy_from_slice(body)))
        }
        Err(_) => {
            let fields = Fields { message: non_json_message(status, body), ..Fields::default() };
            finish(status, headers, &fields, || None)
        }
    }
}

/// Classifies an already parsed error body, e.g. a `data: {"error":...}` chunk inside a 200
/// stream. With a 2xx status the class is inferred from the body's code and type; an error
/// that names nothing known counts as a server error.
pub fn classify_value(status: u16, headers: &HeaderMap, body: &Value) -> Failure {
    let fields = Fields::from_value(body);
    finish(status, headers, &fields, || serde_json::to_vec(body).ok().map(Bytes::from))
}

/// The parts of an error body that classification looks at.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    /// `error.type` (null on Azure).
    kind: Option<String>,
    /// `error.code`: a string on OpenAI, a string such as "429" or "DeploymentNotFound" on Azure,
    /// a number on some compatible servers.
    code: Option<String>,
    /// Azure's `error.innererror.code`.
    inner_code: Option<String>,
    /// Azure's `error.status`.
    status: Option<u16>,
}

impl Fields {
    fn from_value(body: &Value) -> Fields {
        let err = body.get("error");
        let obj = err.and_then(Value::as_object);
        let member = |name: &str| obj.and_then(|o| o.get(name));
        // `{"error":"text"}` and a bare `{"message":...}` come from proxies and compatible servers.
        let message = member("message")
            .and_then(Value::as_str)
            .or_else(|| err.and_then(Value::as_str))
            .or_else(|| body.get("message").and_then(Value::as_str))
            .unwrap_or_default();
        Fields {
            message: message.to_string(),
            kind: member("type").and_then(Value::as_str).map(str::to_string),
            code: member("code").and_then(code_text),
            inner_code: member("innererror").and_then(|i| i.get("code")).and_then(code_text),
            status: member("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()),
        }
    }

    fn code_is(&self, names: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| names.contains(&c))
    }

    fn kind_is(&self, names: &[&str]) -> bool {
        self.kind.as_deref().is_some_and(|k| names.contains(&k))
    }

    fn message_has(&self, needles: &[&str]) -> bool {
        let lower = self.message.to_ascii_lowercase();
        needles.iter().any(|n| lower.contains(n))
    }
}

fn code_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Builds the [`Failure`]: class, detail and retry hint from the effective status and fields.
/// `body` gives the bytes to keep as `upstream` for a 4xx (the caller's own mistake).
fn finish(status: u16, headers: &HeaderMap, f: &Fields, body: impl FnOnce() -> Option<Bytes>) -> Failure {
    let effective = effective_status(status, f);
    let (class, detail, retry) = decide(effective, headers, f);
    let message =
        if f.message.trim().is_empty() { format!("upstream answered HTTP {status}") } else { truncate(&f.message) };
    let mut failure = Failure::new(class, message).status(status).retry_after(retry);
    failure.detail = detail;
    if (400..500).contains(&effective) {
        failure.upstream = body().map(|b| (Dialect::OpenAi, b));
    }
    failure
}

/// The HTTP status to classify by. An error reported inside a 200 (a stream chunk, or a body)
/// has none, so it is inferred from Azure's `status`, a numeric `code`, or the code and type names.
fn effective_status(status: u16, f: &Fields) -> u16 {
    if status >= 400 {
        return status;
    }
    let numeric = f.code.as_deref().and_then(|c| c.parse::<u16>().ok());
    let named = f.code.as_deref().and_then(status_for_name).or_else(|| f.kind.as_deref().and_then(status_for_name));
    let inferred = f.status.into_iter().chain(numeric).find(|s| (400..600).contains(s)).or(named);
    match inferred {
        Some(s) => s,
        // An error object in a success answer that names nothing we know: the server failed.
        None if (200..300).contains(&status) => 500,
        None => status,
    }
}

fn status_for_name(name: &str) -> Option<u16> {
    Some(match name {
        "invalid_request_error"
        | "context_length_exceeded"
        | "invalid_prompt"
        | "content_filter"
        | "content_policy_violation"
        | "unsupported_parameter"
        | "unsupported_value" => 400,
        "authentication_error" | "invalid_api_key" | "account_deactivated" => 401,
        "permission_error" => 403,
        "not_found_error" | "model_not_found" | "DeploymentNotFound" => 404,
        "rate_limit_exceeded"
        | "rate_limit_error"
        | "tokens"
        | "requests"
        | "insufficient_quota"
        | "credit_balance_exhausted"
        | "slow_down" => 429,
        "server_error" | "api_error" => 500,
        "service_unavailable_error" | "server_is_overloaded" | "overloaded_error" => 503,
        _ => return None,
    })
}

type Decision = (FailureClass, Option<&'static str>, Option<Duration>);

fn decide(status: u16, headers: &HeaderMap, f: &Fields) -> Decision {
    match status {
        401 | 403 => (FailureClass::Auth, auth_detail(f), None),
        429 => rate_limited(headers, f),
        // Payment required (OpenRouter and other compatible servers): the account is out of
        // credit, which no caller can fix and no wait within a request cures.
        402 => (FailureClass::RateLimited, Some("quota_exhausted"), None),
        408 | 409 | 500..=599 => {
            (FailureClass::Overloaded, None, retry_after::from_headers(headers, SystemTime::now()))
        }
        400..=499 => client_error(status, f),
        // A redirect or other unexpected status: not an answer we can use.
        _ => (FailureClass::InvalidResponse, Some("unexpected_status"), None),
    }
}

fn auth_detail(f: &Fields) -> Option<&'static str> {
    if f.code_is(&["account_deactivated"]) {
        Some("account_deactivated")
    } else if f.code_is(&["invalid_api_key"]) {
        Some("invalid_api_key")
    } else {
        None
    }
}

/// 4xx other than auth and rate limits: the deployment's problem or the caller's mistake.
fn client_error(status: u16, f: &Fields) -> Decision {
    // The gateway builds the URL and sets the model, so a 404 always concerns the deployment
    // (unknown model, wrong Azure deployment, wrong base URL), never the caller.
    if status == 404 || f.code_is(&["model_not_found", "DeploymentNotFound"]) {
        return (FailureClass::DeploymentInvalid, Some("model_not_found"), None);
    }
    if f.code_is(&["context_length_exceeded"])
        || f.message_has(&["maximum context length", "exceeds the context window"])
    {
        return (FailureClass::ContextWindow, Some("context_length_exceeded"), None);
    }
    if f.code_is(&["invalid_prompt", "content_policy_violation", "content_filter"])
        || f.inner_code.as_deref() == Some("ResponsibleAIPolicyViolation")
        || f.message_has(&["rejected as a result of our safety system"])
    {
        return (FailureClass::ContentFiltered, Some("content_filter"), None);
    }
    // A parameter this model does not take (`max_tokens` on o-series, Azure's
    // OperationNotSupported for a deployment of the wrong model kind).
    if f.code_is(&["unsupported_parameter", "unsupported_value", "OperationNotSupported"]) {
        return (FailureClass::DeploymentInvalid, Some("unsupported_parameter"), None);
    }
    (FailureClass::InvalidRequest, None, None)
}

/// 429: a quota that waiting cannot fix, or a rate limit with the best retry hint available.
fn rate_limited(headers: &HeaderMap, f: &Fields) -> Decision {
    let hint = retry_after::from_headers(headers, SystemTime::now())
        .or_else(|| reset_from_headers(headers))
        .or_else(|| retry_after::from_message(&f.message));
    let quota = f.code_is(&["insufficient_quota", "credit_balance_exhausted"])
        || f.kind_is(&["insufficient_quota"])
        || f.message_has(&["exceeded your current quota"])
        || hint.is_some_and(|d| d >= QUOTA_HINT);
    if quota {
        (FailureClass::RateLimited, Some("quota_exhausted"), None)
    } else {
        (FailureClass::RateLimited, None, hint)
    }
}

/// `x-ratelimit-reset-requests|tokens` (Go durations such as `6m0s`). Prefers the limits whose
/// `x-ratelimit-remaining-*` is 0 (the ones actually hit); takes the longest of those.
fn reset_from_headers(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: String| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let resets: Vec<(Duration, bool)> = ["requests", "tokens"]
        .iter()
        .filter_map(|kind| {
            let reset = header(format!("x-ratelimit-reset-{kind}")).and_then(retry_after::parse_go_duration)?;
            let exhausted = header(format!("x-ratelimit-remaining-{kind}")) == Some("0");
            Some((reset, exhausted))
        })
        .collect();
    let exhausted = resets.iter().filter(|r| r.1).map(|r| r.0).max();
    exhausted.or_else(|| resets.iter().map(|r| r.0).max())
}

/// A message for a body that is not JSON: the status and the start of the body, on one line.
fn non_json_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if snippet.is_empty() {
        format!("upstream answered HTTP {status} with an empty body")
    } else {
        format!("upstream answered HTTP {status} with a non-JSON body: {snippet}")
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_MESSAGE).collect()
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
