//! Answers you can trust, over real HTTP: validation rules fail over bad "successful" answers,
//! and context windows are respected (skip, fail over only to larger windows, or truncate).

mod common;

#[allow(unused_imports)]
use common::fault;
use common::*;
use serde_json::{json, Value};
use understudy_mock::Fault;

fn text_fault(text: &str) -> Fault {
    Fault { text: Some(text.into()), ..Default::default() }
}

fn two(extra_route: &str) -> String {
    format!(
        "  r:
{extra_route}
    fallback_chain:
      - {{ provider: openai, model: primary }}
      - {{ provider: anthropic, model: backup }}
"
    )
}

#[tokio::test]
async fn invalid_json_fails_over() {
    let env = env(&two("")).await;
    env.mock.set_fault("primary", text_fault("Sure! Here is the JSON: {\"city\":"));
    env.mock.set_fault("backup", text_fault("{\"city\": \"Oslo\"}"));
    let body = json!({"model": "r", "messages": [{"role": "user", "content": "city?"}], "response_format": {"type": "json_object"}});
    let r = env.chat(body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "anthropic/backup");
    assert_eq!(r.reasons(), "openai/primary=invalid_response");
    assert_eq!(openai_text(&r.json()), "{\"city\": \"Oslo\"}");
}

fn schema_body(stream: bool) -> Value {
    json!({
        "model": "r", "stream": stream,
        "messages": [{"role": "user", "content": "weather?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "strict": true, "schema": {
            "type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
            "required": ["city", "temp"], "additionalProperties": false}}}
    })
}

#[tokio::test]
async fn schema_mismatch_fails_over_streaming_or_not() {
    let env = env(&two("")).await;
    env.mock.set_fault("primary", text_fault("{\"city\": \"Oslo\", \"temp\": \"cold\"}"));
    env.mock.set_fault("backup", text_fault("{\"city\": \"Oslo\", \"temp\": 4}"));
    let r = env.chat(schema_body(false)).await;
    assert_eq!(r.served_by(), "anthropic/backup", "{}", r.text);
    // Streams are held back until the whole answer passed the schema: the caller sees only the
    // valid answer, in one clean stream.
    let r = env.chat(schema_body(true)).await;
    assert_eq!(r.served_by(), "anthropic/backup", "{}", r.text);
    let (text, done) = openai_stream_text(&r);
    assert!(done);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"city": "Oslo", "temp": 4}));
}

#[tokio::test]
async fn refusal_regex_fails_over() {
    let env = env(&two("    validate: { must_not_match: [\"(?i)^I can.t help\"] }")).await;
    env.mock.set_fault("primary", text_fault("I can't help with that."));
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.served_by(), "anthropic/backup");
    let r = env
        .messages(
            json!({"model": "r", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.served_by(), "anthropic/backup");
    assert!(r.text.contains("message_stop"));
    assert!(!r.text.contains("help with that"), "the refusal never reached the caller");
}

#[tokio::test]
async fn rules_can_be_turned_off() {
    let env = env(&two("    validate: { non_empty: false }")).await;
    env.mock.set_fault("primary", Fault { empty: true, ..Default::default() });
    assert_eq!(env.chat(openai_body("r")).await.served_by(), "openai/primary");
}

fn long_prompt(words: usize) -> String {
    "lorem ipsum dolor sit amet ".repeat(words / 5)
}

#[tokio::test]
async fn a_model_too_small_for_the_prompt_is_skipped() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: gpt-4 }
      - { provider: anthropic, model: claude-3-haiku }
")
    .await;
    // About 12k tokens: over gpt-4's 8k window, well within claude-3-haiku's 200k.
    let r = env.chat(json!({"model": "r", "messages": [{"role": "user", "content": long_prompt(12_000)}]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "anthropic/claude-3-haiku");
    assert_eq!(r.reasons(), "openai/gpt-4=context_window");
    assert_eq!(env.upstream("gpt-4"), 0, "never sent a request bound to fail");
}

#[tokio::test]
async fn a_context_error_fails_over_only_to_larger_windows() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: \"big+error=context_length\", context_window: 32000 }
      - { provider: openai, model: small, context_window: 16000 }
      - { provider: anthropic, model: bigger, context_window: 200000 }
")
    .await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "anthropic/bigger");
    assert_eq!(env.upstream("small"), 0, "a smaller window cannot help");
    assert_eq!(env.upstream("big"), 1, "a context error is never retried");
    assert_eq!(r.reasons(), "openai/small=context_window, openai/big+error=context_length=context_window");
}

#[tokio::test]
async fn when_nothing_can_hold_the_prompt_the_caller_gets_a_400() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: gpt-4 }
      - { provider: openai, model: gpt-3.5-turbo }
")
    .await;
    let r = env.chat(json!({"model": "r", "messages": [{"role": "user", "content": long_prompt(20_000)}]})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "context_length_exceeded");
    assert_eq!(env.mock.stats().total, 0);
}

fn conversation(turns: usize) -> Value {
    let mut messages = vec![json!({"role": "system", "content": "You are the system prompt."})];
    for i in 0..turns {
        messages.push(json!({"role": "user", "content": format!("question {i}: {}", long_prompt(200))}));
        messages.push(json!({"role": "assistant", "content": format!("answer {i}: {}", long_prompt(200))}));
    }
    messages.push(json!({"role": "user", "content": "the latest question"}));
    json!({"model": "r", "messages": messages})
}

async fn truncated_with(mode: &str) -> (Reply, Vec<String>) {
    let env = env(&format!(
        "  r:
    truncate: {mode}
    fallback_chain:
      - {{ provider: openai, model: small, context_window: 3000 }}
"
    ))
    .await;
    let r = env.chat(conversation(20)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &env.recorded("small")[0]["body"]["messages"];
    let firsts: Vec<String> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(firsts[0], "You are the system prompt.", "{mode}: the system prompt stays");
    assert_eq!(firsts.last().unwrap(), "the latest question", "{mode}: the latest user turn stays");
    assert!(firsts.len() < 42, "{mode}: something was removed");
    (r, firsts)
}

#[tokio::test]
async fn drop_oldest_truncation() {
    let (r, firsts) = truncated_with("drop_oldest").await;
    assert!(r.header("x-understudy-truncated").unwrap().starts_with("openai/small=drop_oldest:"), "{:?}", r.headers);
    assert!(!firsts.contains(&"question 0".to_string()));
    assert!(firsts.contains(&"question 19".to_string()));
}

#[tokio::test]
async fn middle_out_truncation() {
    let (r, firsts) = truncated_with("middle_out").await;
    assert!(r.header("x-understudy-truncated").unwrap().starts_with("openai/small=middle_out:"));
    assert_eq!(firsts[1], "question 0", "the opening turn stays: {firsts:?}");
    assert!(firsts.contains(&"question 19".to_string()));
    assert!(!firsts.contains(&"question 10".to_string()));
}

#[tokio::test]
async fn max_tokens_beyond_a_fallbacks_output_limit_is_clamped() {
    let env = env("  r:
    fallback_chain:
      - { provider: anthropic, model: claude-3-haiku }
")
    .await;
    let r = env.chat(json!({"model": "r", "max_tokens": 10000, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.recorded("claude-3-haiku")[0]["body"]["max_tokens"], 4096);
}

#[tokio::test]
async fn content_filtered_without_a_chain_returns_the_providers_reason() {
    let env = env(&two("")).await;
    env.mock.set_fault("primary", fault("error=content_policy"));
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(env.upstream("backup"), 0, "content policy is not failed over by default");
    // An answer finished by the content filter is delivered as such.
    env.mock.set_fault("primary", Fault { content_filter: true, ..Default::default() });
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn content_filtered_with_its_own_chain_goes_there_and_never_trips_a_breaker() {
    let env = env("  r:
    breaker: { consecutive_failures: 1 }
    on_content_filtered:
      - { provider: gemini, model: lenient }
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: backup }
")
    .await;
    env.mock.set_fault("primary", fault("error=content_policy"));
    for _ in 0..3 {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.served_by(), "gemini/lenient");
        assert_eq!(r.reasons(), "openai/primary=content_filtered");
    }
    assert_eq!(env.upstream("primary"), 3, "no breaker opened on content-policy refusals");
    assert_eq!(env.upstream("backup"), 0, "the content chain, not the ordinary fallbacks");
    // A filtered answer (HTTP 200) also goes to the content chain.
    env.mock.set_fault("primary", Fault { content_filter: true, ..Default::default() });
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.served_by(), "gemini/lenient");
}

#[tokio::test]
async fn prompt_adaptation_per_target_for_every_front() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: \"primary+error=unavailable\", max_retries: 0 }
      - provider: anthropic
        model: backup
        prompt:
          system_prepend: \"You are the backup model.\"
          system_append: \"Keep it short.\"
          user_template: \"{{content}}\\n\\nAnswer in one sentence.\"
      - provider: openai
        model: replaced
        prompt: { system_replace: \"Only this system prompt.\" }
")
    .await;
    let r = env
        .chat(json!({"model": "r", "messages": [{"role": "system", "content": "Original."}, {"role": "user", "content": "What is Rust?"}]}))
        .await;
    assert_eq!(r.served_by(), "anthropic/backup");
    let sent = &env.recorded("backup")[0]["body"];
    assert_eq!(sent["system"], "You are the backup model.\n\nOriginal.\n\nKeep it short.");
    assert_eq!(
        sent["messages"][0]["content"].as_str().or(sent["messages"][0]["content"][0]["text"].as_str()).unwrap(),
        "What is Rust?\n\nAnswer in one sentence."
    );
    // The primary saw the caller's prompt untouched.
    assert_eq!(env.recorded("primary")[0]["body"]["messages"][0]["content"], "Original.");

    // The Anthropic front, same adaptation.
    let r = env.messages(json!({"model": "r", "max_tokens": 50, "system": "Original.", "messages": [{"role": "user", "content": "Why?"}]})).await;
    assert_eq!(r.served_by(), "anthropic/backup");
    let sent = &env.recorded("backup")[1]["body"];
    assert_eq!(sent["system"], "You are the backup model.\n\nOriginal.\n\nKeep it short.");
    assert_eq!(
        sent["messages"][0]["content"].as_str().or(sent["messages"][0]["content"][0]["text"].as_str()).unwrap(),
        "Why?\n\nAnswer in one sentence."
    );
}

async fn journal_lines(path: &std::path::Path, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            if lines.len() >= want {
                return lines;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the journal never got {want} lines");
}

#[tokio::test]
async fn the_fallback_journal_records_what_users_got_off_the_happy_path() {
    let dir = std::env::temp_dir().join(format!("understudy-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    let env = env_with(
        "  r:
    stream_failure: continue
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: backup }
",
        &format!("journal: {{ path: \"{}\" }}\n", path.display()),
    )
    .await;
    // On the happy path nothing is written.
    env.chat(openai_body("r")).await;
    env.mock.set_fault("primary", fault("error=unavailable"));
    let r = env
        .chat(json!({"model": "r", "messages": [{"role": "user", "content": "My mail is ann@example.com, call +1 415 555 0100."}]}))
        .await;
    assert_eq!(r.served_by(), "anthropic/backup");
    let lines = journal_lines(&path, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let e = &lines[0];
    assert_eq!(e["reason"], "fallback");
    assert_eq!(e["served_by"], "anthropic/backup");
    assert_eq!(e["answer"], "Simulated answer from backup.");
    assert_eq!(e["attempts"][0]["class"], "overloaded");
    let prompt = e["prompt"].as_str().unwrap();
    assert!(prompt.contains("user: My mail is [email] call [number]."), "{prompt}");
    // A stream continued on another model is journalled too.
    env.mock.set_fault("primary", fault("cut_after=2"));
    env.chat(json!({"model": "r", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let lines = journal_lines(&path, 2).await;
    assert_eq!(lines[1]["reason"], "continued");
    assert!(lines[1]["answer"].as_str().unwrap().ends_with("Simulated answer from backup."), "{}", lines[1]);
}
