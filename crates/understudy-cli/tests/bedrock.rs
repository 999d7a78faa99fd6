//! AWS Bedrock end to end over loopback HTTP: the gateway signs (SigV4) and sends Converse /
//! ConverseStream requests to the mock, which checks the signatures independently, answers in
//! Bedrock's shapes (a binary event stream for streams) and fails in Bedrock's error shapes.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use understudy_cli::server;
use understudy_mock::{MockConfig, AWS_TEST_SECRET_ACCESS_KEY};

/// A Claude model id as Bedrock names it (the `:` is percent-encoded in the path, and encoded
/// once more in the signature).
const CLAUDE: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// Providers on one mock: `bedrock` (SigV4 with the mock's secret), `bedrock-token` (with a
/// session token), `bedrock-badsecret`, `bedrock-key` (a Bedrock API key), `bedrock-badkey`,
/// `anthropic` and `openai`.
fn config_yaml(mock: &str, routes: &str) -> String {
    format!(
        r#"providers:
  bedrock:           {{ kind: bedrock, base_url: "{mock}", region: us-west-2, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: "{AWS_TEST_SECRET_ACCESS_KEY}" }}
  bedrock-token:     {{ kind: bedrock, base_url: "{mock}", region: eu-west-1, aws_access_key_id: ASIAEXAMPLE, aws_secret_access_key: "{AWS_TEST_SECRET_ACCESS_KEY}", aws_session_token: "FwoGZXIvYXdzEXAMPLE//token+/=" }}
  bedrock-badsecret: {{ kind: bedrock, base_url: "{mock}", region: us-west-2, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: "not-the-secret" }}
  bedrock-key:       {{ kind: bedrock, base_url: "{mock}", api_key: ABSK-good-key }}
  bedrock-badkey:    {{ kind: bedrock, base_url: "{mock}", api_key: ABSK-revoked }}
  anthropic:         {{ kind: anthropic, base_url: "{mock}", api_key: test-anthropic-key }}
  openai:            {{ kind: openai, base_url: "{mock}/v1", api_key: test-openai-key }}
defaults:
  connect_timeout: 500ms
  backoff_base: 10ms
  backoff_max: 50ms
routes:
{routes}"#
    )
}

async fn bedrock_env(routes: &str) -> Env {
    let mock_config = MockConfig {
        api_keys: vec!["ABSK-good-key".into(), "test-anthropic-key".into(), "test-openai-key".into()],
        ..MockConfig::default()
    };
    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), mock_config).await.unwrap();
    let yaml = config_yaml(&mock.url(), routes);
    let loaded = understudy::config::load_str(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let gw = server::start(&loaded.config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    Env { mock, gw, client }
}

fn one(provider: &str, model: &str) -> String {
    format!("  r:\n    fallback_chain:\n      - {{ provider: {provider}, model: \"{model}\" }}\n")
}

/// `primary` on `provider`, then a healthy anthropic backup.
fn two_step(provider: &str, model: &str) -> String {
    format!(
        "  r:\n    fallback_chain:\n      - {{ provider: {provider}, model: \"{model}\" }}\n      - {{ provider: anthropic, model: backup }}\n"
    )
}

const WEATHER: &str = "get_weather";

fn openai_tools_body(stream: bool) -> Value {
    json!({"model": "r", "stream": stream,
           "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}],
           "tools": [{"type": "function", "function": {"name": WEATHER, "description": "Current weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
           "max_tokens": 200, "temperature": 0.5})
}

fn anthropic_tools_body(stream: bool) -> Value {
    json!({"model": "r", "stream": stream, "max_tokens": 200, "system": "Be brief.",
           "messages": [{"role": "user", "content": "Weather in Oslo?"}],
           "tools": [{"name": WEATHER, "description": "Current weather",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]})
}

#[tokio::test]
async fn answers_through_the_openai_front() {
    let env = bedrock_env(&one("bedrock", CLAUDE)).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), format!("bedrock/{CLAUDE}"));
    let v = r.json();
    assert_eq!(openai_text(&v), format!("Simulated answer from {CLAUDE}."));
    assert_eq!(v["model"], CLAUDE, "the deployment's model stands in for the one Converse does not name");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // What Bedrock received: a signed Converse call with the model in the path.
    let rec = env.recorded(CLAUDE);
    let last = rec.last().unwrap();
    assert_eq!(last["path"], "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse");
    assert_eq!(last["headers"]["authorization"], "[redacted]");
    assert!(last["headers"]["x-amz-date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(last["body"], json!({"messages": [{"role": "user", "content": [{"text": "Say hello."}]}]}));
}

#[tokio::test]
async fn tool_calls_through_both_fronts() {
    let model = format!("{CLAUDE}+tool_call");
    let env = bedrock_env(&one("bedrock", &model)).await;

    let r = env.chat(openai_tools_body(false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], WEATHER);
    assert!(call["id"].as_str().unwrap().starts_with("tooluse_"));
    let body = env.recorded(CLAUDE).last().unwrap()["body"].clone();
    assert_eq!(body["system"], json!([{"text": "Be brief."}]));
    assert_eq!(body["inferenceConfig"], json!({"maxTokens": 200, "temperature": 0.5}));
    assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["name"], WEATHER);
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["city"]["type"],
        "string"
    );

    let r = env.messages(anthropic_tools_body(false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], WEATHER);
    assert_eq!(v["content"][0]["input"], json!({}));

    // Streams: the event stream's tool call, re-encoded for each front.
    let r = env.chat(openai_tools_body(true)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{}", r.text);
    let chunks: Vec<Value> = data.iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    let first_call =
        chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"][0].as_object().cloned()).unwrap();
    assert_eq!(first_call["function"]["name"], WEATHER);
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));

    let r = env.messages(anthropic_tools_body(true)).await;
    let frames = r.sse();
    let events: Vec<&str> = frames.iter().filter_map(|(e, _)| e.as_deref()).collect();
    assert_eq!(events.first(), Some(&"message_start"), "{}", r.text);
    assert_eq!(events.last(), Some(&"message_stop"));
    let start = frames.iter().find(|(e, _)| e.as_deref() == Some("content_block_start")).unwrap();
    let start: Value = serde_json::from_str(&start.1).unwrap();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], WEATHER);
    let delta = frames.iter().find(|(e, _)| e.as_deref() == Some("message_delta")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&delta.1).unwrap()["delta"]["stop_reason"], "tool_use");
    // Streams go to converse-stream.
    assert!(env.recorded(CLAUDE).last().unwrap()["path"].as_str().unwrap().ends_with("/converse-stream"));
}

#[tokio::test]
async fn text_streams_through_both_fronts() {
    let env = bedrock_env(&one("bedrock", "m")).await;
    let mut body = openai_body("r");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = env.chat(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (text, done) = openai_stream_text(&r);
    assert_eq!(text, "Simulated answer from m.");
    assert!(done);
    let data = r.sse_data();
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 4, "usage from the metadata event: {usage}");

    let mut body = anthropic_body("r");
    body["stream"] = json!(true);
    let r = env.messages(body).await;
    let text: String = r
        .sse()
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok()?["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "Simulated answer from m.");
    assert_eq!(r.sse().last().unwrap().0.as_deref(), Some("message_stop"));
}

/// A failure of the Bedrock primary, from its real error shape, and what the gateway does.
async fn primary_fails(spec: &str, class: &str, primary_calls: u64) {
    let model = format!("primary+{spec}");
    let env = bedrock_env(&two_step("bedrock", &model)).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{spec}: {}", r.text);
    assert_eq!(r.served_by(), "anthropic/backup", "{spec}");
    assert_eq!(r.reasons().split(", ").next().unwrap(), format!("bedrock/{model}={class}"), "{spec}");
    assert_eq!(env.upstream("primary"), primary_calls, "{spec}: calls on the primary");
    assert_eq!(env.upstream("backup"), 1, "{spec}");
}

#[tokio::test]
async fn failure_classes_from_bedrock_error_shapes() {
    // No retry on the same deployment: fail over at once.
    primary_fails("error=rate_limit", "rate_limited", 1).await;
    primary_fails("error=quota_exhausted", "rate_limited", 1).await;
    primary_fails("error=invalid_key", "auth", 1).await;
    primary_fails("error=forbidden", "auth", 1).await;
    primary_fails("error=account_deactivated", "auth", 1).await;
    primary_fails("error=model_not_found", "deployment_invalid", 1).await;
    primary_fails("error=context_length", "context_window", 1).await;
    // Capacity: one retry with backoff, then fail over.
    primary_fails("error=overloaded", "overloaded", 2).await;
    primary_fails("error=unavailable", "overloaded", 2).await;
    primary_fails("error=server", "overloaded", 2).await;
    primary_fails("error=timeout", "overloaded", 2).await;
    primary_fails("error=bad_gateway", "overloaded", 2).await;
    // Bad answers.
    primary_fails("empty", "invalid_response", 1).await;
    primary_fails("truncated", "invalid_response", 1).await;
}

#[tokio::test]
async fn the_callers_own_mistake_is_not_failed_over() {
    let env = bedrock_env(&two_step("bedrock", "primary+error=bad_request")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(env.upstream("backup"), 0);
    assert!(r.text.contains("inferenceConfig.temperature"), "the provider's message reaches the caller: {}", r.text);
}

#[tokio::test]
async fn a_guardrail_intervention_is_delivered_not_failed_over() {
    let env = bedrock_env(&two_step("bedrock", "primary+error=content_policy")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "bedrock/primary+error=content_policy");
    assert_eq!(r.json()["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(env.upstream("backup"), 0);
}

#[tokio::test]
async fn signatures_are_verified() {
    // A wrong secret: the mock's own SigV4 check refuses it, the gateway fails over.
    let env = bedrock_env(
        "  r:\n    fallback_chain:\n      - { provider: bedrock-badsecret, model: m }\n      - { provider: bedrock, model: m2 }\n",
    )
    .await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "bedrock/m2");
    assert_eq!(r.reasons(), "bedrock-badsecret/m=auth");
    assert_eq!(env.upstream("m"), 1, "auth failures are not retried");

    // A session token is sent and signed; streams are signed too.
    let env = bedrock_env(&one("bedrock-token", CLAUDE)).await;
    assert_eq!(env.chat(openai_body("r")).await.status, 200);
    let mut body = anthropic_body("r");
    body["stream"] = json!(true);
    let r = env.messages(body).await;
    assert_eq!(r.sse().last().unwrap().0.as_deref(), Some("message_stop"), "{}", r.text);
    let rec = env.recorded(CLAUDE);
    assert_eq!(rec[0]["headers"]["x-amz-security-token"], "[redacted]");

    // Bedrock API keys: bearer tokens, checked by the mock.
    let env = bedrock_env(
        "  r:\n    fallback_chain:\n      - { provider: bedrock-badkey, model: m }\n      - { provider: bedrock-key, model: m2 }\n",
    )
    .await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "bedrock-key/m2");
    assert_eq!(r.reasons(), "bedrock-badkey/m=auth");
    assert!(env.recorded("m2")[0]["headers"].get("x-amz-date").is_none(), "no SigV4 with an API key");
}

#[tokio::test]
async fn anthropic_falls_back_to_the_same_claude_on_bedrock() {
    let routes = format!(
        "  claude:\n    fallback_chain:\n      - {{ provider: anthropic, model: \"claude-sonnet-4-5+error=overloaded\" }}\n      - {{ provider: bedrock, model: \"{CLAUDE}\" }}\n"
    );
    let env = bedrock_env(&routes).await;
    let body = json!({"model": "claude", "max_tokens": 256, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "Say hello."}]});
    let r = env.messages(body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), format!("bedrock/{CLAUDE}"));
    assert_eq!(r.reasons(), "anthropic/claude-sonnet-4-5+error=overloaded=overloaded, anthropic/claude-sonnet-4-5+error=overloaded=overloaded");
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], CLAUDE);
    assert_eq!(v["content"][0]["text"], format!("Simulated answer from {CLAUDE}."));
    assert_eq!(v["stop_reason"], "end_turn");
    let sent = env.recorded(CLAUDE).last().unwrap()["body"].clone();
    assert_eq!(sent["system"], json!([{"text": "Be brief."}]));
    assert_eq!(sent["inferenceConfig"], json!({"maxTokens": 256}));

    // Streaming: the caller sees one clean Anthropic stream from Bedrock.
    let mut stream_body = body;
    stream_body["stream"] = json!(true);
    let r = env.messages(stream_body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), format!("bedrock/{CLAUDE}"));
    let frames = r.sse();
    let events: Vec<&str> = frames.iter().filter_map(|(e, _)| e.as_deref()).filter(|e| *e != "ping").collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(!events.contains(&"error"));
    let text: String = frames
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok()?["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, format!("Simulated answer from {CLAUDE}."));
    let start: Value =
        serde_json::from_str(&frames.iter().find(|(e, _)| e.as_deref() == Some("message_start")).unwrap().1).unwrap();
    assert_eq!(start["message"]["model"], CLAUDE);
    assert!(env.recorded(CLAUDE).last().unwrap()["path"].as_str().unwrap().ends_with("%3A0/converse-stream"));
}

#[tokio::test]
async fn stream_failures_before_the_first_token_fail_over_invisibly() {
    for spec in ["error=unavailable", "error_after=0", "error=rate_limit"] {
        let env = bedrock_env(&two_step("bedrock", &format!("primary+{spec}"))).await;
        let mut body = openai_body("r");
        body["stream"] = json!(true);
        let r = env.chat(body).await;
        assert_eq!(r.status, 200, "{spec}");
        assert_eq!(r.served_by(), "anthropic/backup", "{spec}");
        let (text, done) = openai_stream_text(&r);
        assert!(done && !text.is_empty(), "{spec}: {}", r.text);
    }
}

/// After the first token, a broken Bedrock stream ends with an in-band error and no `[DONE]`.
async fn broken_after_commit(spec: &str) {
    let model = format!("primary+{spec}");
    let env = bedrock_env(&two_step("bedrock", &model)).await;
    let mut body = openai_body("r");
    body["stream"] = json!(true);
    let r = env.chat(body).await;
    assert_eq!(r.status, 200, "{spec}");
    assert_eq!(r.served_by(), format!("bedrock/{model}"), "{spec}");
    let data = r.sse_data();
    assert_ne!(data.last().map(String::as_str), Some("[DONE]"), "{spec}: {}", r.text);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "stream_broken", "{spec}: {last}");
    assert_eq!(env.upstream("backup"), 0, "{spec}");
}

#[tokio::test]
async fn broken_streams_after_commit_are_never_a_success() {
    broken_after_commit("cut_after=2").await;
    broken_after_commit("error_after=2").await;
    // No messageStop / metadata: the answer never finished.
    broken_after_commit("no_done").await;
}

#[tokio::test]
async fn a_frame_with_a_bad_crc_is_skipped_and_counted() {
    let env = bedrock_env(&one("bedrock", "m+malformed_at=2")).await;
    let mut body = openai_body("r");
    body["stream"] = json!(true);
    let r = env.chat(body).await;
    let (text, done) = openai_stream_text(&r);
    assert!(done, "{}", r.text);
    assert_eq!(text, "Simulated answer from m.", "the garbled frame never reaches the caller");
    let metrics = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|l| l.starts_with("understudy_stream_malformed_chunks_total")).unwrap_or("");
    assert!(line.ends_with(" 1"), "{line}");
}
