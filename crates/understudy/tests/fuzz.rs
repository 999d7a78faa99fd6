//! Parsers that cannot be broken: arbitrary bytes and arbitrary JSON into every request parser,
//! the SSE parser, every provider's response and stream decoders and error classifiers never
//! panic, and the SSE parser's memory stays bounded whatever it is fed. A bounded run is part of
//! the test suite (raise `PROPTEST_CASES` for a longer one).

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use understudy::canonical::Dialect;
use understudy::provider::{self, Adapter};
use understudy::wire::sse::{SseParser, MAX_FRAME};
use understudy::wire::{self, StreamDecoder};

/// Arbitrary JSON, biased towards the keys the parsers look for so that deep paths are reached.
fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "tool_calls",
        "function",
        "arguments",
        "name",
        "choices",
        "delta",
        "finish_reason",
        "usage",
        "error",
        "message",
        "candidates",
        "parts",
        "system",
        "tools",
        "max_tokens",
        "stream",
        "index",
        "id",
        "input",
        "stop_reason",
        "image_url",
        "url",
        "source",
        "tool_use_id",
        "functionCall",
        "args",
        "usageMetadata",
        "promptFeedback",
        "status",
        "code",
        "details",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "user",
            "assistant",
            "system",
            "tool",
            "text",
            "tool_use",
            "function",
            "stop",
            "end_turn",
            "STOP"
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn adapters() -> Vec<(Dialect, std::sync::Arc<dyn Adapter>)> {
    use understudy::config::ProviderKind;
    vec![
        (Dialect::OpenAi, provider::adapter(ProviderKind::Openai)),
        (Dialect::Anthropic, provider::adapter(ProviderKind::Anthropic)),
        (Dialect::Gemini, provider::adapter(ProviderKind::Gemini)),
        (Dialect::Bedrock, provider::adapter(ProviderKind::Bedrock)),
    ]
}

fn decode_stream(d: &mut dyn StreamDecoder, chunks: &[Vec<u8>]) {
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    d.finish(&mut out);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_parsers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for front in wire::front::FRONTS {
            let _ = wire::front::decode_request(front, &bytes);
        }
    }

    #[test]
    fn request_parsers_take_any_json(v in json_value()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        for front in wire::front::FRONTS {
            if let Ok(req) = wire::front::decode_request(front, &bytes) {
                // Whatever parses must also encode for every provider without panicking.
                for d in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini, Dialect::Bedrock] {
                    let _ = match d {
                        Dialect::OpenAi => wire::openai::request::encode(&req, "m", req.stream),
                        Dialect::Anthropic => wire::anthropic::request::encode(&req, "m", req.stream),
                        Dialect::Gemini => wire::gemini::request::encode(&req, "m", req.stream),
                        Dialect::Bedrock => wire::bedrock::request::encode(&req, &Default::default()).unwrap_or_default(),
                    };
                }
            }
        }
    }

    #[test]
    fn response_decoders_and_classifiers_take_any_json(v in json_value(), status in 100u16..600) {
        let bytes = serde_json::to_vec(&v).unwrap();
        for (_, a) in adapters() {
            if let Ok(resp) = a.decode_response(&bytes) {
                for front in wire::front::FRONTS {
                    let _ = wire::front::encode_response(front, &resp);
                }
            }
            let _ = a.classify_error(status, &http::HeaderMap::new(), &bytes);
        }
    }

    #[test]
    fn stream_decoders_take_any_frames(frames in prop::collection::vec((json_value(), prop::option::of(".{0,10}")), 0..12), split in 1usize..64) {
        let mut text = String::new();
        for (v, event) in &frames {
            if let Some(e) = event {
                text.push_str(&format!("event: {e}\n"));
            }
            text.push_str(&format!("data: {v}\n\n"));
        }
        let chunks: Vec<Vec<u8>> = text.as_bytes().chunks(split).map(<[u8]>::to_vec).collect();
        for (_, a) in adapters() {
            decode_stream(a.stream_decoder().as_mut(), &chunks);
        }
    }

    #[test]
    fn stream_decoders_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096), split in 1usize..512) {
        let chunks: Vec<Vec<u8>> = bytes.chunks(split).map(<[u8]>::to_vec).collect();
        for (_, a) in adapters() {
            decode_stream(a.stream_decoder().as_mut(), &chunks);
        }
    }
}

/// A peer that never sends a blank line cannot make the parser hold more than one frame.
#[test]
fn sse_memory_is_bounded() {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    let junk = vec![b'x'; 1 << 20];
    for _ in 0..40 {
        p.feed(b"data: ", &mut out);
        p.feed(&junk, &mut out);
    }
    assert!(out.iter().any(Result::is_err), "the oversized frame was reported");
    assert!(p.buffered() <= MAX_FRAME + junk.len(), "holds {} bytes", p.buffered());
    // And it recovers at the next blank line.
    out.clear();
    p.feed(b"\n\ndata: ok\n\n", &mut out);
    assert_eq!(out.last().and_then(|r| r.as_ref().ok()).map(|f| f.data.as_str()), Some("ok"));
}
