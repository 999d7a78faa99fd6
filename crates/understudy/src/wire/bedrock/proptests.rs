//! Arbitrary input never panics any Bedrock decoder.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use super::eventstream::{encode, HeaderValue as H};
use super::{embeddings, error, response, stream};
use crate::wire::StreamDecoder;

/// Arbitrary JSON, biased towards the keys Bedrock bodies use, so that the decoders see type
/// confusions (a string where an object goes, a huge index...) and not only parse errors.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("output".to_string()),
        Just("message".to_string()),
        Just("content".to_string()),
        Just("text".to_string()),
        Just("toolUse".to_string()),
        Just("toolUseId".to_string()),
        Just("input".to_string()),
        Just("image".to_string()),
        Just("source".to_string()),
        Just("bytes".to_string()),
        Just("stopReason".to_string()),
        Just("usage".to_string()),
        Just("totalTokens".to_string()),
        Just("outputTokens".to_string()),
        Just("contentBlockIndex".to_string()),
        Just("delta".to_string()),
        Just("start".to_string()),
        Just("embedding".to_string()),
        Just("embeddings".to_string()),
        Just("float".to_string()),
        Just("__type".to_string()),
        "[a-z]{1,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![Just("tool_use".to_string()), Just("ValidationException".to_string()), ".{0,12}"]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn run_stream(bytes: &[u8], split: usize) {
    let mut d = stream::Decoder::new();
    let mut out = Vec::new();
    let (a, b) = bytes.split_at(split.min(bytes.len()));
    d.feed(a, &mut out);
    d.feed(b, &mut out);
    d.finish(&mut out);
}

proptest! {
    #[test]
    fn bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), status in any::<u16>(), split in 0usize..512) {
        let _ = response::decode(&bytes);
        let _ = embeddings::decode(&bytes);
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            h.insert("x-amzn-errortype", v);
        }
        let _ = error::classify(status, &h, &bytes);
        let _ = error::classify_exception(&String::from_utf8_lossy(&bytes), &bytes);
        run_stream(&bytes, split);
    }

    #[test]
    fn json_never_panics(
        v in arb_json(),
        status in any::<u16>(),
        split in 0usize..256,
        kind in prop_oneof![
            Just("messageStart"), Just("contentBlockStart"), Just("contentBlockDelta"), Just("contentBlockStop"),
            Just("messageStop"), Just("metadata"), Just("other")
        ],
        message_type in prop_oneof![Just("event"), Just("exception"), Just("error"), Just("?")],
    ) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let _ = response::decode(&bytes);
        let _ = embeddings::decode(&bytes);
        let _ = error::classify(status, &HeaderMap::new(), &bytes);
        let frame = encode(
            &[
                (":message-type", H::String(message_type.into())),
                (":event-type", H::String(kind.into())),
                (":exception-type", H::String(kind.into())),
            ],
            &bytes,
        )
        .unwrap();
        run_stream(&frame, split);
    }
}
