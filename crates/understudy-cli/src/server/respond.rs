//! What the chat and embeddings handlers share: per-request options from headers, the trace
//! headers, gateway errors in the caller's format, and the one JSON log line per request.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use understudy::canonical::Dialect;
use understudy::report::{headers as hdr, Trace};
use understudy::route::byok::CallerKeys;
use understudy::wire::ErrorBody;
use understudy::{CallOptions, FailureClass, GatewayError};

use super::errors;

/// Per-request header that overrides the route's deadline, e.g. `x-understudy-deadline: 10s`.
pub const DEADLINE_HEADER: &str = "x-understudy-deadline";

/// Options from the request's headers: the deadline override and the caller's own provider keys
/// (`x-understudy-<kind>-key`), or a 400 in the caller's format naming the bad header.
pub fn call_options(headers: &HeaderMap, front: Dialect) -> Result<CallOptions, Box<Response>> {
    let bad = |message: String, param: Option<String>| {
        let mut err = ErrorBody::new(400, errors::invalid_request_type(front), message).code("invalid_request");
        err.param = param;
        Box::new(errors::response(front, &err))
    };
    let deadline = match headers.get(DEADLINE_HEADER).map(|v| v.to_str().map(|s| humantime::parse_duration(s.trim()))) {
        None => None,
        Some(Ok(Ok(d))) if !d.is_zero() => Some(d),
        Some(_) => {
            let msg = format!("{DEADLINE_HEADER} must be a duration such as 10s or 1500ms");
            return Err(bad(msg, Some(DEADLINE_HEADER.into())));
        }
    };
    let caller_keys = CallerKeys::from_headers(headers).map_err(|e| bad(e.message, e.param))?;
    Ok(CallOptions { deadline, caller_keys })
}

/// Time spent in the gateway itself: everything but waiting on providers and deliberate pauses.
pub fn overhead(arrived: Instant, trace: &Trace) -> Duration {
    arrived.elapsed().saturating_sub(trace.upstream + trace.waited)
}

/// The caller's `x-request-id` when it is sane, else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(hdr::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Adds the `x-understudy-*` headers that say who answered and why.
pub fn with_trace(mut r: Response, trace: &Trace) -> Response {
    for (name, value) in hdr::for_trace(trace) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// The `outcome` label and log field of a failed request.
pub fn outcome(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::UnknownRoute(_) => "unknown_route",
        GatewayError::Rejected(f) => f.class.as_str(),
        GatewayError::Exhausted { .. } => "all_candidates_failed",
    }
}

/// A gateway error in the caller's format, with its status.
pub fn error_response(front: Dialect, e: &GatewayError, trace: &Trace) -> (Response, u16) {
    match e {
        GatewayError::UnknownRoute(model) => {
            let err = ErrorBody::new(
                404,
                errors::not_found_type(front),
                format!("the model `{model}` is not a configured route; GET /v1/models lists them"),
            )
            .code("model_not_found");
            (errors::response(front, &err), 404)
        }
        GatewayError::Rejected(f) => {
            let status = f.status.unwrap_or(400);
            // A caller's own mistake reaches a caller of the same dialect exactly as the
            // provider wrote it.
            if let Some((dialect, body)) = &f.upstream {
                if *dialect == front {
                    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    return (errors::raw(code, body.clone()), status);
                }
            }
            let (ty, code) = match f.class {
                FailureClass::ContentFiltered => (errors::invalid_request_type(front), "content_filter"),
                _ => (errors::invalid_request_type(front), "invalid_request"),
            };
            let err = ErrorBody::new(status, ty, f.message.clone()).code(code);
            (errors::response(front, &err), status)
        }
        GatewayError::Exhausted { last, retry_after } => exhausted(front, last, *retry_after, trace),
    }
}

fn exhausted(front: Dialect, last: &understudy::Failure, retry_after: Duration, trace: &Trace) -> (Response, u16) {
    let classes: Vec<FailureClass> = trace.failures().filter_map(|a| a.class).collect();
    let all = |c: FailureClass| !classes.is_empty() && classes.iter().all(|x| *x == c);
    let context_only = trace.skipped.iter().all(|s| s.reason == "context_window")
        && classes.iter().all(|c| *c == FailureClass::ContextWindow)
        && !(classes.is_empty() && trace.skipped.is_empty());
    // Only the caller's own provider keys were tried, and refused: theirs to fix.
    let caller_keys_refused = !classes.is_empty()
        && trace.failures().all(|a| a.caller_key && a.class == Some(FailureClass::Auth))
        && trace.skipped.iter().all(|s| s.reason == "caller_key_rejected");
    let (status, code) = if context_only {
        (400, "context_length_exceeded")
    } else if caller_keys_refused {
        (401, "caller_key_rejected")
    } else if all(FailureClass::RateLimited) {
        (429, "all_candidates_failed")
    } else {
        (503, "all_candidates_failed")
    };
    let skipped: Vec<String> = trace.skipped.iter().map(|s| format!("{}={}", s.deployment, s.reason)).collect();
    let message = match trace.attempts.len() {
        0 if !skipped.is_empty() => {
            format!("every candidate of route `{}` is unavailable: {}", trace.route, skipped.join(", "))
        }
        0 => "no candidate could be tried before the deadline".to_string(),
        n => format!(
            "all {} candidates of route `{}` failed ({} attempts); last: {}",
            trace.attempts.iter().map(|a| &a.deployment).collect::<std::collections::BTreeSet<_>>().len(),
            trace.route,
            n,
            last
        ),
    };
    let mut err = ErrorBody::new(status, "all_candidates_failed", message).code(code);
    err.extra.insert("attempts".into(), serde_json::to_value(&trace.attempts).unwrap_or_default());
    if !trace.skipped.is_empty() {
        err.extra.insert("skipped".into(), serde_json::to_value(&trace.skipped).unwrap_or_default());
    }
    let mut resp = errors::response(front, &err);
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    resp.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    (resp, status)
}

/// The fields of the one JSON log line a request writes (target `understudy::request`).
pub struct LogLine<'a> {
    pub request_id: &'a str,
    /// `chat` or `embeddings`.
    pub endpoint: &'static str,
    pub front: Dialect,
    pub model: &'a str,
    pub stream: bool,
    pub status: u16,
    pub outcome: &'a str,
    pub total: Duration,
    pub overhead: Duration,
    pub error: Option<&'a GatewayError>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Writes the request's log line. Callers' keys never reach it: the trace holds deployment ids,
/// classes and redacted provider messages only.
pub fn log_request(trace: &Trace, l: &LogLine<'_>) {
    let attempts = serde_json::to_string(&trace.attempts).unwrap_or_default();
    tracing::info!(
        target: "understudy::request",
        request_id = l.request_id,
        endpoint = l.endpoint,
        route = %trace.route,
        front = l.front.as_str(),
        model = %l.model,
        stream = l.stream,
        status = l.status,
        outcome = l.outcome,
        served_by = trace.served_by.as_deref().unwrap_or(""),
        fell_back = trace.fell_back(),
        attempts = %attempts,
        duration_ms = l.total.as_secs_f64() * 1e3,
        overhead_ms = l.overhead.as_secs_f64() * 1e3,
        input_tokens = l.input_tokens,
        output_tokens = l.output_tokens,
        error = l.error.map(|e| e.error_type()).unwrap_or(""),
        "request"
    );
}
