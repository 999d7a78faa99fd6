//! Vertex AI: `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`
//! (and `:streamGenerateContent?alt=sse`) in Gemini's format, and
//! `…/publishers/anthropic/models/{m}:rawPredict` / `:streamRawPredict` in Anthropic's (model in
//! the URL, `anthropic_version` in the body).
//!
//! Every call needs `Authorization: Bearer <token>` with a token issued by `POST /token` that has
//! not expired (or one listed in `MockConfig::api_keys`); API keys are refused. The platform's
//! own errors (auth, quota, unknown model) are Google-shaped, `{"error":{"code","message","status"}}`
//! (Claude's quota errors wrapped in a one-element array, as observed); the model's errors on Claude
//! (overloaded, prompt too long, bad request) are Anthropic-shaped.

use std::borrow::Cow;

use http::header::HeaderMap;
use http::StatusCode;
use serde_json::{json, Value};

use super::{AuthFailure, ErrorSpec};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{format_secs, response, retry_after_secs, to_bytes, Resp};
use crate::state::{Dialect, State};

const JSON_UTF8: &str = "application/json; charset=UTF-8";

/// The bearer token, and whether it is one the mock issued and that is still valid.
pub(crate) fn check_auth<'h>(headers: &'h HeaderMap, state: &State) -> (Option<Cow<'h, str>>, Result<(), AuthFailure>) {
    let token = super::openai::api_key(headers).filter(|t| !t.is_empty());
    let verdict = match token {
        None => Err(AuthFailure::Missing),
        Some(t) if state.config.api_keys.iter().any(|k| k == t) => Ok(()),
        Some(t) if state.token_valid(t) == Some(true) => Ok(()),
        Some(_) => Err(AuthFailure::Invalid),
    };
    (token.map(Cow::Borrowed), verdict)
}

fn google(status: StatusCode, name: &str, message: &str, details: Vec<Value>, wrapped: bool) -> Resp {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": name});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    let body = if wrapped { json!([{ "error": error }]) } else { json!({ "error": error }) };
    response(status, JSON_UTF8, MockBody::full(to_bytes(&body)))
}

fn error_info(reason: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
           "metadata": {"service": "aiplatform.googleapis.com", "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent"}})
}

const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                                   login cookie or other valid authentication credential. See \
                                   https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// 401 UNAUTHENTICATED, worded for what was wrong: nothing sent, an API key, an expired or an
/// unknown token.
pub(crate) fn auth_error(failure: AuthFailure, headers: &HeaderMap, state: &State) -> Resp {
    let unauthenticated = |message: &str, reason: &str| {
        google(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message, vec![error_info(reason)], false)
    };
    match failure {
        AuthFailure::Missing if headers.contains_key("x-goog-api-key") => unauthenticated(
            "API keys are not supported by this API. Expected OAuth2 access token or other authentication \
             credentials that assert a principal. See https://cloud.google.com/docs/authentication",
            "CREDENTIALS_MISSING",
        ),
        AuthFailure::Missing | AuthFailure::MissingVersion => unauthenticated(
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie \
             or other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "CREDENTIALS_MISSING",
        ),
        AuthFailure::Invalid => {
            let expired = super::openai::api_key(headers).and_then(|t| state.token_valid(t)) == Some(false);
            unauthenticated(
                INVALID_CREDENTIALS,
                if expired { "ACCESS_TOKEN_EXPIRED" } else { "ACCESS_TOKEN_TYPE_UNSUPPORTED" },
            )
        }
    }
}

/// An injected error. `resource` is `projects/{p}/locations/{l}/publishers/{pub}/models/{m}`.
pub(crate) fn error(dialect: Dialect, spec: &ErrorSpec<'_>, resource: &str) -> Resp {
    let claude = dialect == Dialect::Anthropic;
    let model_errors = |spec: &ErrorSpec<'_>| {
        if claude {
            super::anthropic::error(spec)
        } else {
            super::gemini::error(spec)
        }
    };
    let Some(kind) = spec.kind else {
        return model_errors(spec);
    };
    match kind {
        ErrorKind::InvalidKey => google(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            INVALID_CREDENTIALS,
            vec![error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED")],
            false,
        ),
        ErrorKind::AccountDeactivated => google(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "This API method requires billing to be enabled. Please enable billing on project #mock by visiting \
             https://console.developers.google.com/billing/enable?project=mock then retry.",
            vec![error_info("BILLING_DISABLED")],
            false,
        ),
        ErrorKind::Forbidden => google(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!(
                "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/{resource}' \
                 (or it may not exist)."
            ),
            vec![error_info("IAM_PERMISSION_DENIED")],
            false,
        ),
        ErrorKind::ModelNotFound => google(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "Publisher Model `{resource}` was not found or your project does not have access to it. Please \
                 ensure you are using a valid model version."
            ),
            Vec::new(),
            false,
        ),
        ErrorKind::RateLimit => rate_limit(spec, claude),
        ErrorKind::QuotaExhausted => daily_quota(spec, claude),
        _ => model_errors(spec),
    }
}

/// 429 RESOURCE_EXHAUSTED: Gemini's "Resource exhausted", Claude's per-minute quota (wrapped in
/// an array); RetryInfo when the fault gives a delay.
fn rate_limit(spec: &ErrorSpec<'_>, claude: bool) -> Resp {
    let message = if claude {
        format!(
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base \
             model: anthropic-{}. Please submit a quota increase request. \
             https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
            spec.model
        )
    } else {
        "Resource exhausted. Please try again later. Please refer to \
         https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
            .to_string()
    };
    let details = spec
        .retry_after
        .and_then(retry_after_secs)
        .map(|s| vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format_secs(s)})])
        .unwrap_or_default();
    google(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", &message, details, claude)
}

/// A daily quota: a `QuotaFailure` whose quota id names a per-day limit.
fn daily_quota(spec: &ErrorSpec<'_>, claude: bool) -> Resp {
    let message = format!(
        "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_day_per_project_per_base_model \
         with base model: {}. Please submit a quota increase request.",
        spec.model
    );
    let details = vec![json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
        "quotaId": "GenerateContentRequestsPerDayPerProjectPerBaseModel",
        "quotaMetric": "aiplatform.googleapis.com/generate_content_requests_per_day_per_project_per_base_model"}]})];
    google(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", &message, details, claude)
}
