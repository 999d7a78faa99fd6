use proptest::prelude::*;

use super::*;
use crate::canonical::FinishReason;
use crate::failure::FailureClass;

/// The reference's stream (section 1) with the elided fields filled in.
const REFERENCE_STREAM: &str = concat!(
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]},"finish_reason":null}],"usage":null,"obfuscation":"x7Q"}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":18,"total_tokens":68}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

fn decode_chunks(chunks: &[&[u8]]) -> Vec<Result<Decoded, Malformed>> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    d.finish(&mut out);
    out
}

fn events_of(decoded: &[Result<Decoded, Malformed>]) -> Vec<StreamEvent> {
    decoded.iter().flat_map(|d| d.as_ref().unwrap().events.clone()).collect()
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

#[test]
fn decodes_the_reference_stream() {
    let decoded = decode_chunks(&[REFERENCE_STREAM.as_bytes()]);
    assert_eq!(decoded.len(), 8);
    assert_eq!(
        events_of(&decoded),
        vec![
            StreamEvent::Start { id: Some("chatcmpl-abc".into()), model: Some("gpt-4o-2024-08-06".into()) },
            StreamEvent::Text { index: 0, text: "Hel".into() },
            StreamEvent::ToolCall {
                index: 0,
                call: 0,
                id: Some("call_1".into()),
                name: Some("get_weather".into()),
                arguments: String::new()
            },
            StreamEvent::ToolCall { index: 0, call: 0, id: None, name: None, arguments: "{\"city\":".into() },
            StreamEvent::ToolCall { index: 0, call: 0, id: None, name: None, arguments: "\"Oslo\"}".into() },
            StreamEvent::Finish { index: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(usage(50, 18)),
            StreamEvent::Done,
        ]
    );
    // Each frame's raw bytes are exactly what arrived.
    let raws: Vec<u8> = decoded.iter().flat_map(|d| d.as_ref().unwrap().raw.to_vec()).collect();
    assert_eq!(raws, REFERENCE_STREAM.as_bytes());
}

#[test]
fn splitting_at_every_byte_boundary_gives_identical_events() {
    let input = REFERENCE_STREAM.as_bytes();
    let whole = decode_chunks(&[input]);
    for split in 1..input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(decode_chunks(&[a, b]), whole, "split at {split}");
    }
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_chunks(&bytewise), whole);
}

#[test]
fn azure_first_chunk_yields_no_events() {
    let stream = concat!(
        r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"content_filter_results":{},"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1767225600,"id":"chatcmpl-az","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_x"}"#,
        "\n\n",
        r#"data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hi"},"finish_reason":null,"index":0}],"created":1767225600,"id":"chatcmpl-az","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk"}"#,
        "\n\n",
        r#"data: {"choices":[{"content_filter_results":{"sexual":{"filtered":true,"severity":"medium"}},"delta":{},"finish_reason":"content_filter","index":0}],"created":1767225600,"id":"chatcmpl-az","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk"}"#,
        "\n\n",
        "data: [DONE]\n\n",
    );
    let decoded = decode_chunks(&[stream.as_bytes()]);
    assert!(decoded[0].as_ref().unwrap().events.is_empty());
    assert_eq!(
        events_of(&decoded),
        vec![
            StreamEvent::Start { id: Some("chatcmpl-az".into()), model: Some("gpt-4o-2024-08-06".into()) },
            StreamEvent::Text { index: 0, text: "Hi".into() },
            StreamEvent::Finish { index: 0, reason: FinishReason::ContentFilter },
            StreamEvent::Done,
        ]
    );
}

#[test]
fn error_chunks_become_error_events() {
    let stream = concat!(
        r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        "\n\n",
    );
    let decoded = decode_chunks(&[stream.as_bytes()]);
    let events = &decoded[1].as_ref().unwrap().events;
    let [StreamEvent::Error(failure)] = events.as_slice() else {
        panic!("expected one error event, got {events:?}");
    };
    assert_eq!(failure.class, FailureClass::Overloaded);
    assert_eq!(failure.status, Some(200));
}

#[test]
fn malformed_chunks_are_reported_and_skipped() {
    let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"\n\ndata: 42\n\n: keep-alive\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}\n\n";
    let decoded = decode_chunks(&[stream]);
    assert_eq!(decoded.len(), 3);
    assert!(decoded[0].is_err());
    assert!(decoded[1].is_err());
    assert_eq!(decoded[2].as_ref().unwrap().events, vec![StreamEvent::Text { index: 0, text: "b".into() }]);
}

#[test]
fn interleaved_calls_and_choices_keep_their_indexes() {
    let stream = concat!(
        r#"data: {"id":"c","model":"m","choices":[{"index":1,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}},{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{"}}]},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"c","model":"m","choices":[{"index":1,"delta":{"refusal":"No."},"finish_reason":"stop"}]}"#,
        "\n\n",
    );
    let events = events_of(&decode_chunks(&[stream.as_bytes()]));
    assert!(matches!(&events[1], StreamEvent::ToolCall { index: 1, call: 0, id: Some(id), .. } if id == "a"));
    assert!(matches!(&events[2], StreamEvent::ToolCall { index: 1, call: 1, arguments, .. } if arguments == "{"));
    assert_eq!(events[3], StreamEvent::Text { index: 1, text: "No.".into() });
    assert_eq!(events.len(), 5, "{events:?}");
}

fn init(include_usage: bool) -> StreamInit {
    StreamInit {
        id: "chatcmpl-gw".into(),
        model: "gpt-4o-mini".into(),
        created: 1767225600,
        include_usage,
        input_tokens: None,
    }
}

#[test]
fn encoder_writes_byte_exact_chunks() {
    let mut enc = Encoder::new(init(true));
    let mut out = BytesMut::new();
    enc.event(&StreamEvent::Start { id: None, model: None }, &mut out);
    enc.event(&StreamEvent::Text { index: 0, text: "Hi \"you\"".into() }, &mut out);
    enc.event(&StreamEvent::Finish { index: 0, reason: FinishReason::Stop }, &mut out);
    enc.event(&StreamEvent::Done, &mut out);
    enc.finish(Some(usage(5, 2)), &mut out);
    let head =
        r#"{"id":"chatcmpl-gw","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","choices":"#;
    let expected = [
        format!(
            "data: {head}[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ),
        format!(
            "data: {head}[{{\"index\":0,\"delta\":{{\"content\":\"Hi \\\"you\\\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ),
        format!("data: {head}[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"),
        format!(
            "data: {head}[],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7,\"prompt_tokens_details\":{{\"cached_tokens\":0}}}}}}\n\n"
        ),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
}

#[test]
fn encoder_without_include_usage_omits_usage() {
    let mut enc = Encoder::new(init(false));
    let mut out = BytesMut::new();
    enc.event(&StreamEvent::Text { index: 0, text: "x".into() }, &mut out);
    enc.event(&StreamEvent::Usage(usage(1, 1)), &mut out);
    enc.finish(None, &mut out);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(!text.contains("usage"), "{text}");
    assert!(text.ends_with("}\n\ndata: [DONE]\n\n"));
    assert_eq!(text.matches("data: ").count(), 3);
}

#[test]
fn encoder_error_is_final() {
    let mut enc = Encoder::new(init(true));
    let mut out = BytesMut::new();
    enc.event(&StreamEvent::Text { index: 0, text: "partial".into() }, &mut out);
    let before = out.len();
    let mut err =
        ErrorBody::new(502, "stream_broken", "the provider stopped mid-answer").code("upstream_stream_broken");
    err.extra.insert("attempts".into(), serde_json::json!([{"provider": "openai"}]));
    enc.error(&err, &mut out);
    enc.event(&StreamEvent::Text { index: 0, text: "more".into() }, &mut out);
    enc.finish(Some(usage(1, 1)), &mut out);
    let tail = std::str::from_utf8(&out[before..]).unwrap();
    assert_eq!(
        tail,
        "data: {\"error\":{\"message\":\"the provider stopped mid-answer\",\"type\":\"stream_broken\",\"param\":null,\"code\":\"upstream_stream_broken\",\"attempts\":[{\"provider\":\"openai\"}]}}\n\n"
    );
}

#[test]
fn encoder_output_decodes_to_the_same_events() {
    let events = vec![
        StreamEvent::Text { index: 0, text: "Let me check.\n".into() },
        StreamEvent::ToolCall {
            index: 0,
            call: 0,
            id: Some("call_1".into()),
            name: Some("get_weather".into()),
            arguments: String::new(),
        },
        StreamEvent::ToolCall { index: 0, call: 0, id: None, name: None, arguments: "{\"city\":\"Oslo\"}".into() },
        StreamEvent::ToolCall {
            index: 0,
            call: 1,
            id: Some("call_2".into()),
            name: Some("get_time".into()),
            arguments: "{}".into(),
        },
        StreamEvent::Finish { index: 0, reason: FinishReason::ToolCalls },
    ];
    let mut enc = Encoder::new(init(true));
    let mut out = BytesMut::new();
    for e in &events {
        enc.event(e, &mut out);
    }
    enc.event(&StreamEvent::Usage(usage(50, 18)), &mut out);
    enc.finish(None, &mut out);

    let decoded = events_of(&decode_chunks(&[&out]));
    let mut expected = vec![StreamEvent::Start { id: Some("chatcmpl-gw".into()), model: Some("gpt-4o-mini".into()) }];
    expected.extend(events);
    expected.push(StreamEvent::Usage(usage(50, 18)));
    expected.push(StreamEvent::Done);
    assert_eq!(decoded, expected);
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024), split in 0usize..1024) {
        let split = split.min(bytes.len());
        let (a, b) = bytes.split_at(split);
        let _ = decode_chunks(&[a, b]);
    }

    #[test]
    fn decoder_never_panics_on_chunk_like_json(
        body in prop_oneof![
            Just(r#"{"choices":[{"index":-1,"delta":{"tool_calls":[{"index":1e40}]}}]}"#.to_string()),
            Just(r#"{"choices":"x","usage":{"prompt_tokens":"1"}}"#.to_string()),
            Just(r#"{"choices":[null,1,{"delta":null,"finish_reason":5}]}"#.to_string()),
            Just(r#"{"error":null,"choices":[{"delta":{"function_call":{"name":3}}}]}"#.to_string()),
            "[ -~]{0,64}",
        ],
    ) {
        let frame = format!("data: {body}\n\n");
        let out = decode_chunks(&[frame.as_bytes()]);
        prop_assert!(out.iter().all(|d| d.as_ref().map_or(true, |d| d.raw == frame.as_bytes())));
    }
}
