//! Arbitrary input never panics any Gemini decoder.

use http::HeaderMap;
use proptest::prelude::*;
use serde_json::Value;

use super::{error, response, stream};
use crate::wire::StreamDecoder;

/// Arbitrary JSON, biased towards the keys Gemini bodies use, so that the decoders see type
/// confusions (a string where an object goes, a huge index...) and not only parse errors.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("candidates".to_string()),
        Just("content".to_string()),
        Just("parts".to_string()),
        Just("text".to_string()),
        Just("functionCall".to_string()),
        Just("args".to_string()),
        Just("finishReason".to_string()),
        Just("index".to_string()),
        Just("usageMetadata".to_string()),
        Just("promptFeedback".to_string()),
        Just("blockReason".to_string()),
        Just("error".to_string()),
        Just("code".to_string()),
        Just("details".to_string()),
        Just("@type".to_string()),
        Just("retryDelay".to_string()),
        Just("violations".to_string()),
        Just("thought".to_string()),
        "[a-z]{1,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("STOP".to_string()),
            Just("type.googleapis.com/google.rpc.RetryInfo".to_string()),
            Just("99999999999h".to_string()),
            ".{0,12}"
        ]
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
        let _ = error::classify(status, &HeaderMap::new(), &bytes);
        run_stream(&bytes, split);
    }

    #[test]
    fn json_never_panics(v in arb_json(), status in any::<u16>(), split in 0usize..256) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let _ = response::decode(&bytes);
        let _ = error::classify(status, &HeaderMap::new(), &bytes);
        let _ = error::classify_value(status, &HeaderMap::new(), &v);
        let mut frame = b"data: ".to_vec();
        frame.extend_from_slice(&bytes);
        frame.extend_from_slice(b"\n\n");
        run_stream(&frame, split);
    }
}
