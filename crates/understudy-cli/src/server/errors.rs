//! Errors in the caller's own format (OpenAI or Anthropic error JSON) with the right status.
//! Every error response also carries `x-should-retry: false`: the gateway already retried and
//! failed over, and SDK retries stacked on top would multiply load on a failing provider.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use understudy::canonical::Dialect;
use understudy::wire::{front, ErrorBody};

pub fn front_of(path: &str) -> Dialect {
    if path.starts_with("/v1/messages") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

pub fn body(front: Dialect, err: &ErrorBody) -> String {
    front::encode_error(front, err).to_string()
}

pub fn response(front: Dialect, err: &ErrorBody) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_GATEWAY);
    raw(status, body(front, err))
}

/// A JSON error body as given.
pub fn raw(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut r = (status, body.into()).into_response();
    let h = r.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-should-retry", HeaderValue::from_static("false"));
    r
}

/// The error type for a rejected credential in each dialect.
pub fn auth_type(front: Dialect) -> &'static str {
    match front {
        Dialect::Anthropic => "authentication_error",
        _ => "invalid_request_error",
    }
}

/// The error type for a caller's bad request in each dialect.
pub fn invalid_request_type(_front: Dialect) -> &'static str {
    "invalid_request_error"
}

pub fn not_found_type(front: Dialect) -> &'static str {
    match front {
        Dialect::Anthropic => "not_found_error",
        _ => "invalid_request_error",
    }
}
