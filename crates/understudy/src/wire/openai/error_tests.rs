//! Classification of every OpenAI and Azure OpenAI error shape in the reference
//! (`reference/provider-wire-formats.md` sections 1, 5 and 7).

use std::time::Duration;

use http::HeaderMap;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h
}

fn openai_body(message: &str, kind: Option<&str>, code: Option<&str>, param: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&json!({"error": {"message": message, "type": kind, "param": param, "code": code}})).unwrap()
}

fn classify_plain(status: u16, body: &[u8]) -> Failure {
    classify(status, &HeaderMap::new(), body)
}

// ---- OpenAI (reference section 1 table) ----

#[test]
fn bad_key_is_auth_invalid_api_key() {
    let body = openai_body(
        "Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.",
        Some("invalid_request_error"),
        Some("invalid_api_key"),
        None,
    );
    let f = classify_plain(401, &body);
    assert_eq!(f.class, FailureClass::Auth);
    assert_eq!(f.detail, Some("invalid_api_key"));
    assert_eq!(f.status, Some(401));
    assert!(f.message.starts_with("Incorrect API key provided"));
    assert_eq!(f.upstream, Some((Dialect::OpenAi, Bytes::from(body))));
}

#[test]
fn deactivated_account_is_auth_with_detail() {
    for message in [
        "This key is associated with a deactivated account. If you feel this is an error, contact us.",
        "The OpenAI account associated with this API key has been deactivated. If you are the developer...",
    ] {
        let body = openai_body(message, Some("invalid_request_error"), Some("account_deactivated"), None);
        let f = classify_plain(401, &body);
        assert_eq!(f.class, FailureClass::Auth);
        assert_eq!(f.detail, Some("account_deactivated"));
        assert!(f.retry_after.is_none());
    }
}

#[test]
fn org_ip_and_region_refusals_are_auth() {
    let cases = [
        (401, "You must be a member of an organization to use the API.", None),
        (401, "IP not authorized", None),
        (403, "Country, region, or territory not supported", Some("unsupported_country_region_territory")),
    ];
    for (status, message, code) in cases {
        let f = classify_plain(status, &openai_body(message, Some("invalid_request_error"), code, None));
        assert_eq!(f.class, FailureClass::Auth, "{message}");
        assert_eq!(f.detail, None);
        assert_eq!(f.status, Some(status));
    }
}

#[test]
fn quota_and_billing_are_not_retryable() {
    let cases = [
        (Some("insufficient_quota"), Some("insufficient_quota")),
        // Older bodies: code null, type insufficient_quota.
        (Some("insufficient_quota"), None),
        (Some("invalid_request_error"), Some("credit_balance_exhausted")),
    ];
    for (kind, code) in cases {
        let body = openai_body(
            "You exceeded your current quota, please check your plan and billing details.",
            kind,
            code,
            None,
        );
        // Even a Retry-After header does not make a quota retryable.
        let f = classify(429, &headers(&[("retry-after", "20")]), &body);
        assert_eq!(f.class, FailureClass::RateLimited);
        assert!(f.is_quota_exhausted(), "{kind:?} {code:?}");
        assert_eq!(f.retry_after, None);
    }
}

const RATE_LIMIT_MSG: &str = "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms. Visit https://platform.openai.com/account/rate-limits to learn more.";

#[test]
fn rate_limit_delay_from_message_when_no_header() {
    let body = openai_body(RATE_LIMIT_MSG, Some("tokens"), Some("rate_limit_exceeded"), None);
    let f = classify_plain(429, &body);
    assert_eq!(f.class, FailureClass::RateLimited);
    assert_eq!(f.detail, None);
    assert_eq!(f.retry_after, Some(Duration::from_millis(644)));
}

#[test]
fn rate_limit_delay_prefers_headers() {
    let body = openai_body(RATE_LIMIT_MSG, Some("tokens"), Some("rate_limit_exceeded"), None);
    let f = classify(429, &headers(&[("retry-after-ms", "1500"), ("retry-after", "9")]), &body);
    assert_eq!(f.retry_after, Some(Duration::from_millis(1500)));
    let f = classify(429, &headers(&[("retry-after", "9")]), &body);
    assert_eq!(f.retry_after, Some(Duration::from_secs(9)));
    // Without Retry-After: the reset of the exhausted limit, before the message.
    let h = headers(&[
        ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-requests", "120ms"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ]);
    assert_eq!(classify(429, &h, &body).retry_after, Some(Duration::from_secs(360)));
    let h = headers(&[("x-ratelimit-reset-requests", "1s"), ("x-ratelimit-reset-tokens", "2.5s")]);
    assert_eq!(classify(429, &h, &body).retry_after, Some(Duration::from_millis(2500)));
}

#[test]
fn ramp_too_fast_is_rate_limited() {
    let body = openai_body("Please reduce your rate of requests.", Some("rate_limit_error"), Some("slow_down"), None);
    let f = classify_plain(429, &body);
    assert_eq!(f.class, FailureClass::RateLimited);
    assert!(!f.is_quota_exhausted());
}

#[test]
fn unknown_model_is_deployment_invalid() {
    let body = openai_body(
        "The model `gpt-9` does not exist or you do not have access to it.",
        Some("invalid_request_error"),
        Some("model_not_found"),
        None,
    );
    let f = classify_plain(404, &body);
    assert_eq!(f.class, FailureClass::DeploymentInvalid);
    assert_eq!(f.detail, Some("model_not_found"));
}

#[test]
fn context_overflow_variants() {
    let cases = [
        (Some("context_length_exceeded"), "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages."),
        (Some("context_length_exceeded"), "This model's maximum context length is 4097 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion)."),
        (Some("context_length_exceeded"), "Your input exceeds the context window of this model. Please adjust your input and try again."),
        // Matched by message when a compatible server leaves the code out.
        (None, "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens."),
    ];
    for (code, message) in cases {
        let f = classify_plain(400, &openai_body(message, Some("invalid_request_error"), code, Some("messages")));
        assert_eq!(f.class, FailureClass::ContextWindow, "{message}");
        assert_eq!(f.detail, Some("context_length_exceeded"));
        assert!(f.upstream.is_some());
    }
}

#[test]
fn flagged_prompts_are_content_filtered() {
    let cases = [
        (Some("invalid_prompt"), "Invalid prompt: your prompt was flagged as potentially violating our usage policy."),
        (Some("content_policy_violation"), "Your request was rejected as a result of our safety system."),
        (None, "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed."),
    ];
    for (code, message) in cases {
        let f = classify_plain(400, &openai_body(message, Some("invalid_request_error"), code, None));
        assert_eq!(f.class, FailureClass::ContentFiltered, "{message}");
    }
}

#[test]
fn server_errors_and_overload_are_overloaded() {
    let cases = [
        (500, Some("server_error"), None, "The server had an error while processing your request. Sorry about that!"),
        (500, Some("server_error"), Some("server_error"), "The server had an error while processing your request."),
        (503, Some("service_unavailable_error"), Some("server_is_overloaded"), "The server is overloaded."),
        (503, Some("server_error"), None, "That model is currently overloaded with other requests."),
    ];
    for (status, kind, code, message) in cases {
        let f = classify_plain(status, &openai_body(message, kind, code, None));
        assert_eq!(f.class, FailureClass::Overloaded, "{message}");
        assert_eq!(f.status, Some(status));
        assert_eq!(f.upstream, None);
    }
    let f = classify(503, &headers(&[("retry-after", "3")]), b"{}");
    assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
}

#[test]
fn timeouts_conflicts_and_all_5xx_are_overloaded() {
    for status in [408, 409, 500, 502, 503, 504, 529, 599] {
        assert_eq!(classify_plain(status, b"{}").class, FailureClass::Overloaded, "{status}");
    }
}

#[test]
fn unsupported_parameter_is_deployment_invalid() {
    let body = openai_body(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        Some("invalid_request_error"),
        Some("unsupported_parameter"),
        Some("max_tokens"),
    );
    let f = classify_plain(400, &body);
    assert_eq!(f.class, FailureClass::DeploymentInvalid);
    assert_eq!(f.detail, Some("unsupported_parameter"));
    let body = openai_body(
        "Unsupported value: 'temperature' does not support 0.2 with this model.",
        Some("invalid_request_error"),
        Some("unsupported_value"),
        Some("temperature"),
    );
    assert_eq!(classify_plain(400, &body).class, FailureClass::DeploymentInvalid);
}

#[test]
fn other_4xx_is_the_callers_mistake_returned_unchanged() {
    let body = openai_body(
        "Invalid type for 'messages[0].content': expected a string.",
        Some("invalid_request_error"),
        None,
        Some("messages[0].content"),
    );
    for status in [400, 413, 422] {
        let f = classify_plain(status, &body);
        assert_eq!(f.class, FailureClass::InvalidRequest, "{status}");
        assert_eq!(f.upstream, Some((Dialect::OpenAi, Bytes::from(body.clone()))));
    }
}

// ---- Azure OpenAI (reference section 5 table) ----

#[test]
fn azure_prompt_filter_is_content_filtered() {
    let body = serde_json::to_vec(&json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": false, "severity": "safe"},
            "jailbreak": {"filtered": true, "detected": true},
            "custom_blocklists": [{"filtered": true, "id": "myList"}]}}}}))
    .unwrap();
    let f = classify_plain(400, &body);
    assert_eq!(f.class, FailureClass::ContentFiltered);
    assert_eq!(f.upstream, Some((Dialect::OpenAi, Bytes::from(body))));
    // The innererror alone is enough.
    let body = json!({"error": {"message": "filtered", "code": "BadRequest",
        "innererror": {"code": "ResponsibleAIPolicyViolation"}}});
    let f = classify_plain(400, &serde_json::to_vec(&body).unwrap());
    assert_eq!(f.class, FailureClass::ContentFiltered);
}

#[test]
fn azure_rate_limits_take_the_delay_from_headers_or_message() {
    let body = json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}});
    let body = serde_json::to_vec(&body).unwrap();
    let f = classify_plain(429, &body);
    assert_eq!(f.class, FailureClass::RateLimited);
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
    let f = classify(429, &headers(&[("retry-after-ms", "7250"), ("retry-after", "8")]), &body);
    assert_eq!(f.retry_after, Some(Duration::from_millis(7250)));

    let short = serde_json::to_vec(
        &json!({"error": {"code": "429", "message": "Rate limit is exceeded. Try again in 2 seconds."}}),
    )
    .unwrap();
    assert_eq!(classify_plain(429, &short).retry_after, Some(Duration::from_secs(2)));
}

#[test]
fn azure_daily_quota_is_quota_exhausted() {
    let body = json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation have exceeded call rate limit of your current tier. Please retry after 86400 seconds."}});
    let f = classify_plain(429, &serde_json::to_vec(&body).unwrap());
    assert!(f.is_quota_exhausted());
    assert_eq!(f.retry_after, None);
    // The same hint from a header.
    let f = classify(429, &headers(&[("retry-after", "86400")]), b"{}");
    assert!(f.is_quota_exhausted());
}

#[test]
fn azure_wrong_deployment_is_deployment_invalid() {
    let body = json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}});
    let f = classify_plain(404, &serde_json::to_vec(&body).unwrap());
    assert_eq!(f.class, FailureClass::DeploymentInvalid);
    assert_eq!(f.detail, Some("model_not_found"));
}

#[test]
fn azure_bad_key_and_forbidden_are_auth() {
    let body = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
    let f = classify_plain(401, &serde_json::to_vec(&body).unwrap());
    assert_eq!(f.class, FailureClass::Auth);
    assert!(f.message.starts_with("Access denied"));
    assert_eq!(classify_plain(403, b"{}").class, FailureClass::Auth);
}

#[test]
fn azure_context_overflow_and_server_errors() {
    let body = openai_body(
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
        Some("invalid_request_error"),
        Some("context_length_exceeded"),
        Some("messages"),
    );
    assert_eq!(classify_plain(400, &body).class, FailureClass::ContextWindow);
    let body = json!({"error": {"code": "InternalServerError", "message": "The service is temporarily unable to process your request."}});
    assert_eq!(classify_plain(500, &serde_json::to_vec(&body).unwrap()).class, FailureClass::Overloaded);
}

// ---- bodies that are not OpenAI's ----

#[test]
fn non_json_bodies_classify_by_status() {
    let html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body></html>";
    let f = classify_plain(502, html);
    assert_eq!(f.class, FailureClass::Overloaded);
    assert!(f.message.contains("502 Bad Gateway"), "{}", f.message);
    assert!(!f.message.contains('\n'));
    assert_eq!(classify_plain(401, b"Unauthorized").class, FailureClass::Auth);
    assert_eq!(classify_plain(429, b"").class, FailureClass::RateLimited);
    let f = classify_plain(400, b"bad request");
    assert_eq!(f.class, FailureClass::InvalidRequest);
    assert_eq!(f.upstream, None, "only JSON bodies are handed back to callers");
    assert_eq!(classify_plain(302, b"moved").class, FailureClass::InvalidResponse);
}

#[test]
fn compatible_server_shapes() {
    // `{"error":"text"}` and a bare `{"message"}`.
    let f = classify_plain(404, br#"{"error":"model 'llama3' not found, try pulling it first"}"#);
    assert_eq!(f.class, FailureClass::DeploymentInvalid);
    assert!(f.message.contains("llama3"));
    let f = classify_plain(401, br#"{"statusCode":401,"message":"Access denied due to missing subscription key."}"#);
    assert_eq!(f.class, FailureClass::Auth);
    assert!(f.message.starts_with("Access denied"));
    // Payment required: out of credit.
    assert!(classify_plain(402, br#"{"error":{"message":"Insufficient credits"}}"#).is_quota_exhausted());
}

#[test]
fn messages_are_truncated() {
    let long = "x".repeat(2000);
    let f = classify_plain(400, &openai_body(&long, None, None, None));
    assert_eq!(f.message.chars().count(), 500);
    let f = classify_plain(500, b"{}");
    assert_eq!(f.message, "upstream answered HTTP 500");
}

#[test]
fn in_stream_errors_are_inferred_from_the_body() {
    let h = HeaderMap::new();
    let f = classify_value(
        200,
        &h,
        &json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}),
    );
    assert_eq!(f.class, FailureClass::Overloaded);
    assert_eq!(f.status, Some(200));
    let f = classify_value(
        200,
        &h,
        &json!({"error": {"message": RATE_LIMIT_MSG, "type": "tokens", "code": "rate_limit_exceeded"}}),
    );
    assert_eq!(f.class, FailureClass::RateLimited);
    assert_eq!(f.retry_after, Some(Duration::from_millis(644)));
    let f = classify_value(
        200,
        &h,
        &json!({"error": {"message": "bad", "type": "invalid_request_error", "code": "context_length_exceeded"}}),
    );
    assert_eq!(f.class, FailureClass::ContextWindow);
    let f = classify_value(200, &h, &json!({"error": {"message": "?", "code": "429"}}));
    assert_eq!(f.class, FailureClass::RateLimited);
    let f = classify_value(200, &h, &json!({"error": {"message": "something odd"}}));
    assert_eq!(f.class, FailureClass::Overloaded);
}

#[test]
fn encode_renders_openai_error_objects() {
    let mut err = ErrorBody::new(503, "all_candidates_failed", "every candidate failed").code("upstream_unavailable");
    err.param = Some("model".into());
    err.extra.insert("attempts".into(), json!([{"provider": "openai", "class": "overloaded"}]));
    err.extra.insert("type".into(), json!("must not win"));
    assert_eq!(
        encode(&err),
        json!({"error": {"message": "every candidate failed", "type": "all_candidates_failed", "param": "model",
            "code": "upstream_unavailable", "attempts": [{"provider": "openai", "class": "overloaded"}]}})
    );
    let plain = encode(&ErrorBody::new(400, "invalid_request_error", "nope"));
    assert_eq!(plain["error"]["param"], Value::Null);
    assert_eq!(plain["error"]["code"], Value::Null);
}

proptest! {
    #[test]
    fn classify_never_panics(status in 0u16..1000, body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let f = classify(status, &HeaderMap::new(), &body);
        prop_assert_eq!(f.status, Some(status));
        prop_assert!(f.message.chars().count() <= 500);
    }

    #[test]
    fn classify_never_panics_on_error_like_json(
        status in prop_oneof![Just(200u16), Just(400u16), Just(429u16), 100u16..600],
        message in ".{0,80}",
        code in proptest::option::of("[a-z_0-9]{0,12}"),
        retry in "[0-9a-z. ]{0,10}",
    ) {
        let body = serde_json::to_vec(&json!({"error": {"message": message, "code": code}})).unwrap();
        let h = headers(&[("retry-after", "1"), ("x-ratelimit-reset-tokens", "1s")]);
        let _ = classify(status, &h, &body);
        let mut h = HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&retry) {
            h.insert("retry-after", v.clone());
            h.insert("x-ratelimit-reset-requests", v);
        }
        let _ = classify(status, &h, &body);
    }
}
