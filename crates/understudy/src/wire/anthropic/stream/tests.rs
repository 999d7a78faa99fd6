use proptest::prelude::*;

use super::*;
use crate::failure::{Failure, FailureClass};

/// The reference's sample stream: a text block, a ping, a tool_use block, the end.
const SAMPLE: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\":\"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Os\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
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
    decoded.iter().flat_map(|d| d.as_ref().expect("well-formed frame").events.clone()).collect()
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Default::default() }
}

fn text(t: &str) -> StreamEvent {
    StreamEvent::Text { index: 0, text: t.into() }
}

fn call(call: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> StreamEvent {
    StreamEvent::ToolCall {
        index: 0,
        call,
        id: id.map(str::to_string),
        name: name.map(str::to_string),
        arguments: arguments.into(),
    }
}

#[test]
fn decodes_the_reference_stream() {
    let decoded = decode_chunks(&[SAMPLE.as_bytes()]);
    assert_eq!(decoded.len(), 10);
    assert_eq!(
        events_of(&decoded),
        vec![
            StreamEvent::Start { id: Some("msg_01".into()), model: Some("claude-sonnet-4-5-20250929".into()) },
            StreamEvent::Usage(usage(25, 1)),
            text("Hello"),
            call(0, Some("toolu_02"), Some("get_weather"), ""),
            call(0, None, None, "{\"city\": \"Os"),
            StreamEvent::Finish { index: 0, reason: FinishReason::ToolCalls },
            StreamEvent::Usage(usage(25, 42)),
            StreamEvent::Done,
        ]
    );
    // Every frame keeps its bytes, so a caller of this dialect can get the stream unchanged.
    let raw: Vec<u8> = decoded.iter().flat_map(|d| d.as_ref().unwrap().raw.to_vec()).collect();
    assert_eq!(raw, SAMPLE.as_bytes());
}

#[test]
fn split_at_every_byte_decodes_the_same() {
    let input = SAMPLE.as_bytes();
    let whole = decode_chunks(&[input]);
    for split in 1..input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(decode_chunks(&[a, b]), whole, "split at {split}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode_chunks(&bytes), whole);
}

#[test]
fn in_stream_error_event() {
    let input = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: error\n",
        "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    let events = events_of(&decode_chunks(&[input.as_bytes()]));
    match events.last() {
        Some(StreamEvent::Error(f)) => {
            assert_eq!(f.class, FailureClass::Overloaded);
            assert_eq!(f.message, "Overloaded");
        }
        other => panic!("{other:?}"),
    }
    let rate =
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}\n\n";
    assert!(matches!(
        events_of(&decode_chunks(&[rate.as_bytes()]))[..],
        [StreamEvent::Error(Failure { class: FailureClass::RateLimited, .. })]
    ));
}

#[test]
fn skips_what_is_not_canonical_content() {
    let frames = [
        r#"{"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":100,"cache_creation_input_tokens":5}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"q\"}"}}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"text","text":"Pre"}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"citations_delta","citation":{}}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":""}}"#,
        r#"{"type":"content_block_start","index":4,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        r#"{"type":"content_block_delta","index":4,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"brand_new_event","x":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"pause_turn","stop_sequence":null},"usage":{"output_tokens":9,"cache_read_input_tokens":120}}"#,
    ];
    let mut input = String::new();
    for f in frames {
        input.push_str(&format!("data: {f}\n\n"));
    }
    input.push_str("event: ping\n\n");
    let events = events_of(&decode_chunks(&[input.as_bytes()]));
    let start_usage = Usage { input_tokens: 115, output_tokens: 1, cache_read_tokens: 100, cache_write_tokens: 5 };
    let end_usage = Usage { input_tokens: 135, output_tokens: 9, cache_read_tokens: 120, cache_write_tokens: 5 };
    assert_eq!(
        events,
        vec![
            StreamEvent::Start { id: Some("msg_1".into()), model: Some("m".into()) },
            StreamEvent::Usage(start_usage),
            text("Pre"),
            // The server tool took no ordinal: this is the first client tool call.
            call(0, Some("toolu_1"), Some("f"), ""),
            StreamEvent::Finish { index: 0, reason: FinishReason::Other("pause_turn".into()) },
            StreamEvent::Usage(end_usage),
        ]
    );
}

#[test]
fn malformed_frames_are_reported_and_skipped() {
    let input = concat!(
        "event: content_block_delta\ndata: {not json\n\n",
        "data: \n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\"}}\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}",
    );
    let out = decode_chunks(&[input.as_bytes()]);
    assert_eq!(out.len(), 6);
    assert!(out[..5].iter().all(Result::is_err), "{out:?}");
    assert_eq!(out[5].as_ref().unwrap().events, vec![StreamEvent::Done]);
}

fn encode_all(init: StreamInit, events: &[StreamEvent], final_usage: Option<Usage>) -> String {
    let mut enc = Encoder::new(init);
    let mut out = BytesMut::new();
    for e in events {
        enc.event(e, &mut out);
    }
    enc.finish(final_usage, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn init() -> StreamInit {
    StreamInit {
        id: "chatcmpl-1".into(),
        model: "gpt-4o".into(),
        created: 1_767_225_600,
        include_usage: false,
        input_tokens: Some(25),
    }
}

#[test]
fn encoder_writes_byte_exact_anthropic_sse() {
    let events = [
        StreamEvent::Start { id: None, model: None },
        text("Hel"),
        text("lo"),
        StreamEvent::Finish { index: 0, reason: FinishReason::Stop },
        StreamEvent::Done,
    ];
    let out = encode_all(init(), &events, Some(usage(25, 2)));
    let expected = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_chatcmpl-1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-4o\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":0}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2,\"input_tokens\":25}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn encoder_output_decodes_to_the_same_events() {
    let final_usage = Usage { input_tokens: 125, output_tokens: 30, cache_read_tokens: 100, cache_write_tokens: 0 };
    let events = [
        text("Let me check. "),
        text("One moment."),
        call(0, Some("call_1"), Some("get_weather"), ""),
        call(0, None, None, "{\"city\":"),
        call(0, None, None, "\"Oslo\"}"),
        call(1, Some("call_2"), Some("get_time"), "{}"),
        StreamEvent::Finish { index: 0, reason: FinishReason::ToolCalls },
        StreamEvent::Usage(final_usage),
    ];
    let sse = encode_all(init(), &events, None);
    let decoded = events_of(&decode_chunks(&[sse.as_bytes()]));
    let mut expected = vec![
        StreamEvent::Start { id: Some("msg_chatcmpl-1".into()), model: Some("gpt-4o".into()) },
        StreamEvent::Usage(usage(25, 0)),
    ];
    expected.extend(events[..5].iter().cloned());
    // A first fragment that carries arguments arrives as the block start plus one delta.
    expected.push(call(1, Some("call_2"), Some("get_time"), ""));
    expected.push(call(1, None, None, "{}"));
    expected.push(events[6].clone());
    expected.push(StreamEvent::Usage(final_usage));
    expected.push(StreamEvent::Done);
    assert_eq!(decoded, expected);
    // The stop sequence survives too.
    let sse = encode_all(
        init(),
        &[text("a"), StreamEvent::Finish { index: 0, reason: FinishReason::StopSequence(Some("END".into())) }],
        None,
    );
    assert!(events_of(&decode_chunks(&[sse.as_bytes()]))
        .contains(&StreamEvent::Finish { index: 0, reason: FinishReason::StopSequence(Some("END".into())) }));
}

#[test]
fn encoder_edge_cases() {
    // Other choices, empty text and fragments whose block was closed write nothing.
    let events = [
        StreamEvent::Text { index: 1, text: "other choice".into() },
        text(""),
        call(0, Some("call_1"), Some("a"), "{\"x\":"),
        call(1, Some("call_2"), Some("b"), ""),
        call(0, None, None, "tail-of-a"),
        call(5, None, None, "orphan"),
    ];
    let sse = encode_all(init(), &events, None);
    assert!(!sse.contains("other choice") && !sse.contains("orphan") && !sse.contains("tail-of-a"));
    let decoded = events_of(&decode_chunks(&[sse.as_bytes()]));
    assert_eq!(decoded[2], call(0, Some("call_1"), Some("a"), ""));
    assert_eq!(decoded[3], call(0, None, None, "{\"x\":"));
    assert_eq!(decoded[4], call(1, Some("call_2"), Some("b"), ""));
    assert!(decoded.contains(&StreamEvent::Done));

    // A stream with no content still starts and ends properly.
    let sse = encode_all(init(), &[], None);
    let decoded = events_of(&decode_chunks(&[sse.as_bytes()]));
    assert_eq!(decoded.last(), Some(&StreamEvent::Done));
    assert!(decoded.contains(&StreamEvent::Finish { index: 0, reason: FinishReason::Stop }));
}

#[test]
fn encoder_error_ends_the_stream() {
    let mut enc = Encoder::new(init());
    let mut out = BytesMut::new();
    enc.event(&text("partial"), &mut out);
    let mut err = ErrorBody::new(529, "overloaded_error", "Overloaded");
    err.extra.insert("attempts".into(), json!([]));
    enc.error(&err, &mut out);
    let end = out.len();
    enc.event(&text("more"), &mut out);
    enc.finish(Some(usage(1, 1)), &mut out);
    enc.error(&err, &mut out);
    assert_eq!(out.len(), end, "nothing follows the error");
    let sse = String::from_utf8(out.to_vec()).unwrap();
    assert!(sse.ends_with(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\",\"attempts\":[]}}\n\n"
    ));
    assert!(!sse.contains("message_stop"));
    let decoded = events_of(&decode_chunks(&[sse.as_bytes()]));
    assert!(matches!(decoded.last(), Some(StreamEvent::Error(f)) if f.class == FailureClass::Overloaded));
}

fn event_strategy() -> impl Strategy<Value = StreamEvent> {
    let reason = prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::Length),
        Just(FinishReason::ToolCalls),
        ".*".prop_map(|s| FinishReason::StopSequence(Some(s))),
    ];
    prop_oneof![
        (0u32..2, ".*").prop_map(|(index, text)| StreamEvent::Text { index, text }),
        (0u32..3, proptest::option::of("[a-z_]{0,8}"), proptest::option::of(".*"), ".*")
            .prop_map(|(c, id, name, arguments)| StreamEvent::ToolCall { index: 0, call: c, id, name, arguments }),
        reason.prop_map(|reason| StreamEvent::Finish { index: 0, reason }),
        (0u64..1000, 0u64..1000).prop_map(|(i, o)| StreamEvent::Usage(usage(i, o))),
        Just(StreamEvent::Done),
    ]
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024), cut in 0usize..1024) {
        let cut = cut.min(bytes.len());
        let (a, b) = bytes.split_at(cut);
        let _ = decode_chunks(&[a, b]);
    }

    #[test]
    fn decoder_never_panics_on_odd_frames(kind in ".*", field in prop_oneof![
        Just(json!(null)), Just(json!(1)), Just(json!("s")), Just(json!([])), Just(json!({"type": "tool_use"}))
    ]) {
        let frame = json!({"type": kind, "index": field.clone(), "message": field.clone(),
            "content_block": field.clone(), "delta": field.clone(), "usage": field.clone(), "error": field});
        let input = format!("data: {frame}\n\n");
        let _ = decode_chunks(&[input.as_bytes()]);
    }

    #[test]
    fn encoder_output_always_decodes(events in proptest::collection::vec(event_strategy(), 0..20)) {
        let sse = encode_all(init(), &events, None);
        let decoded = decode_chunks(&[sse.as_bytes()]);
        prop_assert!(decoded.iter().all(Result::is_ok));
        let events = events_of(&decoded);
        prop_assert_eq!(events.last(), Some(&StreamEvent::Done));
    }
}
