//! OpenAI `POST /v1/embeddings`: `input` as a string, string[], int[] or int[][]; vectors as
//! float arrays, or base64 of little-endian `f32` with `encoding_format: "base64"`.

use http::StatusCode;
use serde_json::{json, Value};

use super::super::{EmbedParsed, Invalid};
use super::errors::with_request_id;
use super::json_error;
use crate::http::{json_response, Resp};
use crate::parse::count_words;
use crate::vectors::{base64_f32, vector, Seed, DEFAULT_DIMENSIONS, MAX_DIMENSIONS};

/// Most inputs per request.
const MAX_INPUTS: usize = 2048;

pub(crate) fn parse(body: &[u8]) -> Result<EmbedParsed, Invalid> {
    let req: Value = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let Value::Object(req) = req else {
        return Err(Invalid::new("Invalid request body: expected an object").code("invalid_type"));
    };
    let mut parsed = EmbedParsed {
        model: req.get("model").and_then(Value::as_str).map(str::to_string),
        base64: req.get("encoding_format").and_then(Value::as_str) == Some("base64"),
        ..EmbedParsed::default()
    };
    parsed.invalid = validate(&req, &mut parsed);
    Ok(parsed)
}

/// Fills in the inputs and dimensions, returning the first problem the real API would report.
fn validate(req: &serde_json::Map<String, Value>, p: &mut EmbedParsed) -> Option<Invalid> {
    if p.model.as_deref().is_none_or(str::is_empty) {
        return Some(Invalid::new("you must provide a model parameter"));
    }
    let input = match req.get("input") {
        None | Some(Value::Null) => {
            return Some(
                Invalid::new("Missing required parameter: 'input'.").param("input").code("missing_required_parameter"),
            )
        }
        Some(v) => v,
    };
    let invalid_input = || {
        Invalid::new(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        )
    };
    match input {
        Value::String(s) if !s.is_empty() => {
            p.seeds.push(Seed::text(s));
            p.prompt_words = count_words(s);
        }
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_INPUTS => {
            for item in items {
                match item {
                    Value::String(s) if !s.is_empty() => {
                        p.seeds.push(Seed::text(s));
                        p.prompt_words = p.prompt_words.saturating_add(count_words(s));
                    }
                    Value::Array(t) if !t.is_empty() => {
                        let Some(ids) = token_ids(t) else { return Some(invalid_input()) };
                        p.seeds.push(Seed::tokens(&ids));
                        p.prompt_words = p.prompt_words.saturating_add(u32::try_from(ids.len()).unwrap_or(u32::MAX));
                    }
                    // One tokenised input: the whole array is its token ids.
                    Value::Number(_) => {
                        let Some(ids) = token_ids(items) else { return Some(invalid_input()) };
                        p.seeds = vec![Seed::tokens(&ids)];
                        p.prompt_words = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                        break;
                    }
                    _ => return Some(invalid_input()),
                }
            }
        }
        _ => return Some(invalid_input()),
    }
    match req.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(d) => match d.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => p.dimensions = Some(d),
            _ => {
                return Some(
                    Invalid::new(format!("Invalid value for 'dimensions': expected 1 to {MAX_DIMENSIONS}."))
                        .param("dimensions")
                        .code("invalid_value"),
                )
            }
        },
    }
    match req.get("encoding_format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if f == "float" || f == "base64" => None,
        Some(_) => Some(
            Invalid::new("Invalid value for 'encoding_format': expected 'float' or 'base64'.")
                .param("encoding_format")
                .code("invalid_value"),
        ),
    }
}

fn token_ids(items: &[Value]) -> Option<Vec<u64>> {
    items.iter().map(Value::as_u64).collect()
}

pub(crate) fn answer(p: &EmbedParsed, base: &str, empty: bool, request_id: u64) -> Resp {
    let dims = p.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    let data: Vec<Value> = if empty {
        Vec::new()
    } else {
        p.seeds
            .iter()
            .enumerate()
            .map(|(i, seed)| {
                let v = vector(*seed, dims);
                let embedding = if p.base64 { json!(base64_f32(&v)) } else { json!(v) };
                json!({"object": "embedding", "index": i, "embedding": embedding})
            })
            .collect()
    };
    let tokens = p.prompt_words.max(u32::try_from(p.seeds.len()).unwrap_or(u32::MAX));
    let body = json!({"object": "list", "data": data, "model": base,
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    with_request_id(json_response(StatusCode::OK, &body), request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_of(body: &str) -> Option<Invalid> {
        parse(body.as_bytes()).unwrap().invalid
    }

    #[test]
    fn every_input_form() {
        let p = parse(br#"{"model":"e","input":"hello world"}"#).unwrap();
        assert_eq!((p.seeds.len(), p.prompt_words, p.invalid), (1, 2, None));
        let p = parse(br#"{"model":"e","input":["a","b"],"dimensions":4,"encoding_format":"base64"}"#).unwrap();
        assert_eq!((p.seeds.len(), p.dimensions, p.base64), (2, Some(4), true));
        assert_eq!(parse(br#"{"model":"e","input":[1,2,3]}"#).unwrap().seeds.len(), 1);
        assert_eq!(parse(br#"{"model":"e","input":[[1],[2,3]]}"#).unwrap().seeds.len(), 2);
    }

    #[test]
    fn validation_messages() {
        let cases = [
            (r#"{"input":"x"}"#, "you must provide a model parameter"),
            (r#"{"model":"e"}"#, "Missing required parameter: 'input'."),
            (r#"{"model":"e","input":""}"#, "'$.input' is invalid"),
            (r#"{"model":"e","input":[]}"#, "'$.input' is invalid"),
            (r#"{"model":"e","input":[{"a":1}]}"#, "'$.input' is invalid"),
            (r#"{"model":"e","input":[[-1]]}"#, "'$.input' is invalid"),
            (r#"{"model":"e","input":"x","dimensions":0}"#, "'dimensions'"),
            (r#"{"model":"e","input":"x","encoding_format":"hex"}"#, "'encoding_format'"),
        ];
        for (body, want) in cases {
            let got = invalid_of(body).map(|i| i.message).unwrap_or_default();
            assert!(got.contains(want), "{body}: {got}");
        }
        assert!(parse(b"{").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes);
        }
    }
}
