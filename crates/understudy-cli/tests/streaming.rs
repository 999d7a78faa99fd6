//! Streaming rules of DESIGN section 4 over real HTTP: the commit point, broken streams after
//! it, malformed chunks, missing terminators, usage, and translation between dialects.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn route(primary: &str, extra: &str) -> String {
    format!(
        "  r:
    fallback_chain:
      - {{ provider: openai, model: \"{primary}\" {extra} }}
      - {{ provider: anthropic, model: backup }}
"
    )
}

fn stream_body(route: &str, include_usage: bool) -> Value {
    let mut b = json!({"model": route, "stream": true, "messages": [{"role": "user", "content": "Say hello."}]});
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

#[tokio::test]
async fn a_clean_stream_passes_through_with_usage_only_when_asked() {
    let env = env(&route("primary", "")).await;
    let r = env.chat(stream_body("r", true)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let (text, done) = openai_stream_text(&r);
    assert!(done, "{}", r.text);
    assert!(text.split_whitespace().count() >= 2, "{text}");
    let data = r.sse_data();
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let r = env.chat(stream_body("r", false)).await;
    assert!(!r.text.contains("\"completion_tokens\""), "no usage chunk unless asked: {}", r.text);
    assert!(openai_stream_text(&r).1);
}

#[tokio::test]
async fn failures_before_the_first_token_fail_over_invisibly() {
    for spec in ["error=unavailable", "error=account_deactivated", "error_after=0", "reset"] {
        let env = env(&route(&format!("primary+{spec}"), ", max_retries: 0")).await;
        let r = env.chat(stream_body("r", false)).await;
        assert_eq!(r.status, 200, "{spec}");
        assert_eq!(r.served_by(), "anthropic/backup", "{spec}");
        let (text, done) = openai_stream_text(&r);
        assert!(done && !text.is_empty(), "{spec}: one clean stream: {}", r.text);
        assert!(!r.text.contains("\"error\""), "{spec}");
    }
}

#[tokio::test]
async fn a_slow_first_token_fails_over_invisibly() {
    let env = env(&route("primary+ttft=5s", ", ttft_timeout: 300ms")).await;
    let t0 = Instant::now();
    let r = env.chat(stream_body("r", false)).await;
    assert_eq!(r.served_by(), "anthropic/backup");
    assert!(r.reasons().ends_with("=timeout"));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(openai_stream_text(&r).1);
}

/// After the commit point a broken stream ends with an error event and no `[DONE]`.
async fn broken_after_commit(spec: &str, extra: &str) -> Reply {
    let env = env(&route(&format!("primary+{spec}"), extra)).await;
    let r = env.chat(stream_body("r", true)).await;
    assert_eq!(r.status, 200, "{spec}");
    assert_eq!(r.served_by(), format!("openai/primary+{spec}"), "{spec}: committed to the primary");
    let data = r.sse_data();
    assert_ne!(data.last().map(String::as_str), Some("[DONE]"), "{spec}: never a clean end: {}", r.text);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "stream_broken", "{spec}: {last}");
    let delivered: String = data[..data.len() - 1]
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert!(!delivered.is_empty(), "{spec}: the partial answer was delivered before the error");
    assert_eq!(env.upstream("backup"), 0, "{spec}: no silent splice by default");
    r
}

#[tokio::test]
async fn a_stream_cut_mid_answer_is_never_a_success() {
    broken_after_commit("cut_after=2", "").await;
}

#[tokio::test]
async fn a_stalled_stream_is_cut_by_the_idle_timeout() {
    let t0 = Instant::now();
    broken_after_commit("stall_after=2", ", idle_timeout: 300ms").await;
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_in_band_provider_error_after_commit_is_reported() {
    broken_after_commit("error_after=2", "").await;
}

#[tokio::test]
async fn malformed_chunks_are_skipped_and_counted() {
    let env = env(&route("primary+malformed_at=2", "")).await;
    let r = env.chat(stream_body("r", false)).await;
    let (text, done) = openai_stream_text(&r);
    assert!(done, "{}", r.text);
    assert!(!text.is_empty());
    let metrics = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("understudy_stream_malformed_chunks_total"), "{metrics}");
}

#[tokio::test]
async fn a_stream_without_its_terminator_is_finalised_at_once() {
    let env = env(&route("primary+no_done", ", idle_timeout: 20s")).await;
    let t0 = Instant::now();
    let r = env.chat(stream_body("r", true)).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "did not wait for the idle timeout");
    let (text, done) = openai_stream_text(&r);
    assert!(done && !text.is_empty(), "{}", r.text);
}

#[tokio::test]
async fn anthropic_callers_get_anthropic_streams_from_any_provider() {
    for provider_model in ["openai", "anthropic", "gemini"] {
        let env = env(&format!(
            "  r:
    fallback_chain:
      - {{ provider: {provider_model}, model: m }}
"
        ))
        .await;
        let r = env.messages(json!({"model": "r", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(r.status, 200, "{provider_model}: {}", r.text);
        let frames = r.sse();
        let events: Vec<&str> = frames.iter().filter_map(|(e, _)| e.as_deref()).filter(|e| *e != "ping").collect();
        assert_eq!(events.first(), Some(&"message_start"), "{provider_model}: {events:?}");
        assert_eq!(events.last(), Some(&"message_stop"), "{provider_model}");
        assert!(events.contains(&"content_block_delta"));
        for (e, d) in &frames {
            let v: Value = serde_json::from_str(d).unwrap();
            assert_eq!(v["type"].as_str(), e.as_deref(), "{provider_model}: data.type equals the event name");
        }
        let text: String = frames
            .iter()
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
            .collect();
        assert!(!text.is_empty(), "{provider_model}");
        assert!(r.served_by().starts_with(provider_model));
    }
}

#[tokio::test]
async fn openai_callers_get_openai_streams_from_anthropic_and_gemini() {
    for provider in ["anthropic", "gemini"] {
        let env = env(&format!(
            "  r:
    fallback_chain:
      - {{ provider: {provider}, model: m }}
"
        ))
        .await;
        let r = env.chat(stream_body("r", true)).await;
        assert_eq!(r.status, 200, "{provider}: {}", r.text);
        let (text, done) = openai_stream_text(&r);
        assert!(done && !text.is_empty(), "{provider}: {}", r.text);
        let data = r.sse_data();
        let first: Value = serde_json::from_str(&data[0]).unwrap();
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(first["model"], "m", "{provider}: the answering deployment's model");
        let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{provider}: {usage}");
    }
}

#[tokio::test]
async fn a_broken_anthropic_stream_ends_with_an_error_event() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: \"m+cut_after=2\" }
")
    .await;
    let r = env
        .messages(
            json!({"model": "r", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let frames = r.sse();
    let (event, data) = frames.last().unwrap();
    assert_eq!(event.as_deref(), Some("error"), "{}", r.text);
    assert!(!frames.iter().any(|(e, _)| e.as_deref() == Some("message_stop")));
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["error"]["type"], "stream_broken");
}
