//! `POST /v1/embeddings` over real HTTP: the OpenAI shape (floats and base64), OpenAI and Gemini
//! providers, failover with the chat failure classes, health, validation, and deployments without
//! embeddings skipped.

mod common;

use common::*;
use serde_json::{json, Value};

const ROUTES: &str = "  emb:
    fallback_chain:
      - { provider: openai, model: text-embedding-3-small }
  gem:
    fallback_chain:
      - { provider: gemini, model: gemini-embedding-001 }
";

async fn embed(env: &Env, body: Value) -> Reply {
    env.post("/v1/embeddings", &body, &[]).await
}

fn vectors(v: &Value) -> Vec<Vec<f32>> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

/// Standard base64 to bytes (test helper; the gateway's encoder is tested against fixed bytes).
fn unbase64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | A.iter().position(|a| *a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn openai_happy_path_in_floats_and_base64() {
    let env = env(ROUTES).await;
    let r = embed(&env, json!({"model": "emb", "input": ["hello world", "bye"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/text-embedding-3-small");
    assert_eq!(r.header("x-understudy-route"), Some("emb"));
    assert_eq!(r.attempts(), 1);
    assert!(r.header("x-request-id").is_some());
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let floats = vectors(&v);
    assert_eq!(floats.len(), 2);
    assert_eq!(floats[0].len(), 8);

    let r = embed(&env, json!({"model": "emb", "input": ["hello world", "bye"], "encoding_format": "base64"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    for (i, want) in floats.iter().enumerate() {
        let bytes = unbase64(v["data"][i]["embedding"].as_str().unwrap());
        let got: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(&got, want, "base64 holds the same little-endian f32 vector");
    }
    // The provider was asked for floats whatever the caller wanted back.
    let sent = env.recorded("text-embedding-3-small");
    assert!(sent.iter().all(|r| r["body"].get("encoding_format").is_none()), "{sent:?}");
}

#[tokio::test]
async fn gemini_providers_answer_through_batch_embed_contents() {
    let env = env(ROUTES).await;
    let oa = embed(&env, json!({"model": "emb", "input": ["hello world", "bye"], "dimensions": 4})).await;
    let r = embed(&env, json!({"model": "gem", "input": ["hello world", "bye"], "dimensions": 4})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "gemini/gemini-embedding-001");
    let v = r.json();
    assert_eq!(v["model"], "gemini-embedding-001");
    // The mock's vectors depend on the text only: the same answer as the OpenAI route.
    assert_eq!(vectors(&v), vectors(&oa.json()));
    assert_eq!(vectors(&v)[0].len(), 4, "dimensions became outputDimensionality");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() >= 3, "estimated when Gemini reports none: {v}");
    let sent = env.recorded("gemini-embedding-001");
    assert_eq!(sent[0]["path"], "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert_eq!(sent[0]["body"]["requests"][1]["content"]["parts"][0]["text"], "bye");
}

#[tokio::test]
async fn unknown_fields_pass_through_to_an_openai_provider() {
    let env = env(ROUTES).await;
    let r = embed(&env, json!({"model": "emb", "input": "x", "user": "u-42", "x_vendor": {"a": 1}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = env.recorded("text-embedding-3-small");
    assert_eq!(sent[0]["body"]["user"], "u-42");
    assert_eq!(sent[0]["body"]["x_vendor"], json!({"a": 1}));
    assert_eq!(sent[0]["body"]["model"], "text-embedding-3-small");
}

async fn fails_over_to_gemini(fault_spec: &str, class: &str, primary_calls: u64) {
    let model = format!("primary+{fault_spec}");
    let env = env(&format!(
        "  r:
    fallback_chain:
      - {{ provider: openai, model: \"{model}\", timeout: 1s }}
      - {{ provider: gemini, model: backup }}
"
    ))
    .await;
    let r = embed(&env, json!({"model": "r", "input": ["a", "b"]})).await;
    assert_eq!(r.status, 200, "{fault_spec}: {}", r.text);
    assert_eq!(r.served_by(), "gemini/backup", "{fault_spec}");
    assert_eq!(r.reasons().split(", ").next().unwrap(), format!("openai/{model}={class}"), "{fault_spec}");
    assert_eq!(r.attempts() as u64, primary_calls + 1, "{fault_spec}");
    assert_eq!(env.upstream("primary"), primary_calls, "{fault_spec}");
    assert_eq!(r.json()["model"], "backup");
    assert_eq!(vectors(&r.json()).len(), 2);
}

#[tokio::test]
async fn failures_fail_over_with_the_chat_classes() {
    fails_over_to_gemini("error=unavailable", "overloaded", 2).await;
    fails_over_to_gemini("error=invalid_key", "auth", 1).await;
    fails_over_to_gemini("error=model_not_found", "deployment_invalid", 1).await;
    fails_over_to_gemini("error=quota_exhausted", "rate_limited", 1).await;
    fails_over_to_gemini("empty", "invalid_response", 1).await;
    fails_over_to_gemini("hang", "timeout", 1).await;
    fails_over_to_gemini("reset", "connect", 2).await;
}

#[tokio::test]
async fn a_callers_mistake_reported_by_the_provider_is_not_failed_over() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: \"primary+error=bad_request\" }
      - { provider: gemini, model: backup }
")
    .await;
    let r = embed(&env, json!({"model": "r", "input": "x"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(env.upstream("backup"), 0);
    assert_eq!(r.header("x-should-retry"), Some("false"));
}

#[tokio::test]
async fn providers_without_embeddings_are_skipped_without_a_call() {
    let env = env("  r:
    fallback_chain:
      - { provider: anthropic, model: claude-haiku-4-5 }
      - { provider: openai, model: text-embedding-3-small }
  chat_only:
    fallback_chain:
      - { provider: anthropic, model: claude-haiku-4-5 }
")
    .await;
    let r = embed(&env, json!({"model": "r", "input": "x"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/text-embedding-3-small");
    assert_eq!(r.reasons(), "anthropic/claude-haiku-4-5=no_embeddings");
    assert_eq!(r.attempts(), 1);
    assert_eq!(env.upstream("claude-haiku-4-5"), 0);
    let state: Value =
        env.client.get(format!("{}/admin/state", env.gw.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["fallback_routes"], json!([]), "passing over a chat-only deployment is not a fallback");

    let r = embed(&env, json!({"model": "chat_only", "input": "x"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let e = &r.json()["error"];
    assert!(e["message"].as_str().unwrap().contains("no deployment that serves embeddings"), "{e}");
    // The skip said nothing about the deployment: chat still goes to it.
    let chat = env.chat(openai_body("chat_only")).await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    assert_eq!(chat.served_by(), "anthropic/claude-haiku-4-5");
}

#[tokio::test]
async fn token_inputs_skip_gemini_for_a_provider_that_takes_them() {
    let env = env("  r:
    fallback_chain:
      - { provider: gemini, model: gemini-embedding-001 }
      - { provider: openai, model: text-embedding-3-small }
")
    .await;
    let r = embed(&env, json!({"model": "r", "input": [[1, 2, 3], [4]]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/text-embedding-3-small");
    assert_eq!(r.reasons(), "gemini/gemini-embedding-001=deployment_invalid");
    assert_eq!(env.upstream("gemini-embedding-001"), 0);
    // A refusal at encoding time leaves the deployment in rotation.
    let r = embed(&env, json!({"model": "r", "input": "text"})).await;
    assert_eq!(r.served_by(), "gemini/gemini-embedding-001");
}

#[tokio::test]
async fn unknown_routes_and_bad_input_get_openai_errors_naming_the_param() {
    let env = env(ROUTES).await;
    let r = embed(&env, json!({"model": "nope", "input": "x"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    for (body, param) in [
        (json!({"model": "emb"}), "input"),
        (json!({"model": "emb", "input": []}), "input"),
        (json!({"model": "emb", "input": ["a", 5]}), "input[1]"),
        (json!({"model": "emb", "input": "x", "encoding_format": "int8"}), "encoding_format"),
        (json!({"model": "emb", "input": "x", "dimensions": -1}), "dimensions"),
        (json!({"input": "x"}), "model"),
    ] {
        let r = embed(&env, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error", "{body}");
        assert_eq!(e["param"], param, "{body}");
        assert_eq!(r.header("x-should-retry"), Some("false"));
    }
    assert_eq!(env.upstream("text-embedding-3-small"), 0);
}

#[tokio::test]
async fn embeddings_share_health_with_chat_and_are_counted() {
    let env = env("  r:
    breaker: { consecutive_failures: 2, open_for: 1h }
    max_retries: 0
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: gemini, model: backup }
")
    .await;
    env.mock.set_fault("primary", fault("error=unavailable"));
    for _ in 0..2 {
        let r = embed(&env, json!({"model": "r", "input": "x"})).await;
        assert_eq!(r.served_by(), "gemini/backup");
    }
    assert_eq!(env.upstream("primary"), 2);
    // The breaker the embeddings opened keeps chat away too, at no cost.
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.reasons(), "openai/primary=circuit_open");
    let r = embed(&env, json!({"model": "r", "input": "x"})).await;
    assert_eq!(r.reasons(), "openai/primary=circuit_open");
    assert_eq!(env.upstream("primary"), 2);

    let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    assert!(m.lines().any(|l| l.starts_with("understudy_requests_total") && l.contains("front=\"embeddings\"")), "{m}");
}

#[tokio::test]
async fn when_everything_fails_the_caller_gets_the_trace() {
    let env = env("  r:
    max_retries: 0
    fallback_chain:
      - { provider: openai, model: \"a+error=unavailable\" }
      - { provider: gemini, model: \"b+error=unavailable\" }
")
    .await;
    let r = embed(&env, json!({"model": "r", "input": "x"})).await;
    assert_eq!(r.status, 503, "{}", r.text);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "all_candidates_failed");
    assert_eq!(e["attempts"].as_array().unwrap().len(), 2);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.reasons(), "openai/a+error=unavailable=overloaded, gemini/b+error=unavailable=overloaded");
}
