//! Bedrock errors -> [`Failure`].
//!
//! The body is `{"message": "..."}`; the exception name comes from the `x-amzn-ErrorType`
//! header (`ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/`: the part
//! before the first `:`, after the last `#`), else the body's `__type`, else its `code`. The
//! class follows the name; message text is read only where Bedrock leaves no other signal
//! (`ValidationException` covers context overflow, invalid or retired model ids and plain bad
//! input alike).

use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::canonical::Dialect;
use crate::failure::{Failure, FailureClass};
use crate::wire::retry_after;

/// Longest provider message kept in a [`Failure`].
const MAX_MESSAGE_CHARS: usize = 500;

const QUOTA: &str = "quota_exhausted";

/// Classifies a non-2xx answer from its status, headers and raw body.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let kind = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(normalize_type)
        .filter(|k| !k.is_empty())
        .or_else(|| body_type(parsed.as_ref()))
        .unwrap_or_default();
    let message = match parsed.as_ref().and_then(body_message) {
        Some(m) => m,
        None => {
            let text = String::from_utf8_lossy(body);
            match text.trim() {
                "" => format!("HTTP {status}"),
                t => format!("HTTP {status}: {t}"),
            }
        }
    };
    let (class, detail) = decide(&kind, Some(status), &message);
    let retry = match (class, detail) {
        // Bedrock sends no Retry-After; a proxy in front of it might.
        (FailureClass::RateLimited | FailureClass::Overloaded, None) => {
            retry_after::from_headers(headers, SystemTime::now())
        }
        _ => None,
    };
    let mut f = failure(class, detail, &kind, &message).status(status).retry_after(retry);
    if (400..500).contains(&status) {
        f = f.upstream(Dialect::Bedrock, Bytes::copy_from_slice(body));
    }
    f
}

/// Classifies an in-stream exception (`:message-type: exception`, named by `:exception-type`
/// in lowerCamelCase, e.g. `throttlingException`) or error (`:error-code`), from its name and
/// payload.
pub fn classify_exception(kind: &str, payload: &[u8]) -> Failure {
    let kind = upper_first(&normalize_type(kind));
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    let message = parsed.as_ref().and_then(body_message).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(payload).trim().to_string();
        if text.is_empty() {
            kind.clone()
        } else {
            text
        }
    });
    let (class, detail) = decide(&kind, None, &message);
    failure(class, detail, &kind, &message)
}

fn failure(class: FailureClass, detail: Option<&'static str>, kind: &str, message: &str) -> Failure {
    let text =
        if kind.is_empty() || message.contains(kind) { message.to_string() } else { format!("{kind}: {message}") };
    let mut f = Failure::new(class, text.chars().take(MAX_MESSAGE_CHARS).collect::<String>());
    f.detail = detail;
    f
}

/// `ThrottlingException:http://internal...` -> `ThrottlingException`;
/// `com.amazon.coral.service#ValidationException` -> `ValidationException`.
fn normalize_type(raw: &str) -> String {
    let before_colon = raw.split(':').next().unwrap_or(raw);
    before_colon.rsplit('#').next().unwrap_or(before_colon).trim().to_string()
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn body_type(body: Option<&Value>) -> Option<String> {
    let body = body?;
    ["__type", "code", "Code"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(normalize_type)
        .filter(|k| !k.is_empty())
}

fn body_message(body: &Value) -> Option<String> {
    ["message", "Message"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

/// The class from the exception name, then (for names that do not decide) the message, then
/// the status.
fn decide(kind: &str, status: Option<u16>, message: &str) -> (FailureClass, Option<&'static str>) {
    use FailureClass::*;
    let lower = message.to_ascii_lowercase();
    match kind {
        "ThrottlingException" if lower.contains("per day") => (RateLimited, Some(QUOTA)),
        "ThrottlingException" | "TooManyRequestsException" => (RateLimited, None),
        "ServiceQuotaExceededException" => (RateLimited, Some(QUOTA)),
        "ModelNotReadyException"
        | "ServiceUnavailableException"
        | "InternalServerException"
        | "InternalFailure"
        | "ModelTimeoutException"
        | "ModelErrorException"
        | "ModelStreamErrorException" => (Overloaded, None),
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "MissingAuthenticationTokenException"
        | "NotAuthorized"
        | "RequestExpired"
        // A Marketplace subscription being set up: this account cannot use the model yet.
        | "MPAgreementBeingCreated" => (Auth, None),
        "ResourceNotFoundException" | "FTUFormNotFilled" => (DeploymentInvalid, None),
        "ValidationException" => validation(&lower),
        _ => by_status(status, &lower),
    }
}

/// `ValidationException`: context overflow, an unusable model id, or the caller's own input.
fn validation(lower: &str) -> (FailureClass, Option<&'static str>) {
    let context = ["input is too long", "prompt is too long", "exceed context limit", "too many input tokens"];
    if context.iter().any(|p| lower.contains(p)) {
        return (FailureClass::ContextWindow, None);
    }
    let model = [
        "provided model identifier is invalid",
        "model identifier is invalid",
        "end of its life",
        "is deprecated",
        "has been deprecated",
        "is retired",
        "no longer available",
        "legacy",
        // Models that answer only through an inference profile.
        "with on-demand throughput isn",
    ];
    if model.iter().any(|p| lower.contains(p)) {
        return (FailureClass::DeploymentInvalid, Some("model_invalid"));
    }
    // A capability this model lacks (tool use, streaming tool use, images...): another
    // deployment may have it.
    if lower.contains("doesn't support") || lower.contains("does not support") || lower.contains("not supported") {
        return (FailureClass::DeploymentInvalid, Some("unsupported"));
    }
    (FailureClass::InvalidRequest, None)
}

/// When no exception name decides (a proxy's page, an unknown name).
fn by_status(status: Option<u16>, lower: &str) -> (FailureClass, Option<&'static str>) {
    use FailureClass::*;
    match status {
        Some(400) => validation(lower),
        Some(401 | 403) => (Auth, None),
        Some(404) => (DeploymentInvalid, None),
        Some(429) => (RateLimited, None),
        Some(s) if (400..500).contains(&s) && s != 408 => (InvalidRequest, None),
        // 408, 424, 5xx, and an unknown exception inside a 200 stream: the provider's trouble.
        _ => (Overloaded, None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;
    use serde_json::json;

    use super::*;

    const CORAL: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

    fn aws(status: u16, kind: &str, message: &str) -> Failure {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-errortype", HeaderValue::from_str(&format!("{kind}{CORAL}")).unwrap());
        h.insert("x-amzn-requestid", HeaderValue::from_static("9f3c..."));
        let body = serde_json::to_vec(&json!({ "message": message })).unwrap();
        classify(status, &h, &body)
    }

    fn class(f: &Failure) -> (FailureClass, Option<&'static str>) {
        (f.class, f.detail)
    }

    #[test]
    fn throttling_is_rate_limited_without_a_delay() {
        let f = aws(429, "ThrottlingException", "Too many requests, please wait before trying again.");
        assert_eq!(class(&f), (FailureClass::RateLimited, None));
        assert_eq!(f.retry_after, None);
        assert_eq!(f.status, Some(429));
        assert_eq!(f.message, "ThrottlingException: Too many requests, please wait before trying again.");
        let f = aws(429, "ThrottlingException", "Too many tokens, please wait before trying again.");
        assert_eq!(class(&f), (FailureClass::RateLimited, None));
        // A daily token quota does not come back within a request.
        let f = aws(429, "ThrottlingException", "Too many tokens per day, please wait before trying again.");
        assert_eq!(class(&f), (FailureClass::RateLimited, Some(QUOTA)));
    }

    #[test]
    fn a_proxy_retry_after_is_honoured() {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-errortype", HeaderValue::from_static("ThrottlingException"));
        h.insert("retry-after", HeaderValue::from_static("3"));
        let f = classify(429, &h, br#"{"message":"Too many requests"}"#);
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn quota_exceeded_is_exhaustion() {
        let f = aws(400, "ServiceQuotaExceededException", "Your request exceeds the service quota for your account.");
        assert_eq!(class(&f), (FailureClass::RateLimited, Some(QUOTA)));
        assert!(f.is_quota_exhausted());
        assert_eq!(f.retry_after, None);
    }

    #[test]
    fn capacity_and_model_trouble_is_overloaded() {
        for (status, kind) in [
            (429, "ModelNotReadyException"),
            (503, "ServiceUnavailableException"),
            (500, "InternalServerException"),
            (408, "ModelTimeoutException"),
            (424, "ModelErrorException"),
            (424, "ModelStreamErrorException"),
        ] {
            let f = aws(status, kind, "Bedrock is unable to process your request.");
            assert_eq!(class(&f), (FailureClass::Overloaded, None), "{kind}");
            assert_eq!(f.status, Some(status));
        }
    }

    #[test]
    fn auth_and_signing_failures() {
        for (status, kind) in [
            (403, "AccessDeniedException"),
            (403, "UnrecognizedClientException"),
            (403, "InvalidSignatureException"),
            (400, "IncompleteSignature"),
            (400, "IncompleteSignatureException"),
            (403, "ExpiredTokenException"),
            (403, "InvalidClientTokenId"),
            (403, "MissingAuthenticationTokenException"),
            (403, "NotAuthorized"),
            (400, "RequestExpired"),
            (403, "MPAgreementBeingCreated"),
        ] {
            let f = aws(status, kind, "The security token included in the request is invalid.");
            assert_eq!(class(&f), (FailureClass::Auth, None), "{kind}");
            assert!(f.class.fails_over());
        }
    }

    #[test]
    fn unknown_models() {
        let f = aws(404, "ResourceNotFoundException", "Model not found.");
        assert_eq!(class(&f), (FailureClass::DeploymentInvalid, None));
        let f = aws(404, "FTUFormNotFilled", "Model use case details have not been submitted for this account.");
        assert_eq!(f.class, FailureClass::DeploymentInvalid);
        for message in [
            "The provided model identifier is invalid.",
            "This model version has reached the end of its life. Please refer to the AWS documentation for more details.",
            "The model anthropic.claude-v2 is deprecated.",
            "Invocation of model ID anthropic.claude-3-5-sonnet-20241022-v2:0 with on-demand throughput isn\u{2019}t \
             supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
            "Invocation of model ID anthropic.claude-sonnet-4 with on-demand throughput isn't supported.",
        ] {
            let f = aws(400, "ValidationException", message);
            assert_eq!(class(&f), (FailureClass::DeploymentInvalid, Some("model_invalid")), "{message}");
        }
        let f = aws(400, "ValidationException", "This model doesn't support tool use in streaming mode.");
        assert_eq!(class(&f), (FailureClass::DeploymentInvalid, Some("unsupported")));
    }

    #[test]
    fn context_overflow() {
        for message in [
            "Input is too long for requested model.",
            "The model returned the following errors: prompt is too long: 227255 tokens > 200000 maximum",
            "The model returned the following errors: input length and `max_tokens` exceed context limit: 197000 + \
             8192 > 200000, decrease input length or `max_tokens` and try again",
        ] {
            let f = aws(400, "ValidationException", message);
            assert_eq!(class(&f), (FailureClass::ContextWindow, None), "{message}");
        }
    }

    #[test]
    fn other_validation_is_the_callers_mistake() {
        let f = aws(
            400,
            "ValidationException",
            "1 validation error detected: Value '5.0' at 'inferenceConfig.temperature' failed to satisfy constraint",
        );
        assert_eq!(class(&f), (FailureClass::InvalidRequest, None));
        assert!(!f.class.fails_over());
        let (dialect, body) = f.upstream.unwrap();
        assert_eq!(dialect, Dialect::Bedrock);
        assert!(body.starts_with(b"{\"message\""));
        let f = aws(400, "ValidationException", "A conversation must start with a user message.");
        assert_eq!(f.class, FailureClass::InvalidRequest);
    }

    #[test]
    fn the_type_comes_from_the_header_then_the_body() {
        // `__type` with a namespace, no header.
        let body = br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"bad token"}"#;
        let f = classify(403, &HeaderMap::new(), body);
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.message, "UnrecognizedClientException: bad token");
        // `code`, no header, no `__type`.
        let f = classify(400, &HeaderMap::new(), br#"{"code":"ThrottlingException","Message":"slow"}"#);
        assert_eq!(f.class, FailureClass::RateLimited);
        assert_eq!(f.message, "ThrottlingException: slow");
        // The header wins over the body.
        let mut h = HeaderMap::new();
        h.insert("x-amzn-ErrorType", HeaderValue::from_static("ServiceUnavailableException:http://x/"));
        let f = classify(400, &h, br#"{"__type":"ValidationException","message":"m"}"#);
        assert_eq!(f.class, FailureClass::Overloaded);
    }

    #[test]
    fn bodies_without_a_type_classify_by_status() {
        let html = b"<html><body>502 Bad Gateway</body></html>";
        let f = classify(502, &HeaderMap::new(), html);
        assert_eq!(f.class, FailureClass::Overloaded);
        assert_eq!(f.message, "HTTP 502: <html><body>502 Bad Gateway</body></html>");
        assert_eq!(classify(500, &HeaderMap::new(), b"").message, "HTTP 500");
        assert_eq!(classify(403, &HeaderMap::new(), b"").class, FailureClass::Auth);
        assert_eq!(classify(401, &HeaderMap::new(), b"").class, FailureClass::Auth);
        assert_eq!(classify(404, &HeaderMap::new(), b"").class, FailureClass::DeploymentInvalid);
        assert_eq!(classify(429, &HeaderMap::new(), b"").class, FailureClass::RateLimited);
        assert_eq!(classify(413, &HeaderMap::new(), b"too big").class, FailureClass::InvalidRequest);
        assert_eq!(classify(408, &HeaderMap::new(), b"").class, FailureClass::Overloaded);
        let f = classify(400, &HeaderMap::new(), br#"{"message":"Input is too long for requested model."}"#);
        assert_eq!(f.class, FailureClass::ContextWindow);
        // An injected game-day fault uses the OpenAI shape: the status decides.
        let f = classify(503, &HeaderMap::new(), br#"{"error":{"message":"injected","type":"injected"}}"#);
        assert_eq!(f.class, FailureClass::Overloaded);
    }

    #[test]
    fn in_stream_exceptions() {
        let cases = [
            (
                "throttlingException",
                r#"{"message":"Too many tokens, please wait before trying again."}"#,
                FailureClass::RateLimited,
            ),
            (
                "serviceUnavailableException",
                r#"{"message":"Bedrock is unable to process your request."}"#,
                FailureClass::Overloaded,
            ),
            ("internalServerException", r#"{"message":"internal"}"#, FailureClass::Overloaded),
            (
                "modelStreamErrorException",
                r#"{"message":"Model stream error","originalStatusCode":500,"originalMessage":"boom"}"#,
                FailureClass::Overloaded,
            ),
            (
                "validationException",
                r#"{"message":"Input is too long for requested model."}"#,
                FailureClass::ContextWindow,
            ),
            ("validationException", r#"{"message":"bad field"}"#, FailureClass::InvalidRequest),
            ("somethingNewException", r#"{"message":"?"}"#, FailureClass::Overloaded),
        ];
        for (kind, payload, expected) in cases {
            let f = classify_exception(kind, payload.as_bytes());
            assert_eq!(f.class, expected, "{kind}");
            assert_eq!(f.status, None);
            assert!(f.upstream.is_none());
        }
        let f = classify_exception("throttlingException", b"");
        assert_eq!(f.message, "ThrottlingException");
    }

    #[test]
    fn long_messages_are_truncated() {
        let f = aws(400, "ValidationException", &"é".repeat(2000));
        assert_eq!(f.message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
