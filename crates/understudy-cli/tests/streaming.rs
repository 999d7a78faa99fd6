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

fn continue_route(next: &str) -> String {
    format!(
        "  r:
    stream_failure: continue
    fallback_chain:
      - {{ provider: openai, model: \"primary+cut_after=3\" }}
      - {next}
"
    )
}

fn openai_chunks(r: &Reply) -> Vec<Value> {
    r.sse_data().iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect()
}

#[tokio::test]
async fn a_broken_stream_continues_on_a_model_that_accepts_prefill() {
    let env = env(&continue_route("{ provider: anthropic, model: claude-3-haiku }")).await;
    env.mock.set_fault(
        "claude-3-haiku",
        understudy_mock::Fault { text: Some("and the rest of it.".into()), ..Default::default() },
    );
    let r = env.chat(stream_body("r", true)).await;
    let (text, done) = openai_stream_text(&r);
    assert!(done, "the caller got a complete answer, not an error: {}", r.text);
    assert!(!r.text.contains("stream_broken"));
    assert!(!r.text.contains("understudy_restart") && !r.text.contains("\"restarted\""), "spliced, not restarted");
    let sent = &env.recorded("claude-3-haiku")[0]["body"];
    let msgs = sent["messages"].as_array().unwrap();
    let prefill = msgs.last().unwrap();
    assert_eq!(prefill["role"], "assistant", "the partial answer went as a prefill: {sent}");
    let prefill_text = prefill["content"].as_str().or(prefill["content"][0]["text"].as_str()).unwrap().to_string();
    assert!(text.starts_with(prefill_text.trim_end()), "{text:?} continues {prefill_text:?}");
    assert!(text.ends_with("and the rest of it."), "{text}");
    let usage = openai_chunks(&r).into_iter().rev().find(|c| c["usage"].is_object()).unwrap();
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_broken_stream_restarts_on_a_model_without_prefill_and_says_so() {
    let env = env(&continue_route("{ provider: openai, model: backup }")).await;
    let r = env.chat(stream_body("r", false)).await;
    let (text, done) = openai_stream_text(&r);
    assert!(done, "{}", r.text);
    assert!(r.text.contains(": understudy: the answer broke"), "a comment for raw readers");
    let notice =
        openai_chunks(&r).into_iter().find(|c| c["understudy"]["restarted"] == true).expect("a restart notice chunk");
    assert_eq!(notice["choices"][0]["delta"]["content"], "", "SDKs see an empty delta");
    assert!(text.ends_with("Simulated answer from backup."), "{text}");
    let sent = &env.recorded("backup")[0]["body"];
    assert_eq!(sent["messages"].as_array().unwrap().last().unwrap()["role"], "user", "restarted from scratch");
}

#[tokio::test]
async fn anthropic_callers_get_a_continued_stream_too() {
    let env = env(&continue_route("{ provider: openai, model: backup }")).await;
    let r = env
        .messages(
            json!({"model": "r", "max_tokens": 100, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let events: Vec<String> = r.sse().iter().filter_map(|(e, _)| e.clone()).collect();
    assert_eq!(events.last().map(String::as_str), Some("message_stop"), "{}", r.text);
    assert!(events.contains(&"understudy_restart".to_string()));
    assert_eq!(events.iter().filter(|e| *e == "message_start").count(), 1, "one message");
}

#[tokio::test]
async fn when_the_continuation_fails_the_caller_gets_the_original_failure() {
    // The fallback is configured as prefill-capable but its model refuses prefills (the real
    // API's 400 for Claude 4.6 models); the caller must see the original cut, not that 400.
    let env = env(&continue_route("{ provider: anthropic, model: claude-opus-4-6, prefill: true }")).await;
    let r = env.chat(stream_body("r", false)).await;
    let data = r.sse_data();
    assert_ne!(data.last().map(String::as_str), Some("[DONE]"));
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "stream_broken", "{last}");
    assert!(!last.to_string().contains("invalid_request"), "no masking error: {last}");
    assert_eq!(env.upstream("claude-opus-4-6"), 1, "the continuation was tried");
}

#[tokio::test]
async fn tool_call_streams_are_never_spliced() {
    let env = env("  r:
    stream_failure: continue
    fallback_chain:
      - { provider: openai, model: \"primary+tool_call+cut_after=1\" }
      - { provider: anthropic, model: claude-3-haiku }
")
    .await;
    let body = json!({"model": "r", "stream": true, "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]});
    let r = env.chat(body).await;
    let data = r.sse_data();
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "stream_broken", "{}", r.text);
    assert_eq!(env.upstream("claude-3-haiku"), 0);
}
