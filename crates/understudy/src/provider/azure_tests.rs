use std::time::Duration;

use serde_json::json;

use super::*;
use crate::canonical::{FinishReason, Message, Role, StreamEvent};
use crate::config::ProviderKind;
use crate::provider::CloudSettings;

fn endpoint(base_url: &str, api_version: Option<&str>) -> Endpoint {
    Endpoint {
        name: "azure".into(),
        kind: ProviderKind::Azure,
        base_url: base_url.into(),
        api_key: Secret::default(),
        headers: vec![],
        anthropic_version: String::new(),
        cloud: CloudSettings { api_version: api_version.map(str::to_string), ..CloudSettings::default() },
        token_source: None,
        aws: None,
    }
}

fn request() -> ChatRequest {
    ChatRequest { model: "smart".into(), messages: vec![Message::text(Role::User, "Hi")], ..ChatRequest::default() }
}

fn build(ep: &Endpoint, key: &str, stream: bool) -> UpstreamRequest {
    let key = Secret::new(key);
    let extra = Map::new();
    let call = Call { endpoint: ep, model: "gpt4o-prod", api_key: &key, extra_params: &extra, stream };
    Azure.build(&request(), &call).unwrap()
}

fn body(up: &UpstreamRequest) -> Value {
    serde_json::from_slice(&up.body).unwrap()
}

#[test]
fn classic_deployment_urls() {
    let ep = endpoint("https://res.openai.azure.com", Some("2024-10-21"));
    let up = build(&ep, "azure-key", true);
    assert_eq!(
        up.url,
        "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    let b = body(&up);
    assert!(b.get("model").is_none(), "{b}");
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(up.headers["api-key"], "azure-key");
    assert!(up.headers["api-key"].is_sensitive());
    assert!(up.headers.get(AUTHORIZATION).is_none());
}

#[test]
fn v1_urls_put_the_deployment_in_model() {
    for base in [
        "https://res.openai.azure.com",
        "https://res.openai.azure.com/",
        "https://res.openai.azure.com/openai",
        "https://res.openai.azure.com/openai/v1/",
    ] {
        let up = build(&endpoint(base, None), "k", false);
        assert_eq!(up.url, "https://res.openai.azure.com/openai/v1/chat/completions", "{base}");
        assert_eq!(body(&up)["model"], "gpt4o-prod");
    }
}

#[test]
fn entra_tokens_go_in_authorization() {
    let up = build(&endpoint("https://r", None), "Bearer eyJ0eXAi", false);
    assert_eq!(up.headers[AUTHORIZATION], "Bearer eyJ0eXAi");
    assert!(up.headers[AUTHORIZATION].is_sensitive());
    assert!(up.headers.get("api-key").is_none());
    // No key: no credential header at all (a configured header may carry one).
    let mut ep = endpoint("https://r", None);
    ep.headers = vec![(AUTHORIZATION, HeaderValue::from_static("Bearer from-config"))];
    let up = build(&ep, "", false);
    assert_eq!(up.headers[AUTHORIZATION], "Bearer from-config");
    assert!(up.headers.get("api-key").is_none());
    let key = Secret::new("bad\nkey");
    let extra = Map::new();
    let call = Call { endpoint: &ep, model: "d", api_key: &key, extra_params: &extra, stream: false };
    assert_eq!(Azure.build(&request(), &call).unwrap_err().class, FailureClass::Auth);
}

#[test]
fn models_listing() {
    let up = Azure.models_request(&endpoint("https://r", Some("2024-10-21")), &Secret::new("k")).unwrap().unwrap();
    assert_eq!(up.url, "https://r/openai/models?api-version=2024-10-21");
    assert_eq!(up.headers["api-key"], "k");
    assert!(up.headers.get(CONTENT_TYPE).is_none());
    let up = Azure.models_request(&endpoint("https://r", None), &Secret::new("k")).unwrap().unwrap();
    assert_eq!(up.url, "https://r/openai/v1/models");
}

fn embeddings_call(ep: &Endpoint) -> UpstreamRequest {
    let req = EmbeddingsRequest {
        model: "embed-route".into(),
        input: vec![EmbeddingInput::Text("a".into()), EmbeddingInput::Text("b".into())],
        dimensions: Some(256),
        native: Some(
            json!({"model": "embed-route", "input": "x", "user": "u1", "encoding_format": "base64"})
                .as_object()
                .cloned()
                .unwrap(),
        ),
    };
    let key = Secret::new("k");
    let extra = Map::new();
    let call = Call { endpoint: ep, model: "embed-3-small", api_key: &key, extra_params: &extra, stream: false };
    Azure.build_embeddings(&req, &call).unwrap()
}

#[test]
fn embeddings_requests() {
    let up = embeddings_call(&endpoint("https://r", Some("2024-10-21")));
    assert_eq!(up.url, "https://r/openai/deployments/embed-3-small/embeddings?api-version=2024-10-21");
    assert_eq!(body(&up), json!({"input": ["a", "b"], "user": "u1", "encoding_format": "float", "dimensions": 256}));
    let up = embeddings_call(&endpoint("https://r", None));
    assert_eq!(up.url, "https://r/openai/v1/embeddings");
    assert_eq!(body(&up)["model"], "embed-3-small");
    let tokens = EmbeddingsRequest { input: vec![EmbeddingInput::Tokens(vec![1, 2])], ..EmbeddingsRequest::default() };
    let key = Secret::new("k");
    let extra = Map::new();
    let ep = endpoint("https://r", None);
    let call = Call { endpoint: &ep, model: "e", api_key: &key, extra_params: &extra, stream: false };
    assert_eq!(body(&Azure.build_embeddings(&tokens, &call).unwrap())["input"], json!([[1, 2]]));
}

#[test]
fn embeddings_answers() {
    let b64 = STANDARD.encode([1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat());
    let body = json!({"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 3, "total_tokens": 3},
        "data": [{"object": "embedding", "index": 1, "embedding": b64},
                 {"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}]});
    let r = Azure.decode_embeddings(body.to_string().as_bytes()).unwrap();
    assert_eq!(r.model, "text-embedding-3-small");
    assert_eq!(r.vectors, vec![vec![0.25, 0.5], vec![1.5, -2.0]]);
    assert_eq!(r.input_tokens, 3);
    for bad in [
        json!({"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]}),
        json!({"data": [{"index": 5, "embedding": [1]}]}),
        json!({"data": [{"index": 0, "embedding": "!!"}]}),
        json!({"data": [{"index": 0, "embedding": "AAA="}]}),
        json!({"data": [{"index": 0, "embedding": ["x"]}]}),
        json!({"object": "list"}),
    ] {
        let f = Azure.decode_embeddings(bad.to_string().as_bytes()).unwrap_err();
        assert_eq!(f.class, FailureClass::InvalidResponse, "{bad}");
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn azure_error_shapes_are_classified() {
    let none = HeaderMap::new();
    let rate = json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}).to_string();
    let f = Azure.classify_error(429, &none, rate.as_bytes());
    assert_eq!((f.class, f.detail, f.retry_after), (FailureClass::RateLimited, None, Some(Duration::from_secs(7))));
    // retry-after-ms wins over the message, as the OpenAI SDK reads it first.
    let f = Azure.classify_error(429, &headers(&[("retry-after-ms", "1500"), ("retry-after", "2")]), rate.as_bytes());
    assert_eq!(f.retry_after, Some(Duration::from_millis(1500)));
    let f = Azure.classify_error(429, &headers(&[("retry-after", "3")]), rate.as_bytes());
    assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
    let short =
        json!({"error": {"code": "429", "message": "Rate limit is exceeded. Try again in 2 seconds."}}).to_string();
    assert_eq!(Azure.classify_error(429, &none, short.as_bytes()).retry_after, Some(Duration::from_secs(2)));
    let daily = rate.replace("retry after 7 seconds", "retry after 86400 seconds");
    assert!(Azure.classify_error(429, &none, daily.as_bytes()).is_quota_exhausted());

    let filter = json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": false, "severity": "safe"}, "jailbreak": {"filtered": true, "detected": true}}}}});
    let f = Azure.classify_error(400, &none, filter.to_string().as_bytes());
    assert_eq!(f.class, FailureClass::ContentFiltered);
    let inner_only = json!({"error": {"message": "filtered", "code": "BadRequest", "innererror": {"code": "ResponsibleAIPolicyViolation"}}});
    assert_eq!(
        Azure.classify_error(400, &none, inner_only.to_string().as_bytes()).class,
        FailureClass::ContentFiltered
    );

    let missing = json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}});
    assert_eq!(Azure.classify_error(404, &none, missing.to_string().as_bytes()).class, FailureClass::DeploymentInvalid);
    let key = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
    assert_eq!(Azure.classify_error(401, &none, key.to_string().as_bytes()).class, FailureClass::Auth);
    let context = json!({"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
    assert_eq!(Azure.classify_error(400, &none, context.to_string().as_bytes()).class, FailureClass::ContextWindow);
    let unavailable = json!({"error": {"code": "ServiceUnavailable", "message": "The service is temporarily unable to process your request."}});
    assert_eq!(Azure.classify_error(503, &none, unavailable.to_string().as_bytes()).class, FailureClass::Overloaded);
    let wrong_kind = json!({"error": {"code": "OperationNotSupported", "message": "The embeddings operation does not work with the specified model."}});
    assert_eq!(
        Azure.classify_error(400, &none, wrong_kind.to_string().as_bytes()).class,
        FailureClass::DeploymentInvalid
    );
}

#[test]
fn filtered_output_and_the_first_stream_chunk() {
    let filtered = json!({"id": "c", "model": "gpt-4o", "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
        "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant"},
            "content_filter_results": {"violence": {"filtered": true, "severity": "medium"}}}]});
    let r = Azure.decode_response(filtered.to_string().as_bytes()).unwrap();
    assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);

    let mut d = Azure.stream_decoder();
    let mut out = Vec::new();
    let first = r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#;
    d.feed(format!("{first}\n\n").as_bytes(), &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].as_ref().unwrap().events.is_empty(), "{:?}", out[0]);
    out.clear();
    d.feed(b"data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n", &mut out);
    let events = &out[0].as_ref().unwrap().events;
    assert!(matches!(&events[0], StreamEvent::Start { id: Some(id), .. } if id == "c1"), "{events:?}");
    assert!(matches!(&events[1], StreamEvent::Text { text, .. } if text == "Hi"));
}

proptest::proptest! {
    #[test]
    fn embeddings_decoding_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let _ = Azure.decode_embeddings(&bytes);
        let _ = Azure.classify_error(429, &HeaderMap::new(), &bytes);
    }
}
