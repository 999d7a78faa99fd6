//! Gemini (Google API) error bodies: `{"error":{"code","message","status","details"}}`.

use http::StatusCode;
use serde_json::{json, Value};

use super::super::{AuthFailure, ErrorSpec, Invalid};
use super::JSON_UTF8;
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{format_secs, response, retry_after_secs, to_bytes, Resp};

fn error_json(status: StatusCode, name: &str, message: &str, details: Vec<Value>) -> Resp {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": name});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    response(status, JSON_UTF8, MockBody::full(to_bytes(&json!({ "error": error }))))
}

fn error_info(reason: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
           "metadata": {"service": "generativelanguage.googleapis.com"}})
}

fn invalid_key() -> Resp {
    let message = "API key not valid. Please pass a valid API key.";
    let localized =
        json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message});
    error_json(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, vec![error_info("API_KEY_INVALID"), localized])
}

pub(crate) fn auth_error(failure: AuthFailure, _spec: &ErrorSpec<'_>) -> Resp {
    match failure {
        AuthFailure::Invalid => invalid_key(),
        AuthFailure::Missing | AuthFailure::MissingVersion => error_json(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key \
             or other form of API consumer identity to call this API.",
            Vec::new(),
        ),
    }
}

pub(crate) fn invalid(inv: &Invalid) -> Resp {
    error_json(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &inv.message, Vec::new())
}

/// The canonical google.rpc code name Google uses for an HTTP status.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let Some(kind) = spec.kind else {
        let status =
            spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_json(status, status_name(status), &format!("Mock upstream error: HTTP {status}"), Vec::new());
    };
    let simple = |status: StatusCode, message: &str| error_json(status, status_name(status), message, Vec::new());
    match kind {
        ErrorKind::InvalidKey => invalid_key(),
        ErrorKind::AccountDeactivated => error_json(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission denied: Consumer 'api_key:mock' has been suspended.",
            vec![error_info("CONSUMER_SUSPENDED")],
        ),
        ErrorKind::Forbidden => simple(StatusCode::FORBIDDEN, "The caller does not have permission"),
        ErrorKind::ModelNotFound => simple(
            StatusCode::NOT_FOUND,
            &format!(
                "models/{} is not found for API version v1beta, or is not supported for generateContent. Call \
                 ListModels to see the list of available models and their supported methods.",
                spec.model
            ),
        ),
        ErrorKind::ContextLength => simple(
            StatusCode::BAD_REQUEST,
            "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).",
        ),
        // Normally answered as a blocked prompt (HTTP 200); this body is used only with `status`.
        ErrorKind::ContentPolicy => simple(StatusCode::BAD_REQUEST, "The request was blocked by the content policy."),
        ErrorKind::RateLimit => quota(spec, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
        ErrorKind::QuotaExhausted => quota(spec, "GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
        ErrorKind::Server => simple(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        ),
        ErrorKind::BadGateway => response(StatusCode::BAD_GATEWAY, "text/html; charset=UTF-8", MockBody::full(GFE_502)),
        ErrorKind::Unavailable => simple(StatusCode::SERVICE_UNAVAILABLE, "The service is currently unavailable."),
        ErrorKind::Overloaded => {
            simple(StatusCode::SERVICE_UNAVAILABLE, "The model is overloaded. Please try again later.")
        }
        ErrorKind::BadRequest => simple(StatusCode::BAD_REQUEST, "Request contains an invalid argument."),
        ErrorKind::Timeout => simple(StatusCode::GATEWAY_TIMEOUT, "Deadline expired before operation could complete."),
    }
}

/// The front end's own HTML error page (not JSON).
const GFE_502: &str =
    "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 502 (Server Error)</title>\n\
<p><b>502.</b> <ins>That's an error.</ins>\n<p>The server encountered a temporary error and could not complete your \
request.<p>Please try again in 30 seconds. <ins>That's all we know.</ins>\n";

/// 429 RESOURCE_EXHAUSTED naming the quota (`...PerDay...` means a daily cap), with
/// RetryInfo when the fault gives a delay.
fn quota(spec: &ErrorSpec<'_>, quota_id: &str) -> Resp {
    let secs = spec.retry_after.and_then(retry_after_secs);
    let hint = secs.map(|s| format!(" Please retry in {}.", format_secs(s))).unwrap_or_default();
    let message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on this \
         error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.{hint}"
    );
    let mut details = vec![
        json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": spec.model},
            "quotaValue": "15"}]}),
        json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
    ];
    if let Some(s) = secs {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format_secs(s)}));
    }
    error_json(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", &message, details)
}
