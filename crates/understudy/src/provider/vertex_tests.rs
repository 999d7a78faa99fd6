use http::HeaderName;
use serde_json::json;

use super::*;
use crate::canonical::{Message, Role, StreamEvent};
use crate::config::ProviderKind;
use crate::provider::CloudSettings;

fn endpoint(base_url: &str) -> Endpoint {
    Endpoint {
        name: "vertex".into(),
        kind: ProviderKind::Vertex,
        base_url: base_url.into(),
        api_key: Secret::default(),
        headers: vec![(HeaderName::from_static("anthropic-beta"), HeaderValue::from_static("feat-a"))],
        anthropic_version: "2023-06-01".into(),
        cloud: CloudSettings { api_version: None, project: "my-proj".into(), location: "us-east5".into() },
        token_source: None,
        aws: None,
    }
}

fn request() -> ChatRequest {
    ChatRequest { model: "smart".into(), messages: vec![Message::text(Role::User, "Hi")], ..ChatRequest::default() }
}

fn build(adapter: &dyn Adapter, ep: &Endpoint, model: &str, stream: bool) -> UpstreamRequest {
    let token = Secret::new("ya29.token");
    let extra = Map::new();
    let call = Call { endpoint: ep, model, api_key: &token, extra_params: &extra, stream };
    adapter.build(&request(), &call).unwrap()
}

fn body(up: &UpstreamRequest) -> Value {
    serde_json::from_slice(&up.body).unwrap()
}

#[test]
fn hosts_follow_the_location() {
    assert_eq!(host("us-central1"), "https://us-central1-aiplatform.googleapis.com");
    assert_eq!(host("global"), "https://aiplatform.googleapis.com");
    assert_eq!(host("us"), "https://aiplatform.us.rep.googleapis.com");
    assert_eq!(host("eu"), "https://aiplatform.eu.rep.googleapis.com");
}

#[test]
fn models_pick_their_publisher() {
    assert_eq!(adapter_for("claude-sonnet-4-5@20250929").dialect(), Dialect::Anthropic);
    assert_eq!(adapter_for("publishers/anthropic/models/claude-opus-4-6").dialect(), Dialect::Anthropic);
    assert_eq!(adapter_for("gemini-2.5-flash").dialect(), Dialect::Gemini);
    assert_eq!(crate::provider::adapter_for(ProviderKind::Vertex, "claude-haiku-4-5").dialect(), Dialect::Anthropic);
}

#[test]
fn gemini_calls() {
    let ep = endpoint("https://us-east5-aiplatform.googleapis.com");
    let up = build(&VertexGemini, &ep, "gemini-2.5-flash", false);
    assert_eq!(
        up.url,
        "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/google/models/\
         gemini-2.5-flash:generateContent"
    );
    assert_eq!(up.headers[AUTHORIZATION], "Bearer ya29.token");
    assert!(up.headers[AUTHORIZATION].is_sensitive());
    assert!(up.headers.get("x-goog-api-key").is_none());
    assert_eq!(body(&up), json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}));
    let up = build(&VertexGemini, &ep, "gemini-2.5-flash+error=rate_limit", true);
    assert!(up.url.ends_with("/models/gemini-2.5-flash+error=rate_limit:streamGenerateContent?alt=sse"), "{}", up.url);
}

#[test]
fn claude_calls_put_the_model_in_the_url_and_the_version_in_the_body() {
    let ep = endpoint("http://127.0.0.1:9");
    let up = build(&VertexClaude, &ep, "claude-sonnet-4-5@20250929", false);
    assert_eq!(
        up.url,
        "http://127.0.0.1:9/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/\
         claude-sonnet-4-5@20250929:rawPredict"
    );
    let b = body(&up);
    assert!(b.get("model").is_none(), "{b}");
    assert_eq!(b["anthropic_version"], ANTHROPIC_VERSION);
    assert_eq!(b["max_tokens"], 4096);
    assert!(b.get("stream").is_none());
    assert_eq!(up.headers["anthropic-beta"], "feat-a");
    assert!(up.headers.get("anthropic-version").is_none());
    assert!(up.headers.get("x-api-key").is_none());

    let up = build(&VertexClaude, &ep, "claude-sonnet-4-5", true);
    assert!(up.url.ends_with("/models/claude-sonnet-4-5:streamRawPredict"));
    assert_eq!(body(&up)["stream"], true);

    let mut pinned = endpoint("http://127.0.0.1:9/v1beta1");
    pinned.anthropic_version = "vertex-2099-01-01".into();
    let up = build(&VertexClaude, &pinned, "claude-x", false);
    assert!(up.url.starts_with("http://127.0.0.1:9/v1beta1/projects/my-proj/"), "{}", up.url);
    assert_eq!(body(&up)["anthropic_version"], "vertex-2099-01-01");
}

#[test]
fn an_anthropic_caller_body_keeps_its_fields() {
    let req = crate::wire::anthropic::request::decode(
        br#"{"model":"smart","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"top_k":3}"#,
    )
    .unwrap();
    let ep = endpoint("http://h");
    let token = Secret::new("t");
    let extra = Map::new();
    let call = Call { endpoint: &ep, model: "claude-x", api_key: &token, extra_params: &extra, stream: true };
    let b: Value = serde_json::from_slice(&VertexClaude.build(&req, &call).unwrap().body).unwrap();
    assert_eq!(b["top_k"], 3);
    assert_eq!(b["max_tokens"], 10);
    assert!(b.get("model").is_none());
}

#[test]
fn no_token_or_no_project_fails_before_sending() {
    let ep = endpoint("http://h");
    let empty = Secret::new("");
    let extra = Map::new();
    let call = Call { endpoint: &ep, model: "gemini-2.5-flash", api_key: &empty, extra_params: &extra, stream: false };
    let f = VertexGemini.build(&request(), &call).unwrap_err();
    assert_eq!((f.class, f.detail), (FailureClass::Auth, Some("missing_api_key")));

    let mut no_project = endpoint("http://h");
    no_project.cloud.project.clear();
    let token = Secret::new("t");
    let call = Call { endpoint: &no_project, api_key: &token, ..call };
    let f = VertexClaude.build(&request(), &call).unwrap_err();
    assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("bad_config")));
}

fn google(code: u16, status: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"error": {"code": code, "message": message, "status": status}})).unwrap()
}

#[test]
fn google_shaped_errors() {
    let h = HeaderMap::new();
    for adapter in [&VertexGemini as &dyn Adapter, &VertexClaude] {
        let unauth = google(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.");
        assert_eq!(adapter.classify_error(401, &h, &unauth).class, FailureClass::Auth);
        let api_key = google(401, "UNAUTHENTICATED", "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials that assert a principal.");
        assert_eq!(adapter.classify_error(401, &h, &api_key).class, FailureClass::Auth);
        let denied = google(403, "PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied on resource");
        assert_eq!(adapter.classify_error(403, &h, &denied).class, FailureClass::Auth);
        let quota = google(429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.");
        let f = adapter.classify_error(429, &h, &quota);
        assert_eq!((f.class, f.detail), (FailureClass::RateLimited, None));
        let missing =
            google(404, "NOT_FOUND", "Publisher Model `projects/p/locations/l/publishers/google/models/x` not found.");
        assert_eq!(adapter.classify_error(404, &h, &missing).class, FailureClass::DeploymentInvalid);
        let down = google(503, "UNAVAILABLE", "The service is currently unavailable.");
        assert_eq!(adapter.classify_error(503, &h, &down).class, FailureClass::Overloaded);
    }
    // Claude's quota errors come wrapped in a one-element array.
    let wrapped = br#"[{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-3-5-sonnet.","status":"RESOURCE_EXHAUSTED"}}]"#;
    assert_eq!(VertexClaude.classify_error(429, &HeaderMap::new(), wrapped).class, FailureClass::RateLimited);
}

fn anthropic_err(kind: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": "error", "error": {"type": kind, "message": message}})).unwrap()
}

#[test]
fn anthropic_shaped_errors_on_claude_models() {
    let h = HeaderMap::new();
    let f = VertexClaude.classify_error(529, &h, &anthropic_err("overloaded_error", "Overloaded"));
    assert_eq!(f.class, FailureClass::Overloaded);
    let f = VertexClaude.classify_error(
        400,
        &h,
        &anthropic_err("invalid_request_error", "prompt is too long: 210266 tokens > 200000 maximum"),
    );
    assert_eq!(f.class, FailureClass::ContextWindow);
    let own = anthropic_err("invalid_request_error", "temperature: Input should be less than or equal to 1");
    let f = VertexClaude.classify_error(400, &h, &own);
    assert_eq!(f.class, FailureClass::InvalidRequest);
    // The caller's own mistake reaches an Anthropic caller unchanged.
    assert_eq!(f.upstream, Some((Dialect::Anthropic, bytes::Bytes::from(own))));
    let f = VertexClaude.classify_error(
        429,
        &h,
        &anthropic_err("rate_limit_error", "Number of requests has exceeded your rate limit"),
    );
    assert_eq!(f.class, FailureClass::RateLimited);
    // A proxy's HTML page still classifies by status.
    assert_eq!(VertexClaude.classify_error(502, &h, b"<html>bad gateway</html>").class, FailureClass::Overloaded);
}

#[test]
fn decoders_are_the_publishers_own() {
    let claude = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
    assert_eq!(VertexClaude.decode_response(claude).unwrap().choices[0].text(), "hi");
    let gem = br#"{"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"#;
    assert_eq!(VertexGemini.decode_response(gem).unwrap().choices[0].text(), "ok");
    let mut d = VertexClaude.stream_decoder();
    let mut out = Vec::new();
    d.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", &mut out);
    assert_eq!(out[0].as_ref().unwrap().events, vec![StreamEvent::Done]);
    assert!(VertexGemini.models_request(&endpoint("http://h"), &Secret::new("t")).is_none());
}

proptest::proptest! {
    #[test]
    fn classification_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256), status in 100u16..600) {
        let _ = VertexClaude.classify_error(status, &HeaderMap::new(), &bytes);
        let _ = VertexGemini.classify_error(status, &HeaderMap::new(), &bytes);
        let _ = is_anthropic_error(&bytes);
    }
}
