use serde_json::json;

use super::*;
use crate::canonical::{Choice, Usage};
use crate::config::ValidateConfig;

fn answer(text: &str, finish: FinishReason, output_tokens: u64) -> ChatResponse {
    ChatResponse {
        choices: vec![Choice { content: vec![ContentPart::text(text)], finish_reason: finish, ..Default::default() }],
        usage: Usage { output_tokens, ..Default::default() },
        ..Default::default()
    }
}

fn req(format: Option<ResponseFormat>, max_tokens: Option<u32>) -> ChatRequest {
    let mut r = ChatRequest { response_format: format, ..Default::default() };
    r.params.max_tokens = max_tokens;
    r
}

fn detail(r: Result<(), Failure>) -> Option<&'static str> {
    r.err().and_then(|f| f.detail)
}

#[test]
fn empty_answers_fail() {
    let rules = Rules::default();
    assert_eq!(detail(check(&answer("  ", FinishReason::Stop, 1), &req(None, None), &rules)), Some("empty_content"));
    assert_eq!(detail(check(&answer("hi", FinishReason::Stop, 1), &req(None, None), &rules)), None);
    let off = Rules::from_config(&ValidateConfig { non_empty: Some(false), ..Default::default() });
    assert_eq!(detail(check(&answer("", FinishReason::Stop, 1), &req(None, None), &off)), None);
}

#[test]
fn truncation_only_counts_when_the_callers_limit_was_not_reached() {
    let rules = Rules::default();
    let cut = answer("partial", FinishReason::Length, 10);
    assert_eq!(detail(check(&cut, &req(None, Some(100)), &rules)), Some("truncated"));
    assert_eq!(detail(check(&cut, &req(None, None), &rules)), Some("truncated"));
    assert_eq!(detail(check(&cut, &req(None, Some(10)), &rules)), None, "the caller asked for 10 tokens");
}

#[test]
fn json_modes() {
    let rules = Rules::default();
    let r = req(Some(ResponseFormat::JsonObject), None);
    assert_eq!(detail(check(&answer("{\"a\":1}", FinishReason::Stop, 5), &r, &rules)), None);
    assert_eq!(detail(check(&answer("```json\n{\"a\":1}\n```", FinishReason::Stop, 5), &r, &rules)), None);
    assert_eq!(detail(check(&answer("Sure! {\"a\":", FinishReason::Stop, 5), &r, &rules)), Some("invalid_json"));
    // Without a JSON response format, prose is fine.
    assert_eq!(detail(check(&answer("Sure!", FinishReason::Stop, 5), &req(None, None), &rules)), None);
}

#[test]
fn json_schema_conformance() {
    let rules = Rules::default();
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}}, "required": ["city", "temp"]});
    let r = req(Some(ResponseFormat::JsonSchema { name: "weather".into(), schema, strict: Some(true) }), None);
    assert_eq!(detail(check(&answer(r#"{"city":"Oslo","temp":4}"#, FinishReason::Stop, 5), &r, &rules)), None);
    let bad = check(&answer(r#"{"city":"Oslo","temp":"cold"}"#, FinishReason::Stop, 5), &r, &rules).unwrap_err();
    assert_eq!(bad.detail, Some("schema_mismatch"));
    assert!(bad.message.contains("weather") && bad.message.contains("/temp"), "{}", bad.message);
    assert_eq!(
        detail(check(&answer(r#"{"city":"Oslo"}"#, FinishReason::Stop, 5), &r, &rules)),
        Some("schema_mismatch")
    );
}

#[test]
fn regex_rules() {
    let rules = Rules::from_config(&ValidateConfig {
        must_not_match: vec!["(?i)I can(no|')t help".into()],
        must_match: vec!["\\S".into()],
        ..Default::default()
    });
    let r = req(None, None);
    assert_eq!(
        detail(check(&answer("I can't help with that.", FinishReason::Stop, 5), &r, &rules)),
        Some("rule_must_not_match")
    );
    assert_eq!(detail(check(&answer("Here you go.", FinishReason::Stop, 5), &r, &rules)), None);
    assert!(rules.needs_whole_answer(&r));
    assert!(!Rules::default().needs_whole_answer(&r));
}

#[test]
fn tool_arguments_must_be_json_objects() {
    let rules = Rules::default();
    let mut a = answer("", FinishReason::ToolCalls, 5);
    a.choices[0].content =
        vec![ContentPart::ToolCall { id: "c".into(), name: "f".into(), arguments: "{\"x\":".into() }];
    assert_eq!(detail(check(&a, &req(None, None), &rules)), Some("invalid_tool_arguments"));
    a.choices[0].content =
        vec![ContentPart::ToolCall { id: "c".into(), name: "f".into(), arguments: "{\"x\":1}".into() }];
    assert_eq!(detail(check(&a, &req(None, None), &rules)), None);
}
