//! Anthropic error bodies: `{"type":"error","error":{"type","message"},"request_id"}` and
//! the `request-id` header.

use http::StatusCode;
use serde_json::json;

use super::super::{cdn_page, AuthFailure, ErrorSpec, Invalid};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{json_response, response, retry_after_secs, rfc3339_in, set_header, set_static_header, Resp};

pub(super) fn request_id(rid: u64) -> String {
    format!("req_mock{rid:020x}")
}

fn error_body(status: StatusCode, typ: &str, message: &str, rid: u64) -> Resp {
    error_with(status, json!({"type": typ, "message": message}), rid)
}

fn error_with(status: StatusCode, error: serde_json::Value, rid: u64) -> Resp {
    let body = json!({"type": "error", "error": error, "request_id": request_id(rid)});
    let mut resp = json_response(status, &body);
    set_header(&mut resp, "request-id", request_id(rid));
    resp
}

pub(crate) fn auth_error(failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    match failure {
        AuthFailure::Missing => {
            error_body(StatusCode::UNAUTHORIZED, "authentication_error", "x-api-key header is required", rid)
        }
        AuthFailure::Invalid => error_body(StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key", rid),
        AuthFailure::MissingVersion => {
            error_body(StatusCode::BAD_REQUEST, "invalid_request_error", "anthropic-version: header is required", rid)
        }
    }
}

pub(crate) fn invalid(inv: &Invalid, rid: u64) -> Resp {
    error_body(StatusCode::BAD_REQUEST, "invalid_request_error", &inv.message, rid)
}

/// The `error.type` Anthropic uses for a status.
fn type_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    let Some(kind) = spec.kind else {
        let status =
            spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = format!("Mock upstream error: HTTP {status}");
        return error_body(status, type_for(status), &message, rid);
    };
    let simple = |status: StatusCode, message: &str| error_body(status, type_for(status), message, rid);
    match kind {
        ErrorKind::InvalidKey => simple(StatusCode::UNAUTHORIZED, "invalid x-api-key"),
        ErrorKind::AccountDeactivated => simple(StatusCode::UNAUTHORIZED, "This organization has been disabled."),
        ErrorKind::Forbidden => {
            simple(StatusCode::FORBIDDEN, "Your API key does not have permission to use the specified resource.")
        }
        ErrorKind::ModelNotFound => simple(StatusCode::NOT_FOUND, &format!("model: {}", spec.model)),
        ErrorKind::ContextLength => {
            simple(StatusCode::BAD_REQUEST, "prompt is too long: 210266 tokens > 200000 maximum")
        }
        ErrorKind::ContentPolicy => simple(StatusCode::BAD_REQUEST, "Output blocked by content filtering policy"),
        ErrorKind::RateLimit => rate_limit(spec),
        ErrorKind::QuotaExhausted => {
            let error = json!({"type": "rate_limit_error",
                "message": "You have reached your monthly spend limit. Raise the limit or wait until next month.",
                "details": {"error_code": "enforced_spend_limit_reached"}});
            let mut resp = error_with(StatusCode::TOO_MANY_REQUESTS, error, rid);
            set_static_header(&mut resp, "x-should-retry", "false");
            resp
        }
        ErrorKind::Server => simple(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        ErrorKind::BadGateway => {
            let mut resp =
                response(StatusCode::BAD_GATEWAY, "text/html", MockBody::full(cdn_page(StatusCode::BAD_GATEWAY)));
            set_header(&mut resp, "request-id", request_id(rid));
            resp
        }
        ErrorKind::Unavailable => simple(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
        ErrorKind::Overloaded => {
            let status = StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = simple(status, "Overloaded");
            set_static_header(&mut resp, "x-should-retry", "true");
            resp
        }
        ErrorKind::BadRequest => {
            simple(StatusCode::BAD_REQUEST, "temperature: Input should be less than or equal to 1")
        }
        ErrorKind::Timeout => simple(StatusCode::GATEWAY_TIMEOUT, "Request timed out"),
    }
}

fn rate_limit(spec: &ErrorSpec<'_>) -> Resp {
    let message = "This request would exceed the rate limit for your organization of 50 requests per minute. \
                   For details, refer to: https://docs.anthropic.com/en/api/rate-limits.";
    let mut resp = error_body(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message, spec.request_id);
    set_static_header(&mut resp, "anthropic-ratelimit-requests-limit", "50");
    set_static_header(&mut resp, "anthropic-ratelimit-requests-remaining", "0");
    if let Some(secs) = spec.retry_after.and_then(retry_after_secs) {
        set_header(&mut resp, "anthropic-ratelimit-requests-reset", rfc3339_in(secs));
    }
    resp
}
