use proptest::prelude::*;
use serde_json::json;

use super::*;

/// The reference's non-streaming sample (section 1).
const TOOL_CALL_SAMPLE: &str = r#"{"id":"chatcmpl-abc","object":"chat.completion","created":1767225600,"model":"gpt-4o-2024-08-06",
 "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,
   "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
   "logprobs":null,"finish_reason":"tool_calls"}],
 "usage":{"prompt_tokens":50,"completion_tokens":18,"total_tokens":68,
   "prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},
   "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
 "system_fingerprint":"fp_x","service_tier":"default"}"#;

#[test]
fn decodes_the_reference_tool_call_sample() {
    let resp = decode(TOOL_CALL_SAMPLE.as_bytes()).unwrap();
    assert_eq!(resp.id, "chatcmpl-abc");
    assert_eq!(resp.model, "gpt-4o-2024-08-06");
    assert_eq!(resp.choices.len(), 1);
    let choice = &resp.choices[0];
    assert_eq!(choice.index, 0);
    assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
    assert_eq!(choice.refusal, None);
    assert_eq!(
        choice.content,
        vec![ContentPart::ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Oslo"}"#.into(),
        }]
    );
    assert_eq!(resp.usage, Usage { input_tokens: 50, output_tokens: 18, cache_read_tokens: 0, cache_write_tokens: 0 });
    let native: Value = serde_json::from_str(TOOL_CALL_SAMPLE).unwrap();
    assert_eq!(resp.native, Some((Dialect::OpenAi, native)));
}

#[test]
fn decodes_text_cached_tokens_and_finish_reasons() {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there.", "refusal": null,
            "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 3, "total_tokens": 1203,
            "prompt_tokens_details": {"cached_tokens": 1024}}});
    let resp = decode(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(resp.choices[0].text(), "Hello there.");
    assert_eq!(resp.choices[0].finish_reason, FinishReason::Stop);
    assert_eq!(resp.usage.input_tokens, 1200);
    assert_eq!(resp.usage.cache_read_tokens, 1024);

    for (wire, canonical) in [
        ("length", FinishReason::Length),
        ("function_call", FinishReason::ToolCalls),
        ("content_filter", FinishReason::ContentFilter),
        ("eos", FinishReason::Other("eos".into())),
    ] {
        let body = json!({"choices": [{"message": {"content": "x"}, "finish_reason": wire}]});
        let resp = decode(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(resp.choices[0].finish_reason, canonical, "{wire}");
    }
}

#[test]
fn decodes_refusals_and_legacy_function_calls() {
    let body = json!({"id": "c", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": null, "refusal": "I can't help with that."}, "finish_reason": "stop"}]});
    let resp = decode(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(resp.choices[0].refusal.as_deref(), Some("I can't help with that."));
    assert!(resp.choices[0].content.is_empty());

    let body = json!({"choices": [{"message": {"content": null,
        "function_call": {"name": "lookup", "arguments": "{}"}}, "finish_reason": "function_call"}]});
    let resp = decode(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        resp.choices[0].content,
        vec![ContentPart::ToolCall { id: "lookup".into(), name: "lookup".into(), arguments: "{}".into() }]
    );
}

#[test]
fn azure_filter_fields_do_not_break_decoding() {
    let filters = json!({"hate": {"filtered": false, "severity": "safe"},
        "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": true, "severity": "medium"},
        "violence": {"filtered": false, "severity": "safe"},
        "jailbreak": {"filtered": false, "detected": false},
        "protected_material_text": {"filtered": false, "detected": false}});
    let body = json!({"id": "chatcmpl-az", "object": "chat.completion", "created": 1767225600, "model": "gpt-4o-2024-08-06",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters.clone()}],
        "choices": [{"index": 0, "finish_reason": "content_filter", "message": {"role": "assistant"},
            "content_filter_results": filters}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 0, "total_tokens": 20}});
    let resp = decode(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(resp.choices[0].finish_reason, FinishReason::ContentFilter);
    assert!(resp.choices[0].content.is_empty());
    assert_eq!(resp.usage.input_tokens, 20);
    // A choice without any message at all still decodes.
    let body = json!({"choices": [{"index": 0, "finish_reason": "content_filter"}]});
    assert_eq!(
        decode(&serde_json::to_vec(&body).unwrap()).unwrap().choices[0].finish_reason,
        FinishReason::ContentFilter
    );
}

#[test]
fn malformed_bodies_are_invalid_responses() {
    for body in [&b"<html>oops</html>"[..], b"", b"[1,2]", b"{\"id\":\"x\"}", b"{\"choices\":{}}"] {
        let f = decode(body).unwrap_err();
        assert_eq!(f.class, FailureClass::InvalidResponse, "{}", String::from_utf8_lossy(body));
        assert_eq!(f.detail, Some("malformed_body"));
    }
}

#[test]
fn a_200_holding_an_error_is_classified() {
    let body = br#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#;
    let f = decode(body).unwrap_err();
    assert_eq!(f.class, FailureClass::Overloaded);
    let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
    assert_eq!(decode(body).unwrap_err().class, FailureClass::ContextWindow);
}

#[test]
fn same_dialect_encode_is_passthrough() {
    let resp = decode(TOOL_CALL_SAMPLE.as_bytes()).unwrap();
    let native: Value = serde_json::from_str(TOOL_CALL_SAMPLE).unwrap();
    assert_eq!(encode(&resp), native);
}

#[test]
fn encodes_a_foreign_answer_as_chat_completion() {
    let resp = ChatResponse {
        id: "msg_01".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        choices: vec![Choice {
            index: 0,
            content: vec![
                ContentPart::text("Checking."),
                ContentPart::ToolCall {
                    id: "toolu_02".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into(),
                },
            ],
            finish_reason: FinishReason::ToolCalls,
            refusal: None,
        }],
        usage: Usage { input_tokens: 412, output_tokens: 35, cache_read_tokens: 380, cache_write_tokens: 0 },
        native: Some((Dialect::Anthropic, json!({"type": "message"}))),
    };
    let v = encode(&resp);
    assert_eq!(v["id"], "msg_01");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Checking.", "refusal": null,
            "tool_calls": [{"id": "toolu_02", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            "logprobs": null, "finish_reason": "tool_calls"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 412, "completion_tokens": 35, "total_tokens": 447,
            "prompt_tokens_details": {"cached_tokens": 380}})
    );
}

#[test]
fn encode_content_is_null_only_for_pure_tool_calls() {
    let mut choice = Choice {
        content: vec![ContentPart::ToolCall { id: "c".into(), name: "f".into(), arguments: String::new() }],
        ..Choice::default()
    };
    let resp = |choice: Choice| ChatResponse { choices: vec![choice], ..ChatResponse::default() };
    let v = encode(&resp(choice.clone()));
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{}");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    choice.content.clear();
    choice.refusal = Some("no".into());
    choice.finish_reason = FinishReason::ContentFilter;
    let v = encode(&resp(choice));
    assert_eq!(v["choices"][0]["message"]["content"], "");
    assert_eq!(v["choices"][0]["message"]["refusal"], "no");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn finish_reason_names() {
    for (reason, name) in [
        (FinishReason::Stop, "stop"),
        (FinishReason::StopSequence(Some("\n".into())), "stop"),
        (FinishReason::Length, "length"),
        (FinishReason::ToolCalls, "tool_calls"),
        (FinishReason::ContentFilter, "content_filter"),
        (FinishReason::Other("pause_turn".into()), "stop"),
    ] {
        assert_eq!(finish_reason_str(&reason), name);
    }
}

proptest! {
    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&body);
    }

    #[test]
    fn decode_never_panics_on_choice_like_json(
        content in prop_oneof![Just(json!(null)), any::<String>().prop_map(Value::from), Just(json!([{"text": 1}]))],
        index in prop_oneof![Just(json!(-1)), Just(json!(1e30)), Just(json!("0")), any::<u64>().prop_map(Value::from)],
        calls in prop_oneof![Just(json!(null)), Just(json!([{"function": {"arguments": {"a": 1}}}])), Just(json!(["x"]))],
        usage in prop_oneof![Just(json!(null)), Just(json!({"prompt_tokens": -3})), Just(json!("big"))],
    ) {
        let body = json!({"choices": [{"index": index, "message": {"content": content, "tool_calls": calls}}], "usage": usage});
        prop_assert!(decode(&serde_json::to_vec(&body).unwrap()).is_ok());
    }
}
