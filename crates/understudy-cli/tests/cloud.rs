//! Azure OpenAI, Vertex AI and the OpenAI-compatible presets over loopback HTTP, against the mock's
//! Azure and Vertex paths and its service-account token endpoint.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use understudy_cli::server;
use understudy_mock::MockConfig;

const KEY: &str = include_str!("../../understudy/tests/fixtures/vertex-test-key.pem");
const PUBLIC: &str = include_str!("../../understudy/tests/fixtures/vertex-test-key.pub.pem");
const OTHER_KEY: &str = include_str!("../../understudy/tests/fixtures/other-test-key.pem");

/// A service-account key file in the temp directory, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(token_uri: &str, pem: &str) -> KeyFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("understudy-cloud-test-{}-{}.json", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let key = json!({"type": "service_account", "project_id": "proj", "private_key_id": "test-kid",
            "private_key": pem, "client_email": "gateway@proj.iam.gserviceaccount.com", "token_uri": token_uri});
        std::fs::write(&path, key.to_string()).unwrap();
        KeyFile(path)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Cloud {
    env: Env,
    _key: KeyFile,
}

impl std::ops::Deref for Cloud {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

async fn cloud(routes: &str) -> Cloud {
    cloud_with(routes, 3600, KEY).await
}

/// A mock that issues tokens living `lifetime` seconds and verifies JWTs against the test key,
/// and a gateway with Azure (classic and v1), Vertex (key file signed with `pem`), Anthropic,
/// OpenAI and every preset, all pointed at it.
async fn cloud_with(routes: &str, lifetime: u64, pem: &str) -> Cloud {
    let config =
        MockConfig { token_public_key: Some(PUBLIC.into()), token_lifetime_secs: lifetime, ..MockConfig::default() };
    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let url = mock.url();
    let key = KeyFile::new(&format!("{url}/token"), pem);
    let yaml = format!(
        r#"providers:
  azure:      {{ kind: azure, base_url: "{url}", api_key: azure-key, api_version: "2024-10-21" }}
  azure-v1:   {{ kind: azure, base_url: "{url}/openai/v1", api_key: azure-key }}
  vertex:     {{ kind: vertex, base_url: "{url}", project: proj, location: us-east5, credentials_file: "{key}" }}
  anthropic:  {{ kind: anthropic, base_url: "{url}", api_key: test-anthropic-key }}
  openai:     {{ kind: openai, base_url: "{url}/v1", api_key: test-openai-key }}
  groq:       {{ kind: groq, base_url: "{url}/v1", api_key: gsk-test }}
  mistral:    {{ kind: mistral, base_url: "{url}/v1", api_key: mistral-test }}
  deepseek:   {{ kind: deepseek, base_url: "{url}/v1", api_key: ds-test }}
  together:   {{ kind: together, base_url: "{url}/v1", api_key: tg-test }}
  fireworks:  {{ kind: fireworks, base_url: "{url}/v1", api_key: fw-test }}
  openrouter: {{ kind: openrouter, base_url: "{url}/v1", api_key: or-test, headers: {{ HTTP-Referer: "https://example.org", X-Title: "Example" }} }}
  ollama:     {{ kind: ollama, base_url: "{url}/v1" }}
  vllm:       {{ kind: vllm, base_url: "{url}/v1", api_key: token-abc123 }}
defaults:
  connect_timeout: 500ms
  backoff_base: 10ms
  backoff_max: 50ms
routes:
{routes}"#,
        key = key.0.display()
    );
    let loaded = understudy::config::load_str(&yaml, "cloud.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let gw = server::start(&loaded.config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    Cloud { env: Env { mock, gw, client }, _key: key }
}

fn single(provider: &str, model: &str) -> String {
    format!("  r:\n    fallback_chain:\n      - {{ provider: {provider}, model: \"{model}\" }}\n")
}

/// `primary` then a healthy OpenAI backup.
fn with_backup(provider: &str, model: &str) -> String {
    format!(
        "  r:\n    fallback_chain:\n      - {{ provider: {provider}, model: \"{model}\" }}\n      - {{ provider: openai, model: backup }}\n"
    )
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn tools_body(stream: bool) -> Value {
    json!({"model": "r", "stream": stream, "messages": [{"role": "user", "content": "Weather in Oslo?"}],
           "tools": weather_tool()})
}

fn anthropic_tools_body(stream: bool) -> Value {
    json!({"model": "r", "max_tokens": 200, "stream": stream,
           "messages": [{"role": "user", "content": "Weather in Oslo?"}],
           "tools": [{"name": "get_weather", "description": "Weather by city",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]})
}

/// The tool calls of an OpenAI stream, by name.
fn streamed_tool_names(r: &Reply) -> Vec<String> {
    r.sse_data()
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].as_str().map(str::to_string))
        .collect()
}

fn recorded_one(env: &Env, model: &str) -> Value {
    let all = env.recorded(model);
    assert_eq!(all.len(), 1, "{model}: {all:?}");
    all[0].clone()
}

// ---------------------------------------------------------------------------------------------
// Azure

#[tokio::test]
async fn azure_classic_answers_and_streams_with_tools() {
    let env = cloud(&single("azure", "gpt4o-prod+tool_call")).await;
    let r = env.chat(tools_body(false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "azure/gpt4o-prod+tool_call");
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let sent = recorded_one(&env, "gpt4o-prod");
    assert_eq!(sent["path"], "/openai/deployments/gpt4o-prod+tool_call/chat/completions?api-version=2024-10-21");
    assert_eq!(sent["headers"]["api-key"], "[redacted]");
    assert!(sent["headers"].get("authorization").is_none());
    assert!(sent["body"].get("model").is_none(), "{}", sent["body"]);
    assert_eq!(sent["body"]["tools"], weather_tool());

    // Streaming: an OpenAI caller gets Azure's frames as they are, the `choices: []` chunk first.
    let r = env.chat(tools_body(true)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.sse_data();
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["choices"], json!([]));
    assert!(first["prompt_filter_results"].is_array());
    assert_eq!(streamed_tool_names(&r), vec!["get_weather"]);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn azure_v1_puts_the_deployment_in_model_and_translates_for_anthropic_callers() {
    let env = cloud(&single("azure-v1", "gpt4o-prod")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = recorded_one(&env, "gpt4o-prod");
    assert_eq!(sent["path"], "/openai/v1/chat/completions");
    assert_eq!(sent["body"]["model"], "gpt4o-prod");

    // An Anthropic caller streaming from Azure: the `choices: []` first chunk does not break the
    // translation.
    let mut body = anthropic_body("r");
    body["stream"] = json!(true);
    let r = env.messages(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events: Vec<String> = r.sse().into_iter().filter_map(|(e, _)| e).collect();
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    assert_eq!(anthropic_stream_text(&r), "Simulated answer from gpt4o-prod.");
}

/// The text deltas of an Anthropic stream, joined.
fn anthropic_stream_text(r: &Reply) -> String {
    r.sse()
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect()
}

async fn azure_fails_over(fault: &str, class: &str, calls: u64) {
    let model = format!("dep+{fault}");
    let env = cloud(&with_backup("azure", &model)).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{fault}: {}", r.text);
    assert_eq!(r.served_by(), "openai/backup", "{fault}");
    assert_eq!(r.reasons().split(", ").next().unwrap(), format!("azure/{model}={class}"), "{fault}");
    assert_eq!(env.upstream("dep"), calls, "{fault}");
}

#[tokio::test]
async fn azure_failure_classes_from_real_error_shapes() {
    azure_fails_over("error=rate_limit+retry_after=1", "rate_limited", 1).await;
    azure_fails_over("error=quota_exhausted", "rate_limited", 1).await;
    azure_fails_over("error=model_not_found", "deployment_invalid", 1).await;
    azure_fails_over("error=invalid_key", "auth", 1).await;
    azure_fails_over("error=forbidden", "auth", 1).await;
    azure_fails_over("error=context_length", "context_window", 1).await;
    azure_fails_over("error=unavailable", "overloaded", 2).await;
    azure_fails_over("error=server", "overloaded", 2).await;
}

#[tokio::test]
async fn azure_content_filters_stop_with_the_providers_reason() {
    // The prompt filter (HTTP 400, code content_filter): returned, no fail-over.
    let env = cloud(&with_backup("azure", "dep+error=content_policy")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("content management policy"), "{}", r.text);
    assert_eq!(env.upstream("backup"), 0);

    // The output filter (HTTP 200, finish_reason content_filter) is the answer.
    let env = cloud(&with_backup("azure", "dep+content_filter")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(env.upstream("backup"), 0);
}

#[tokio::test]
async fn azure_retry_hints_are_waited_out_when_nothing_else_can_answer() {
    // A lone deployment whose 429 says "retry after 1 seconds" (and retry-after: 1): the gateway
    // waits it out once, then reports the rate limit with its own Retry-After.
    let env = cloud(&single("azure", "dep+error=rate_limit+retry_after=1")).await;
    let started = std::time::Instant::now();
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    assert_eq!(env.upstream("dep"), 2);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert!(r.json()["error"]["attempts"].to_string().contains("rate_limited"));
}

// ---------------------------------------------------------------------------------------------
// Vertex

#[tokio::test]
async fn vertex_gemini_answers_and_streams_with_tools() {
    let env = cloud(&single("vertex", "gemini-2.5-flash+tool_call")).await;
    let r = env.chat(tools_body(false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "vertex/gemini-2.5-flash+tool_call");
    assert_eq!(r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    let sent = recorded_one(&env, "gemini-2.5-flash");
    assert_eq!(
        sent["path"],
        "/v1/projects/proj/locations/us-east5/publishers/google/models/gemini-2.5-flash+tool_call:generateContent"
    );
    assert_eq!(sent["headers"]["authorization"], "[redacted]");
    assert!(sent["headers"].get("x-goog-api-key").is_none());
    assert_eq!(sent["body"]["tools"][0]["functionDeclarations"][0]["name"], "get_weather");

    let r = env.chat(tools_body(true)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(streamed_tool_names(&r), vec!["get_weather"]);
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    assert!(env.recorded("gemini-2.5-flash")[1]["path"].as_str().unwrap().ends_with(":streamGenerateContent?alt=sse"));
    assert_eq!(env.mock.stats().tokens_issued, 1);
}

#[tokio::test]
async fn vertex_claude_answers_and_streams_with_tools() {
    let env = cloud(&single("vertex", "claude-sonnet-4-5@20250929+tool_call")).await;
    let r = env.messages(anthropic_tools_body(false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], "get_weather");
    let sent = recorded_one(&env, "claude-sonnet-4-5@20250929");
    assert!(sent["path"]
        .as_str()
        .unwrap()
        .ends_with("/publishers/anthropic/models/claude-sonnet-4-5@20250929+tool_call:rawPredict"));
    assert_eq!(sent["body"]["anthropic_version"], "vertex-2023-10-16");
    assert!(sent["body"].get("model").is_none());
    assert_eq!(sent["body"]["max_tokens"], 200);

    // An Anthropic caller streaming gets Claude's own events; an OpenAI caller a translation.
    let r = env.messages(anthropic_tools_body(true)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let frames = r.sse();
    assert!(frames.iter().any(|(e, d)| e.as_deref() == Some("content_block_start") && d.contains("tool_use")));
    assert_eq!(frames.last().and_then(|(e, _)| e.clone()).as_deref(), Some("message_stop"));
    let streamed = env.recorded("claude-sonnet-4-5@20250929")[1].clone();
    assert!(streamed["path"].as_str().unwrap().ends_with(":streamRawPredict"));
    assert_eq!(streamed["body"]["stream"], true);

    let r = env.chat(tools_body(true)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(streamed_tool_names(&r), vec!["get_weather"]);
}

async fn vertex_fails_over(model: &str, class: &str, calls: u64) {
    let env = cloud(&with_backup("vertex", model)).await;
    let base = model.split('+').next().unwrap();
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{model}: {}", r.text);
    assert_eq!(r.served_by(), "openai/backup", "{model}");
    assert_eq!(r.reasons().split(", ").next().unwrap(), format!("vertex/{model}={class}"), "{model}");
    assert_eq!(env.upstream(base), calls, "{model}");
}

#[tokio::test]
async fn vertex_failure_classes_from_both_error_shapes() {
    // Google-shaped (the platform's): auth, quota, unknown model.
    vertex_fails_over("gemini-2.5-flash+error=invalid_key", "auth", 1).await;
    vertex_fails_over("gemini-2.5-flash+error=forbidden", "auth", 1).await;
    vertex_fails_over("gemini-2.5-flash+error=rate_limit", "rate_limited", 1).await;
    vertex_fails_over("gemini-2.5-flash+error=quota_exhausted", "rate_limited", 1).await;
    vertex_fails_over("gemini-2.5-flash+error=model_not_found", "deployment_invalid", 1).await;
    vertex_fails_over("gemini-2.5-flash+error=context_length", "context_window", 1).await;
    vertex_fails_over("gemini-2.5-flash+error=unavailable", "overloaded", 2).await;
    vertex_fails_over("claude-x+error=rate_limit", "rate_limited", 1).await;
    vertex_fails_over("claude-x+error=model_not_found", "deployment_invalid", 1).await;
    vertex_fails_over("claude-x+error=account_deactivated", "auth", 1).await;
    // Anthropic-shaped (the model's): overloaded, prompt too long.
    vertex_fails_over("claude-x+error=overloaded", "overloaded", 2).await;
    vertex_fails_over("claude-x+error=context_length", "context_window", 1).await;
    vertex_fails_over("claude-x+error=server", "overloaded", 2).await;
}

#[tokio::test]
async fn vertex_returns_the_callers_own_mistake() {
    let env = cloud(&with_backup("vertex", "claude-x+error=bad_request")).await;
    let r = env.messages(anthropic_body("r")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Anthropic-shaped, from Claude: an Anthropic caller receives it unchanged.
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(env.upstream("backup"), 0);
}

#[tokio::test]
async fn the_vertex_token_is_fetched_once_and_reused() {
    let env = cloud(&single("vertex", "gemini-2.5-flash")).await;
    // Concurrent first requests share one fetch.
    let replies = futures::future::join_all((0..8).map(|_| env.chat(openai_body("r")))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for _ in 0..3 {
        assert_eq!(env.chat(openai_body("r")).await.status, 200);
    }
    assert_eq!(env.mock.stats().tokens_issued, 1);
    assert_eq!(env.upstream("gemini-2.5-flash"), 11);
}

#[tokio::test]
async fn the_vertex_token_is_refreshed_before_it_expires() {
    // Tokens live 2 s here, so the gateway refreshes them after 1 s (half their life: too short
    // for Google's 3 min 45 s margin), while the old one is still valid.
    let env = cloud_with(&single("vertex", "gemini-2.5-flash"), 2, KEY).await;
    assert_eq!(env.chat(openai_body("r")).await.status, 200);
    assert_eq!(env.chat(openai_body("r")).await.status, 200);
    assert_eq!(env.mock.stats().tokens_issued, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Concurrent requests during the refresh cause one fetch between them.
    let replies = futures::future::join_all((0..8).map(|_| env.chat(openai_body("r")))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(env.mock.stats().tokens_issued, 2);
    // No request ever reached Vertex with an expired token.
    assert_eq!(env.upstream("gemini-2.5-flash"), 10);
}

#[tokio::test]
async fn a_refused_service_account_is_an_auth_failure() {
    // Signed with a key the token endpoint does not know: invalid_grant.
    let env = cloud_with(&with_backup("vertex", "gemini-2.5-flash"), 3600, OTHER_KEY).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.reasons(), "vertex/gemini-2.5-flash=auth");
    assert_eq!(env.upstream("gemini-2.5-flash"), 0, "no call without a token");
    assert_eq!(env.mock.stats().tokens_issued, 0);
    let attempts = env.chat(openai_body("r")).await;
    // The deployment is now out of rotation (auth disables it): no second token request.
    assert_eq!(attempts.served_by(), "openai/backup");
}

// ---------------------------------------------------------------------------------------------
// Anthropic -> Vertex

fn claude_fallback() -> String {
    "  r:
    fallback_chain:
      - { provider: anthropic, model: \"claude-sonnet-4-5+error=overloaded\", max_retries: 0 }
      - { provider: vertex, model: claude-sonnet-4-5 }
"
    .into()
}

#[tokio::test]
async fn anthropic_falls_back_to_the_same_claude_model_on_vertex() {
    let env = cloud(&claude_fallback()).await;
    let r = env.messages(anthropic_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "vertex/claude-sonnet-4-5");
    assert_eq!(r.reasons(), "anthropic/claude-sonnet-4-5+error=overloaded=overloaded");
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Simulated answer from claude-sonnet-4-5.");
    let sent = env.recorded("claude-sonnet-4-5");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["path"], "/v1/messages");
    assert_eq!(sent[0]["body"]["model"], "claude-sonnet-4-5+error=overloaded");
    assert!(sent[1]["path"].as_str().unwrap().ends_with("/publishers/anthropic/models/claude-sonnet-4-5:rawPredict"));
    assert!(sent[1]["body"].get("model").is_none());
    // Everything else the caller sent reached Vertex as it reached Anthropic.
    for key in ["messages", "max_tokens"] {
        assert_eq!(sent[0]["body"][key], sent[1]["body"][key], "{key}");
    }
}

#[tokio::test]
async fn anthropic_falls_back_to_claude_on_vertex_while_streaming() {
    let env = cloud(&claude_fallback()).await;
    let mut body = anthropic_body("r");
    body["stream"] = json!(true);
    let r = env.messages(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "vertex/claude-sonnet-4-5");
    let frames = r.sse();
    let events: Vec<&str> = frames.iter().filter_map(|(e, _)| e.as_deref()).collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(!events.contains(&"error"), "{events:?}");
    assert_eq!(anthropic_stream_text(&r), "Simulated answer from claude-sonnet-4-5.");
    let sent = env.recorded("claude-sonnet-4-5");
    assert!(sent[1]["path"].as_str().unwrap().ends_with(":streamRawPredict"));

    // An OpenAI caller streaming through the same route gets a translated stream.
    let mut body = openai_body("r");
    body["stream"] = json!(true);
    let r = env.chat(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(openai_stream_text(&r), ("Simulated answer from claude-sonnet-4-5.".to_string(), true));
}

// ---------------------------------------------------------------------------------------------
// Presets

fn preset_routes() -> String {
    ["groq", "mistral", "deepseek", "together", "fireworks", "openrouter", "ollama", "vllm"]
        .iter()
        .map(|p| format!("  {p}:\n    fallback_chain:\n      - {{ provider: {p}, model: {p}-m }}\n"))
        .collect()
}

async fn send(env: &Env, route: &str, mut body: Value) -> Reply {
    body["model"] = json!(route);
    let r = env.chat(body).await;
    assert_eq!(r.status, 200, "{route}: {}", r.text);
    r
}

#[tokio::test]
async fn preset_quirks_show_in_what_the_provider_receives() {
    let env = cloud(&preset_routes()).await;
    let named = json!({"messages": [{"role": "user", "content": "hi", "name": "ann"}]});

    let mut groq = named.clone();
    groq["n"] = json!(1);
    groq["logprobs"] = json!(false);
    send(&env, "groq", groq).await;
    let b = recorded_one(&env, "groq-m")["body"].clone();
    assert_eq!(b["messages"][0], json!({"role": "user", "content": "hi"}));
    assert!(b.get("n").is_none() && b.get("logprobs").is_none(), "{b}");
    assert_eq!(recorded_one(&env, "groq-m")["headers"]["authorization"], "[redacted]");

    let mut mistral = named.clone();
    mistral["stream"] = json!(true);
    mistral["stream_options"] = json!({"include_usage": true});
    mistral["max_completion_tokens"] = json!(64);
    mistral["seed"] = json!(7);
    mistral["tools"] = weather_tool();
    mistral["tool_choice"] = json!("required");
    send(&env, "mistral", mistral).await;
    let b = recorded_one(&env, "mistral-m")["body"].clone();
    assert!(b.get("stream_options").is_none(), "{b}");
    assert_eq!((&b["max_tokens"], &b["random_seed"], &b["tool_choice"]), (&json!(64), &json!(7), &json!("any")));
    assert!(b.get("max_completion_tokens").is_none() && b.get("seed").is_none());

    let deepseek = json!({"max_completion_tokens": 32, "messages": [
        {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4", "reasoning_content": "2 and 2"},
        {"role": "user", "content": "Sure?"}]});
    send(&env, "deepseek", deepseek).await;
    let b = recorded_one(&env, "deepseek-m")["body"].clone();
    assert!(b["messages"][1].get("reasoning_content").is_none(), "{b}");
    assert_eq!(b["max_tokens"], 32);

    let together = json!({"messages": [{"role": "user", "content": "Weather?"}], "tools": weather_tool(),
                          "tool_choice": "required"});
    send(&env, "together", together).await;
    let b = recorded_one(&env, "together-m")["body"].clone();
    assert_eq!(b["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));

    let r = send(&env, "fireworks", named.clone()).await;
    let b = recorded_one(&env, "accounts/fireworks/models/fireworks-m")["body"].clone();
    assert_eq!(b["model"], "accounts/fireworks/models/fireworks-m");
    assert_eq!(r.served_by(), "fireworks/fireworks-m");

    // Ollama, configured without a key, sends no Authorization header at all (the mock, which
    // speaks OpenAI's auth, refuses that; a real Ollama does not).
    let mut ollama = named.clone();
    ollama["model"] = json!("ollama");
    ollama["max_completion_tokens"] = json!(16);
    let r = env.chat(ollama).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("You didn't provide an API key"), "{}", r.text);
    let sent = recorded_one(&env, "ollama-m");
    assert_eq!(sent["body"]["max_tokens"], 16);
    assert!(sent["body"].get("max_completion_tokens").is_none());
    assert!(sent["headers"].get("authorization").is_none(), "{}", sent["headers"]);

    // OpenRouter and vLLM take the body as it is; OpenRouter's attribution headers are sent.
    let mut plain = named.clone();
    plain["max_completion_tokens"] = json!(16);
    plain["n"] = json!(1);
    for p in ["openrouter", "vllm"] {
        send(&env, p, plain.clone()).await;
        let b = recorded_one(&env, &format!("{p}-m"))["body"].clone();
        assert_eq!(
            (&b["max_completion_tokens"], &b["n"], &b["messages"][0]["name"]),
            (&json!(16), &json!(1), &json!("ann"))
        );
    }
    let headers = recorded_one(&env, "openrouter-m")["headers"].clone();
    assert_eq!((&headers["http-referer"], &headers["x-title"]), (&json!("https://example.org"), &json!("Example")));
}

#[tokio::test]
async fn a_parameter_a_preset_cannot_honour_fails_over() {
    let env = cloud(
        "  r:
    fallback_chain:
      - { provider: groq, model: groq-m }
      - { provider: openai, model: backup }
",
    )
    .await;
    let mut body = openai_body("r");
    body["n"] = json!(2);
    let r = env.chat(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.reasons(), "groq/groq-m=deployment_invalid");
    assert_eq!(env.upstream("groq-m"), 0, "refused before sending");
    assert_eq!(recorded_one(&env, "backup")["body"]["n"], 2);
}
