//! Azure OpenAI and Vertex AI paths, and the service-account token endpoint.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use understudy_mock::{Fault, MockConfig, MockHandle};

const KEY: &str = include_str!("../../understudy/tests/fixtures/vertex-test-key.pem");
const PUBLIC: &str = include_str!("../../understudy/tests/fixtures/vertex-test-key.pub.pem");
const OTHER_KEY: &str = include_str!("../../understudy/tests/fixtures/other-test-key.pem");

fn azure_url(m: &MockHandle, deployment: &str, op: &str) -> String {
    format!("{}/openai/deployments/{deployment}/{op}?api-version=2024-10-21", m.url())
}

async fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    let mut rb = client().post(url).json(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn azure_classic_and_v1_chat() {
    let m = mock().await;
    let body = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let (status, _, text) = post(&azure_url(&m, "gpt4o-prod", "chat/completions"), &[("api-key", "k")], &body).await;
    assert_eq!(status, 200, "{text}");
    let v = json_of(&text);
    assert_eq!(v["model"], "gpt4o-prod");
    assert_eq!(v["prompt_filter_results"][0]["prompt_index"], 0);
    assert_eq!(v["choices"][0]["content_filter_results"]["violence"]["filtered"], false);
    assert_eq!(m.requests(Some("gpt4o-prod"))[0].headers["api-key"], "[redacted]");

    let v1 = format!("{}/openai/v1/chat/completions", m.url());
    let (status, _, text) = post(&v1, &[("authorization", "Bearer entra-token")], &openai_body("gpt4o-prod")).await;
    assert_eq!(status, 200, "{text}");

    let no_version = format!("{}/openai/deployments/d/chat/completions", m.url());
    let (status, _, text) = post(&no_version, &[("api-key", "k")], &body).await;
    assert_eq!((status, json_of(&text)), (404, json!({"error": {"code": "404", "message": "Resource not found"}})));

    let (status, _, text) = post(&azure_url(&m, "d", "chat/completions"), &[], &body).await;
    assert_eq!(status, 401);
    assert_eq!(json_of(&text)["error"]["code"], "401");
    assert!(text.contains("Access denied due to invalid subscription key"), "{text}");
}

#[tokio::test]
async fn azure_streams_start_with_the_prompt_filter_chunk() {
    let m = mock().await;
    let body = json!({"stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, _, text) = post(&azure_url(&m, "d", "chat/completions"), &[("api-key", "k")], &body).await;
    assert_eq!(status, 200);
    let first = text.split("\n\n").next().unwrap().strip_prefix("data: ").unwrap();
    let first = json_of(first);
    assert_eq!(first["choices"], json!([]));
    assert_eq!(
        (first["id"].as_str(), first["model"].as_str(), first["created"].as_u64()),
        (Some(""), Some(""), Some(0))
    );
    assert!(first["prompt_filter_results"].is_array());
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn azure_error_shapes() {
    let m = mock().await;
    let body = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let call = |d: &'static str| {
        let url = azure_url(&m, d, "chat/completions");
        let body = body.clone();
        async move { post(&url, &[("api-key", "k")], &body).await }
    };
    let (status, headers, text) = call("d+error=rate_limit+retry_after=2").await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["retry-after-ms"], "2000");
    let v = json_of(&text);
    assert_eq!(v["error"]["code"], "429");
    assert!(v["error"]["message"].as_str().unwrap().contains("Please retry after 2 seconds"));
    assert!(v["error"].get("type").is_none());

    let (status, _, text) = call("d+error=quota_exhausted").await;
    assert_eq!(status, 429);
    assert!(text.contains("retry after 86400 seconds"), "{text}");

    let (status, _, text) = call("d+error=content_policy").await;
    let v = json_of(&text);
    assert_eq!((status, &v["error"]["code"], &v["error"]["type"]), (400, &json!("content_filter"), &Value::Null));
    assert_eq!(v["error"]["innererror"]["code"], "ResponsibleAIPolicyViolation");

    let (status, _, text) = call("d+error=model_not_found").await;
    assert_eq!((status, json_of(&text)["error"]["code"].clone()), (404, json!("DeploymentNotFound")));
    let (status, _, text) = call("d+error=context_length").await;
    assert_eq!((status, json_of(&text)["error"]["code"].clone()), (400, json!("context_length_exceeded")));
    let (status, _, _) = call("d+status=503").await;
    assert_eq!(status, 503);

    let (status, _, text) = call("d+content_filter").await;
    assert_eq!(status, 200);
    let v = json_of(&text);
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(v["choices"][0]["content_filter_results"]["violence"]["filtered"], true);
}

#[tokio::test]
async fn azure_embeddings() {
    let m = mock().await;
    let body = json!({"input": ["a", "b"], "dimensions": 4});
    let (status, _, text) = post(&azure_url(&m, "embed", "embeddings"), &[("api-key", "k")], &body).await;
    assert_eq!(status, 200, "{text}");
    let v = json_of(&text);
    assert_eq!(v["model"], "embed");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 4);

    let v1 = format!("{}/openai/v1/embeddings", m.url());
    let b64 = json!({"model": "embed", "input": "a", "dimensions": 2, "encoding_format": "base64"});
    let (status, _, text) = post(&v1, &[("api-key", "k")], &b64).await;
    assert_eq!(status, 200);
    let raw = STANDARD.decode(json_of(&text)["data"][0]["embedding"].as_str().unwrap()).unwrap();
    assert_eq!(raw.len(), 8);

    let (status, _, text) =
        post(&azure_url(&m, "embed+error=model_not_found", "embeddings"), &[("api-key", "k")], &body).await;
    assert_eq!((status, json_of(&text)["error"]["code"].clone()), (404, json!("DeploymentNotFound")));
}

// ---------------------------------------------------------------------------------------------
// Vertex

fn jwt(pem: &str, aud: &str, iat: u64) -> String {
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = enc(json!({"alg": "RS256", "typ": "JWT", "kid": "test-kid"}));
    let claims = enc(json!({"iss": "svc@proj.iam.gserviceaccount.com", "aud": aud, "iat": iat, "exp": iat + 3600,
                            "scope": "https://www.googleapis.com/auth/cloud-platform"}));
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(b64).unwrap()).unwrap();
    let mut sig = vec![0; pair.public().modulus_len()];
    let input = format!("{header}.{claims}");
    pair.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn token_request(m: &MockHandle, assertion: &str) -> (u16, Value) {
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    let r = client()
        .post(format!("{}/token", m.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), json_of(&r.text().await.unwrap()))
}

async fn vertex_mock(lifetime: u64) -> MockHandle {
    mock_with(MockConfig {
        token_public_key: Some(PUBLIC.into()),
        token_lifetime_secs: lifetime,
        ..MockConfig::default()
    })
    .await
}

async fn token(m: &MockHandle) -> String {
    let (status, v) = token_request(m, &jwt(KEY, &format!("{}/token", m.url()), now())).await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

fn vertex_url(m: &MockHandle, publisher: &str, model: &str, method: &str) -> String {
    format!("{}/v1/projects/proj/locations/us-east5/publishers/{publisher}/models/{model}:{method}", m.url())
}

fn claude_body() -> Value {
    json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 64,
           "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn the_token_endpoint_verifies_signatures_and_issues_short_lived_tokens() {
    let m = vertex_mock(1).await;
    let aud = format!("{}/token", m.url());
    let (status, v) = token_request(&m, &jwt(KEY, &aud, now())).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["expires_in"].as_u64(), v["token_type"].as_str()), (Some(1), Some("Bearer")));
    assert!(v["access_token"].as_str().unwrap().starts_with("ya29."));
    assert_eq!(m.stats().tokens_issued, 1);

    let (status, v) = token_request(&m, &jwt(OTHER_KEY, &aud, now())).await;
    assert_eq!((status, v), (400, json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})));
    let (status, v) = token_request(&m, &jwt(KEY, &aud, now() - 7200)).await;
    assert_eq!(status, 400);
    assert!(v["error_description"].as_str().unwrap().contains("short-lived"));
    assert_eq!(m.stats().tokens_issued, 1);

    // The issued token works, then expires.
    let t = token(&m).await;
    let url = vertex_url(&m, "google", "gemini-2.5-flash", "generateContent");
    let (status, _, _) = post(&url, &[("authorization", &format!("Bearer {t}"))], &gemini_body()).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, text) = post(&url, &[("authorization", &format!("Bearer {t}"))], &gemini_body()).await;
    assert_eq!(status, 401);
    let v = json_of(&text);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(v["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED");
}

#[tokio::test]
async fn a_bad_public_key_is_refused_at_start() {
    let bad = MockConfig { token_public_key: Some("not a key".into()), ..MockConfig::default() };
    assert!(understudy_mock::start("127.0.0.1:0".parse().unwrap(), bad).await.is_err());
}

#[tokio::test]
async fn vertex_gemini_and_claude_answer_with_a_token() {
    let m = vertex_mock(3600).await;
    let auth = format!("Bearer {}", token(&m).await);
    let h = [("authorization", auth.as_str())];
    let (status, _, text) =
        post(&vertex_url(&m, "google", "gemini-2.5-flash", "generateContent"), &h, &gemini_body()).await;
    assert_eq!(status, 200, "{text}");
    assert!(json_of(&text)["candidates"][0]["content"]["parts"][0]["text"].is_string());
    let url = vertex_url(&m, "google", "gemini-2.5-flash", "streamGenerateContent") + "?alt=sse";
    let (status, _, text) = post(&url, &h, &gemini_body()).await;
    assert_eq!(status, 200);
    assert!(text.contains("finishReason"));

    let (status, _, text) =
        post(&vertex_url(&m, "anthropic", "claude-sonnet-4-5@20250929", "rawPredict"), &h, &claude_body()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text)["type"], "message");
    let mut stream = claude_body();
    stream["stream"] = json!(true);
    let (status, _, text) = post(&vertex_url(&m, "anthropic", "claude-x", "streamRawPredict"), &h, &stream).await;
    assert_eq!(status, 200);
    assert!(text.contains("event: message_stop"));
    assert_eq!(m.requests(Some("claude-x"))[0].dialect, understudy_mock::Dialect::Anthropic);

    // Vertex's Claude body has no model and needs the Vertex anthropic_version.
    let mut with_model = claude_body();
    with_model["model"] = json!("claude-x");
    let (status, _, text) = post(&vertex_url(&m, "anthropic", "claude-x", "rawPredict"), &h, &with_model).await;
    assert_eq!(status, 400);
    assert_eq!(json_of(&text)["error"]["message"], "model: Extra inputs are not permitted");
    let mut no_version = claude_body();
    no_version.as_object_mut().unwrap().remove("anthropic_version");
    let (status, _, text) = post(&vertex_url(&m, "anthropic", "claude-x", "rawPredict"), &h, &no_version).await;
    assert_eq!((status, json_of(&text)["error"]["type"].clone()), (400, json!("invalid_request_error")));
}

#[tokio::test]
async fn vertex_refuses_keys_and_unknown_tokens_in_googles_shape() {
    let m = vertex_mock(3600).await;
    let url = vertex_url(&m, "anthropic", "claude-x", "rawPredict");
    for (headers, reason, needle) in [
        (vec![], "CREDENTIALS_MISSING", "missing required authentication credential"),
        (vec![("x-goog-api-key", "AIza-key")], "CREDENTIALS_MISSING", "API keys are not supported"),
        (
            vec![("authorization", "Bearer ya29.forged")],
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "invalid authentication credentials",
        ),
    ] {
        let (status, _, text) = post(&url, &headers, &claude_body()).await;
        let v = json_of(&text);
        assert_eq!((status, v["error"]["status"].as_str()), (401, Some("UNAUTHENTICATED")), "{text}");
        assert_eq!(v["error"]["details"][0]["reason"], reason);
        assert!(text.contains(needle), "{text}");
    }
    // A token listed in `api_keys` is accepted as a ready token.
    let m = mock_with(MockConfig { api_keys: vec!["ya29.ready".into()], ..MockConfig::default() }).await;
    let url = vertex_url(&m, "google", "gemini-2.5-flash", "generateContent");
    let (status, _, _) = post(&url, &[("authorization", "Bearer ya29.ready")], &gemini_body()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn vertex_error_shapes_by_publisher() {
    let m = vertex_mock(3600).await;
    let auth = format!("Bearer {}", token(&m).await);
    let h = [("authorization", auth.as_str())];
    let claude = |model: &str| vertex_url(&m, "anthropic", model, "rawPredict");
    let gemini = |model: &str| vertex_url(&m, "google", model, "generateContent");

    // Claude's quota errors are Google-shaped, wrapped in an array.
    let (status, _, text) = post(&claude("claude-x+error=rate_limit"), &h, &claude_body()).await;
    let v = json_of(&text);
    assert_eq!((status, v[0]["error"]["status"].as_str()), (429, Some("RESOURCE_EXHAUSTED")), "{text}");
    // The model's own errors are Anthropic-shaped.
    let (status, _, text) = post(&claude("claude-x+error=overloaded"), &h, &claude_body()).await;
    assert_eq!((status, json_of(&text)["error"]["type"].clone()), (529, json!("overloaded_error")));
    let (status, _, text) = post(&claude("claude-x+error=context_length"), &h, &claude_body()).await;
    assert_eq!(status, 400);
    assert!(json_of(&text)["error"]["message"].as_str().unwrap().contains("prompt is too long"));
    // Unknown models and permissions are the platform's.
    let (status, _, text) = post(&claude("claude-x+error=model_not_found"), &h, &claude_body()).await;
    assert_eq!((status, json_of(&text)["error"]["status"].clone()), (404, json!("NOT_FOUND")));
    assert!(
        text.contains("projects/proj/locations/us-east5/publishers/anthropic/models/claude-x+error=model_not_found")
    );
    let (status, _, text) = post(&gemini("g+error=forbidden"), &h, &gemini_body()).await;
    assert_eq!((status, json_of(&text)["error"]["status"].clone()), (403, json!("PERMISSION_DENIED")));
    let (status, _, text) = post(&gemini("g+error=rate_limit+retry_after=3"), &h, &gemini_body()).await;
    let v = json_of(&text);
    assert_eq!((status, v["error"]["status"].as_str()), (429, Some("RESOURCE_EXHAUSTED")));
    assert_eq!(v["error"]["details"][0]["retryDelay"], "3s");
    let (status, _, text) = post(&gemini("g+error=quota_exhausted"), &h, &gemini_body()).await;
    assert_eq!(status, 429);
    assert!(text.contains("PerDay"));
    let (status, _, _) = post(&gemini("g+error=unavailable"), &h, &gemini_body()).await;
    assert_eq!(status, 503);
    // A run-time rule applies as in the other dialects.
    m.set_fault("gemini-2.5-pro", Fault::parse("status=500").unwrap());
    let (status, _, _) = post(&gemini("gemini-2.5-pro"), &h, &gemini_body()).await;
    assert_eq!(status, 500);
}
