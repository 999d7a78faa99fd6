//! OpenAI error bodies: `{"error":{"message","type","param","code"}}`, `x-request-id`, and the
//! CDN's HTML pages for 502/504.

use http::StatusCode;
use serde_json::json;

use super::super::{cdn_page, mask_key, AuthFailure, ErrorSpec, Invalid};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{format_secs, json_response, response, retry_after_secs, set_header, Resp};

pub(super) fn with_request_id(mut resp: Resp, request_id: u64) -> Resp {
    set_header(&mut resp, "x-request-id", format!("req_{request_id:032x}"));
    resp
}

fn error_body(
    status: StatusCode,
    message: &str,
    typ: &str,
    param: Option<&str>,
    code: Option<&str>,
    request_id: u64,
) -> Resp {
    let body = json!({"error": {"message": message, "type": typ, "param": param, "code": code}});
    with_request_id(json_response(status, &body), request_id)
}

pub(crate) fn auth_error(failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    match failure {
        AuthFailure::Invalid => error(&ErrorSpec { kind: Some(ErrorKind::InvalidKey), status: None, ..*spec }),
        AuthFailure::Missing | AuthFailure::MissingVersion => error_body(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from \
             https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
            spec.request_id,
        ),
    }
}

pub(crate) fn invalid(inv: &Invalid, request_id: u64) -> Resp {
    let (param, code) = (inv.param.as_deref(), inv.code);
    error_body(StatusCode::BAD_REQUEST, &inv.message, "invalid_request_error", param, code, request_id)
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    let model = spec.model;
    let Some(kind) = spec.kind else {
        let status =
            spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let typ = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
        let message = format!("Mock upstream error: HTTP {status}");
        return error_body(status, &message, typ, None, None, rid);
    };
    let invalid_req = "invalid_request_error";
    match kind {
        ErrorKind::InvalidKey => {
            let message = format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask_key(spec.api_key)
            );
            error_body(StatusCode::UNAUTHORIZED, &message, invalid_req, None, Some("invalid_api_key"), rid)
        }
        ErrorKind::AccountDeactivated => error_body(
            StatusCode::UNAUTHORIZED,
            "This key is associated with a deactivated account. If you feel this is an error, contact us through \
             our help center at help.openai.com.",
            invalid_req,
            None,
            Some("account_deactivated"),
            rid,
        ),
        ErrorKind::Forbidden => error_body(
            StatusCode::FORBIDDEN,
            "Country, region, or territory not supported",
            "request_forbidden",
            None,
            Some("unsupported_country_region_territory"),
            rid,
        ),
        ErrorKind::ModelNotFound => {
            let message = format!("The model `{model}` does not exist or you do not have access to it.");
            error_body(StatusCode::NOT_FOUND, &message, invalid_req, None, Some("model_not_found"), rid)
        }
        ErrorKind::ContextLength => error_body(
            StatusCode::BAD_REQUEST,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 \
             tokens. Please reduce the length of the messages.",
            invalid_req,
            Some("messages"),
            Some("context_length_exceeded"),
            rid,
        ),
        ErrorKind::ContentPolicy => error_body(
            StatusCode::BAD_REQUEST,
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again \
             with a different prompt.",
            invalid_req,
            None,
            Some("invalid_prompt"),
            rid,
        ),
        ErrorKind::RateLimit => rate_limit(spec),
        ErrorKind::QuotaExhausted => error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details. For more information on \
             this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
            rid,
        ),
        ErrorKind::Server => error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
            rid,
        ),
        ErrorKind::BadGateway => html(StatusCode::BAD_GATEWAY, rid),
        ErrorKind::Timeout => html(StatusCode::GATEWAY_TIMEOUT, rid),
        ErrorKind::Unavailable => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable. Please try again later.",
            "service_unavailable_error",
            None,
            None,
            rid,
        ),
        ErrorKind::Overloaded => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is overloaded, please try again later.",
            "service_unavailable_error",
            None,
            Some("server_is_overloaded"),
            rid,
        ),
        ErrorKind::BadRequest => error_body(
            StatusCode::BAD_REQUEST,
            "Unrecognized request argument supplied: mock_argument",
            invalid_req,
            None,
            None,
            rid,
        ),
    }
}

/// 429 with the "try again in" hint and `x-ratelimit-*` headers (reset only with a retry delay).
fn rate_limit(spec: &ErrorSpec<'_>) -> Resp {
    let secs = spec.retry_after.and_then(retry_after_secs);
    let hint = secs.map(|s| format!(" Please try again in {}.", format_secs(s))).unwrap_or_default();
    let message = format!(
        "Rate limit reached for {} in organization org-mock on requests per min (RPM): Limit 500, Used 500, \
         Requested 1.{hint} Visit https://platform.openai.com/account/rate-limits to learn more.",
        spec.model
    );
    let mut resp = error_body(
        StatusCode::TOO_MANY_REQUESTS,
        &message,
        "requests",
        None,
        Some("rate_limit_exceeded"),
        spec.request_id,
    );
    set_header(&mut resp, "x-ratelimit-limit-requests", "500".into());
    set_header(&mut resp, "x-ratelimit-remaining-requests", "0".into());
    set_header(&mut resp, "x-ratelimit-limit-tokens", "30000".into());
    set_header(&mut resp, "x-ratelimit-remaining-tokens", "29000".into());
    if let Some(s) = secs {
        set_header(&mut resp, "x-ratelimit-reset-requests", format_secs(s));
        set_header(&mut resp, "x-ratelimit-reset-tokens", format_secs(s));
    }
    resp
}

fn html(status: StatusCode, rid: u64) -> Resp {
    with_request_id(response(status, "text/html", MockBody::full(cdn_page(status))), rid)
}
