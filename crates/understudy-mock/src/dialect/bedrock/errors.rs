//! Bedrock error answers: `{"message": "..."}` with the exception named in the
//! `x-amzn-ErrorType` header (`ThrottlingException:http://internal.amazon.com/coral/...`), and
//! `x-amzn-RequestId`.

use http::StatusCode;
use serde_json::json;

use super::super::{cdn_page, AuthFailure, ErrorSpec, Invalid};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{json_response, response, set_header, Resp};

const CORAL: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

/// A request id in AWS's UUID shape.
pub(super) fn request_id(rid: u64) -> String {
    format!("00000000-0000-4000-8000-{rid:012x}")
}

pub(crate) fn aws_error(status: StatusCode, kind: &str, message: &str, rid: u64) -> Resp {
    let mut resp = json_response(status, &json!({ "message": message }));
    set_header(&mut resp, "x-amzn-errortype", format!("{kind}{CORAL}"));
    set_header(&mut resp, "x-amzn-requestid", request_id(rid));
    resp
}

pub(crate) fn invalid(inv: &Invalid, rid: u64) -> Resp {
    aws_error(StatusCode::BAD_REQUEST, "ValidationException", &inv.message, rid)
}

/// Only a bearer token (a Bedrock API key) reaches here; SigV4 has its own answers.
pub(crate) fn auth_error(failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    match failure {
        AuthFailure::Invalid => aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "Authentication failed: Please make sure your API Key is valid.",
            spec.request_id,
        ),
        AuthFailure::Missing | AuthFailure::MissingVersion => aws_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
            spec.request_id,
        ),
    }
}

/// The exception Bedrock uses for a bare status.
fn type_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        s if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    }
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    let Some(kind) = spec.kind else {
        let status =
            spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return aws_error(status, type_for(status), &format!("Mock upstream error: HTTP {status}"), rid);
    };
    let e = |status: StatusCode, kind: &str, message: &str| aws_error(status, kind, message, rid);
    match kind {
        ErrorKind::InvalidKey => e(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        ErrorKind::AccountDeactivated => e(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Your account is not authorized to invoke this API operation.",
        ),
        ErrorKind::Forbidden => e(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        ErrorKind::ModelNotFound => e(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Could not resolve the foundation model from the provided model identifier: {}", spec.model),
        ),
        ErrorKind::ContextLength => {
            e(StatusCode::BAD_REQUEST, "ValidationException", "Input is too long for requested model.")
        }
        // Normally answered as a guardrail intervention (HTTP 200); this body is used only with
        // `status`.
        ErrorKind::ContentPolicy => e(StatusCode::BAD_REQUEST, "ValidationException", "The request was blocked."),
        ErrorKind::RateLimit => e(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        ErrorKind::QuotaExhausted => e(
            StatusCode::BAD_REQUEST,
            "ServiceQuotaExceededException",
            "Your request exceeds the service quota for your account. You can view your quotas at \
             https://console.aws.amazon.com/servicequotas/.",
        ),
        ErrorKind::Server => e(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "The server encountered an internal error while processing the request.",
        ),
        ErrorKind::BadGateway => {
            let mut resp =
                response(StatusCode::BAD_GATEWAY, "text/html", MockBody::full(cdn_page(StatusCode::BAD_GATEWAY)));
            set_header(&mut resp, "x-amzn-requestid", request_id(rid));
            resp
        }
        ErrorKind::Unavailable | ErrorKind::Overloaded => e(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        ErrorKind::BadRequest => e(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value '5.0' at 'inferenceConfig.temperature' failed to satisfy constraint: \
             Member must have value less than or equal to 1",
        ),
        ErrorKind::Timeout => e(
            StatusCode::REQUEST_TIMEOUT,
            "ModelTimeoutException",
            "Model has timed out in processing the request. Try your request again.",
        ),
    }
}
