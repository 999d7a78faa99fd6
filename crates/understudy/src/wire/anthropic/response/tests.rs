use proptest::prelude::*;

use super::*;
use crate::canonical::{FinishReason, Usage};

/// The reference's sample response: text, then a tool call, with cache reads.
const SAMPLE: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
 "content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_02","name":"get_weather","input":{"city":"Oslo"}}],
 "stop_reason":"tool_use","stop_sequence":null,
 "usage":{"input_tokens":412,"output_tokens":35,"cache_creation_input_tokens":0,"cache_read_input_tokens":380,
   "cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"service_tier":"standard"}}"#;

fn message(stop_reason: &str, content: Value) -> Vec<u8> {
    json!({"id": "msg_9", "type": "message", "role": "assistant", "model": "claude-x", "content": content,
        "stop_reason": stop_reason, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 4}})
    .to_string()
    .into_bytes()
}

#[test]
fn decodes_the_reference_sample() {
    let resp = decode(SAMPLE.as_bytes()).unwrap();
    assert_eq!(resp.id, "msg_01");
    assert_eq!(resp.model, "claude-sonnet-4-5-20250929");
    assert_eq!(resp.choices.len(), 1);
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    assert_eq!(choice.content[0], ContentPart::text("Checking."));
    match &choice.content[1] {
        ContentPart::ToolCall { id, name, arguments } => {
            assert_eq!((id.as_str(), name.as_str()), ("toolu_02", "get_weather"));
            assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"city": "Oslo"}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        resp.usage,
        Usage { input_tokens: 412 + 380, output_tokens: 35, cache_read_tokens: 380, cache_write_tokens: 0 }
    );
    let (dialect, native) = resp.native.as_ref().unwrap();
    assert_eq!(*dialect, Dialect::Anthropic);
    assert_eq!(*native, serde_json::from_str::<Value>(SAMPLE).unwrap());
    // Same dialect: the caller gets the provider's body as it was.
    assert_eq!(encode(&resp), *native);
}

#[test]
fn stop_reasons_and_skipped_blocks() {
    let refusal = json!({"id": "msg_r", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
        "stop_reason": "refusal", "stop_sequence": null,
        "stop_details": {"type": "refusal", "category": "cyber", "explanation": "I can't help with that."},
        "usage": {"input_tokens": 10, "output_tokens": 0}});
    let r = decode(refusal.to_string().as_bytes()).unwrap();
    assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);
    assert_eq!(r.choices[0].refusal.as_deref(), Some("I can't help with that."));
    assert!(r.choices[0].content.is_empty());

    let cut = decode(&message("model_context_window_exceeded", json!([{"type": "text", "text": "long"}]))).unwrap();
    assert_eq!(cut.choices[0].finish_reason, FinishReason::Length);
    let max = decode(&message("max_tokens", json!([]))).unwrap();
    assert_eq!(max.choices[0].finish_reason, FinishReason::Length);
    let paused = decode(&message("pause_turn", json!([]))).unwrap();
    assert_eq!(paused.choices[0].finish_reason, FinishReason::Other("pause_turn".into()));

    let mut seq: Value = serde_json::from_slice(&message("stop_sequence", json!([]))).unwrap();
    seq["stop_sequence"] = json!("END");
    let seq = decode(seq.to_string().as_bytes()).unwrap();
    assert_eq!(seq.choices[0].finish_reason, FinishReason::StopSequence(Some("END".into())));

    let blocks = json!([
        {"type": "thinking", "thinking": "let me see", "signature": "s"},
        {"type": "redacted_thinking", "data": "x"},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "Answer", "citations": [{"type": "web_search_result_location"}]}]);
    let r = decode(&message("end_turn", blocks)).unwrap();
    assert_eq!(r.choices[0].content, vec![ContentPart::text("Answer")]);
    assert_eq!(r.choices[0].finish_reason, FinishReason::Stop);
}

#[test]
fn cache_writes_count_as_input() {
    let body = json!({"id": "msg_c", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 2, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 200}});
    let u = decode(body.to_string().as_bytes()).unwrap().usage;
    assert_eq!(u, Usage { input_tokens: 1205, output_tokens: 2, cache_read_tokens: 200, cache_write_tokens: 1000 });
}

#[test]
fn bodies_that_are_not_messages_are_invalid_responses() {
    for body in [
        &b"not json"[..],
        b"",
        b"[]",
        b"{}",
        br#"{"type":"completion","completion":"hi"}"#,
        br#"{"type":"message","content":"hi"}"#,
        br#"{"type":"message","content":[{"type":"text"}]}"#,
        br#"{"type":"message","content":[{"type":"tool_use","name":"x"}]}"#,
    ] {
        let f = decode(body).unwrap_err();
        assert_eq!(f.class, FailureClass::InvalidResponse, "{}", String::from_utf8_lossy(body));
        assert_eq!(f.detail, Some("malformed_body"));
    }
}

#[test]
fn an_error_inside_a_200_is_classified() {
    let f = decode(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#).unwrap_err();
    assert_eq!(f.class, FailureClass::Overloaded);
    assert_eq!(f.message, "Overloaded");
    let f = decode(br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#).unwrap_err();
    assert_eq!(f.class, FailureClass::RateLimited);
}

/// An answer from another dialect (what an OpenAI decoder produces).
fn foreign() -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-abc".into(),
        model: "gpt-4o-2024-08-06".into(),
        choices: vec![Choice {
            index: 0,
            content: vec![
                ContentPart::text("Checking."),
                ContentPart::ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into(),
                },
                ContentPart::ToolCall { id: "call_2".into(), name: "get_weather".into(), arguments: "{broken".into() },
                ContentPart::Other { dialect: Dialect::OpenAi, value: json!({"type": "annotation"}) },
            ],
            finish_reason: FinishReason::ToolCalls,
            refusal: None,
        }],
        usage: Usage { input_tokens: 50, output_tokens: 18, cache_read_tokens: 20, cache_write_tokens: 0 },
        native: Some((Dialect::OpenAi, json!({"object": "chat.completion"}))),
    }
}

#[test]
fn encodes_a_foreign_answer_as_a_message() {
    assert_eq!(
        encode(&foreign()),
        json!({
            "id": "msg_chatcmpl-abc",
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o-2024-08-06",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 18, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20}
        })
    );
}

#[test]
fn encoded_answers_decode_back() {
    let mut resp = foreign();
    resp.choices[0].content.truncate(2);
    let back = decode(encode(&resp).to_string().as_bytes()).unwrap();
    assert_eq!(back.id, "msg_chatcmpl-abc");
    assert_eq!(back.usage, resp.usage);
    assert_eq!(back.choices[0].finish_reason, FinishReason::ToolCalls);
    assert_eq!(back.choices[0].content[0], resp.choices[0].content[0]);
    assert_eq!(back.choices[0].text(), "Checking.");
    assert!(back.choices[0].has_tool_calls());

    for (reason, stop, seq) in [
        (FinishReason::Stop, "end_turn", Value::Null),
        (FinishReason::StopSequence(Some("END".into())), "stop_sequence", json!("END")),
        (FinishReason::Length, "max_tokens", Value::Null),
        (FinishReason::ContentFilter, "refusal", Value::Null),
        (FinishReason::Other("recitation".into()), "end_turn", Value::Null),
    ] {
        resp.choices[0].finish_reason = reason;
        let v = encode(&resp);
        assert_eq!((&v["stop_reason"], &v["stop_sequence"]), (&json!(stop), &seq));
    }
}

#[test]
fn a_refusal_without_text_becomes_the_text() {
    let resp = ChatResponse {
        id: "msg_1".into(),
        choices: vec![Choice {
            refusal: Some("I can't help with that.".into()),
            finish_reason: FinishReason::ContentFilter,
            ..Default::default()
        }],
        ..Default::default()
    };
    let v = encode(&resp);
    assert_eq!(v["id"], "msg_1");
    assert_eq!(v["content"], json!([{"type": "text", "text": "I can't help with that."}]));
    assert_eq!(v["stop_reason"], "refusal");
    // No choices at all still makes a valid, empty message.
    let empty = encode(&ChatResponse::default());
    assert_eq!(empty["content"], json!([]));
    assert_eq!(empty["stop_reason"], "end_turn");
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_odd_messages(
        stop in ".*",
        field in prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("s")), Just(json!([])), Just(json!({}))],
    ) {
        let body = json!({"type": "message", "id": field.clone(), "model": field.clone(), "stop_reason": stop,
            "stop_sequence": field.clone(), "usage": field.clone(),
            "content": [{"type": "text", "text": "x"}, {"type": "tool_use", "id": "a", "name": "b", "input": field}]});
        let _ = decode(body.to_string().as_bytes());
    }
}
