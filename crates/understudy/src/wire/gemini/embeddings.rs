//! Gemini `models/{model}:batchEmbedContents`: one `EmbedContentRequest` per input,
//! `{"embeddings": [{"values": [...]}]}` back in the same order.

use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::error::classify_value;
use crate::canonical::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::failure::{Failure, FailureClass};

/// Most requests in one batch; the API refuses more ("at most 100 requests can be in one batch").
pub const MAX_BATCH: usize = 100;

/// The batch body. `params` (a chain entry's provider-native fields, e.g. `taskType`) go into
/// every request of the batch, where Gemini reads them. Token-id inputs and batches over
/// [`MAX_BATCH`] are refused as `deployment_invalid`, so that a route fails over to a provider
/// that can take them.
pub fn encode(
    req: &EmbeddingsRequest,
    model: &str,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, Failure> {
    if req.input.len() > MAX_BATCH {
        let msg = format!("Gemini embeds at most {MAX_BATCH} inputs per request, not {}", req.input.len());
        return Err(Failure::new(FailureClass::DeploymentInvalid, msg).detail("too_many_inputs"));
    }
    let model = format!("models/{}", model.strip_prefix("models/").unwrap_or(model));
    let requests = req
        .input
        .iter()
        .map(|input| {
            let EmbeddingInput::Text(text) = input else {
                let msg = "Gemini embeds text only, not token ids";
                return Err(Failure::new(FailureClass::DeploymentInvalid, msg).detail("tokens_input"));
            };
            let mut r = Map::new();
            r.insert("model".into(), Value::String(model.clone()));
            r.insert("content".into(), json!({"parts": [{"text": text}]}));
            if let Some(d) = req.dimensions {
                r.insert("outputDimensionality".into(), json!(d));
            }
            crate::provider::merge_params(&mut r, params);
            Ok(Value::Object(r))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let mut body = Map::new();
    body.insert("requests".into(), Value::Array(requests));
    Ok(body)
}

/// Reads a 2xx answer. Gemini names no model and may report no usage: the caller fills those in.
pub fn decode(body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(malformed("body is not a BatchEmbedContentsResponse object".into()));
    };
    if obj.contains_key("error") && !obj.contains_key("embeddings") {
        return Err(classify_value(200, &HeaderMap::new(), &Value::Object(obj)));
    }
    let items =
        obj.get("embeddings").and_then(Value::as_array).ok_or_else(|| malformed("no `embeddings` array".into()))?;
    let vectors = items
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let values = e.get("values").and_then(Value::as_array);
            values
                .and_then(|v| v.iter().map(|x| x.as_f64().map(|f| f as f32)).collect::<Option<Vec<f32>>>())
                .ok_or_else(|| malformed(format!("embeddings[{i}].values is not a list of numbers")))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let tokens = obj.get("usageMetadata").and_then(|u| u.get("promptTokenCount")).and_then(Value::as_u64);
    Ok(EmbeddingsResponse { model: String::new(), vectors, input_tokens: tokens.unwrap_or(0) })
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(input: Vec<EmbeddingInput>, dimensions: Option<u32>) -> EmbeddingsRequest {
        EmbeddingsRequest { model: "route".into(), input, dimensions, native: None }
    }

    #[test]
    fn one_request_per_input_with_the_resource_name() {
        let mut params = Map::new();
        params.insert("taskType".into(), json!("RETRIEVAL_DOCUMENT"));
        let r = req(vec![EmbeddingInput::Text("a".into()), EmbeddingInput::Text("b c".into())], Some(8));
        let body = encode(&r, "gemini-embedding-001", &params).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
                 "outputDimensionality": 8, "taskType": "RETRIEVAL_DOCUMENT"},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b c"}]},
                 "outputDimensionality": 8, "taskType": "RETRIEVAL_DOCUMENT"}]})
        );
        let body = encode(&req(vec![EmbeddingInput::Text("a".into())], None), "models/m", &Map::new()).unwrap();
        assert_eq!(body["requests"][0]["model"], "models/m");
        assert!(body["requests"][0].get("outputDimensionality").is_none());
    }

    #[test]
    fn tokens_and_oversized_batches_are_deployment_failures() {
        let tokens = req(vec![EmbeddingInput::Tokens(vec![1, 2])], None);
        let f = encode(&tokens, "m", &Map::new()).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("tokens_input")));
        let many = req(vec![EmbeddingInput::Text("x".into()); MAX_BATCH + 1], None);
        let f = encode(&many, "m", &Map::new()).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("too_many_inputs")));
    }

    #[test]
    fn decodes_values_in_order() {
        let r = decode(br#"{"embeddings":[{"values":[0.5,-1]},{"values":[2]}]}"#).unwrap();
        assert_eq!(r.vectors, vec![vec![0.5, -1.0], vec![2.0]]);
        assert_eq!(r.input_tokens, 0);
        assert!(r.model.is_empty());
        let r = decode(br#"{"embeddings":[{"values":[1]}],"usageMetadata":{"promptTokenCount":7}}"#).unwrap();
        assert_eq!(r.input_tokens, 7);
        for bad in [&b"x"[..], b"[]", br#"{"embeddings":{}}"#, br#"{"embeddings":[{"values":["a"]}]}"#, br#"{}"#] {
            assert_eq!(decode(bad).unwrap_err().class, FailureClass::InvalidResponse);
        }
        let f = decode(br#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#).unwrap_err();
        assert_eq!(f.class, FailureClass::Overloaded);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(&bytes);
        }
    }
}
