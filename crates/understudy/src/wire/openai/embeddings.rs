//! OpenAI Embeddings (`POST /v1/embeddings`), both directions:
//! * front: [`decode`] reads a caller's request, [`encode_response`] writes the answer (float
//!   arrays, or base64 strings of little-endian `f32` bytes when the caller asks for them; the
//!   official SDKs ask for base64 by default);
//! * provider: [`encode`] writes a request for an OpenAI-compatible server, [`decode_response`]
//!   reads its answer.

use serde_json::{json, Map, Value};

use super::error;
use super::request::{invalid_type, missing};
use crate::canonical::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::failure::{Failure, FailureClass};
use crate::wire::BadRequest;

/// Most inputs in one request (OpenAI's documented limit).
pub const MAX_INPUTS: usize = 2048;

/// How the caller wants its vectors written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Float,
    /// Base64 of the little-endian `f32` bytes.
    Base64,
}

/// A decoded front request: the canonical request, plus what only the response encoder needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontRequest {
    pub request: EmbeddingsRequest,
    pub encoding: Encoding,
}

/// Decodes and validates a `POST /v1/embeddings` body, naming the offending field in
/// [`BadRequest::param`] (`input[3]`). The body is kept in `native` for same-dialect passthrough.
pub fn decode(body: &[u8]) -> Result<FrontRequest, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        BadRequest::new(format!(
            "We could not parse the JSON body of your request ({e}). The OpenAI API expects a JSON payload."
        ))
    })?;
    let Value::Object(body) = value else {
        return Err(BadRequest::new("The request body must be a JSON object."));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => return Err(missing("model")),
        Some(other) => return Err(invalid_type("model", "a string", other)),
    };
    let input = decode_input(body.get("input"))?;
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64().and_then(|d| u32::try_from(d).ok()) {
            Some(d) if d >= 1 => Some(d),
            _ => {
                return Err(BadRequest::new(format!(
                    "Invalid 'dimensions': expected an integer of at least 1, but got {n} instead."
                ))
                .param("dimensions"))
            }
        },
        Some(other) => return Err(invalid_type("dimensions", "an integer", other)),
    };
    let encoding = match body.get("encoding_format") {
        None | Some(Value::Null) => Encoding::Float,
        Some(Value::String(s)) if s == "float" => Encoding::Float,
        Some(Value::String(s)) if s == "base64" => Encoding::Base64,
        Some(Value::String(s)) => {
            return Err(BadRequest::new(format!("Invalid value: '{s}'. Supported values are: 'float' and 'base64'."))
                .param("encoding_format"))
        }
        Some(other) => return Err(invalid_type("encoding_format", "a string", other)),
    };
    match body.get("user") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(other) => return Err(invalid_type("user", "a string", other)),
    }
    let request = EmbeddingsRequest { model, input, dimensions, native: Some(body) };
    Ok(FrontRequest { request, encoding })
}

const INPUT_TYPES: &str = "a string, an array of strings, an array of integers or an array of integer arrays";

/// `input`: a string, string[], int[] (one tokenised input) or int[][].
fn decode_input(v: Option<&Value>) -> Result<Vec<EmbeddingInput>, BadRequest> {
    let items = match v {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::String(s)) => return Ok(vec![text(s, "input")?]),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid_type("input", INPUT_TYPES, other)),
    };
    if items.is_empty() {
        return Err(BadRequest::new("Invalid 'input': empty array. Expected at least one input.").param("input"));
    }
    if items.len() > MAX_INPUTS {
        return Err(BadRequest::new(format!(
            "Invalid 'input': array too long. Expected an array with maximum length {MAX_INPUTS}, but got an array \
             with length {} instead.",
            items.len()
        ))
        .param("input"));
    }
    // The first item decides which of the array forms this is.
    match items.first() {
        Some(Value::Number(_)) => Ok(vec![EmbeddingInput::Tokens(tokens(items, "input")?)]),
        Some(Value::Array(_)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = format!("input[{i}]");
                match item {
                    Value::Array(t) if !t.is_empty() => Ok(EmbeddingInput::Tokens(tokens(t, &p)?)),
                    Value::Array(_) => Err(BadRequest::new(format!("Invalid '{p}': empty token array.")).param(p)),
                    other => Err(invalid_type(&p, "an array of integers", other)),
                }
            })
            .collect(),
        _ => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = format!("input[{i}]");
                match item {
                    Value::String(s) => text(s, &p),
                    other => Err(invalid_type(&p, "a string", other)),
                }
            })
            .collect(),
    }
}

fn text(s: &str, param: &str) -> Result<EmbeddingInput, BadRequest> {
    if s.is_empty() {
        return Err(BadRequest::new(format!("Invalid '{param}': the input must not be an empty string.")).param(param));
    }
    Ok(EmbeddingInput::Text(s.to_string()))
}

fn tokens(items: &[Value], param: &str) -> Result<Vec<u32>, BadRequest> {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                let p = format!("{param}[{i}]");
                BadRequest::new(format!("Invalid '{p}': expected a token id (a non-negative integer).")).param(p)
            })
        })
        .collect()
}

/// The answer in OpenAI's shape, with the answering deployment's model and usage.
pub fn encode_response(resp: &EmbeddingsResponse, encoding: Encoding) -> Value {
    let data: Vec<Value> = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = match encoding {
                Encoding::Float => json!(v),
                Encoding::Base64 => Value::String(b64::encode_f32(v)),
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": resp.model,
        "usage": {"prompt_tokens": resp.input_tokens, "total_tokens": resp.input_tokens},
    })
}

/// The body for an OpenAI-compatible provider. A caller of the OpenAI front gets its own body
/// through with only `model` replaced (unknown fields such as `user` or vendor extras survive);
/// vectors are always asked for as floats, whatever the caller wants back.
pub fn encode(req: &EmbeddingsRequest, model: &str) -> Result<Map<String, Value>, Failure> {
    let mut body = match &req.native {
        Some(native) => native.clone(),
        None => {
            let mut b = Map::new();
            b.insert("input".into(), canonical_input(&req.input)?);
            if let Some(d) = req.dimensions {
                b.insert("dimensions".into(), json!(d));
            }
            b
        }
    };
    body.insert("model".into(), Value::String(model.to_string()));
    body.remove("encoding_format");
    Ok(body)
}

/// Inputs written as OpenAI takes them: all text, or all tokens.
fn canonical_input(input: &[EmbeddingInput]) -> Result<Value, Failure> {
    let texts: Option<Vec<&str>> = input
        .iter()
        .map(|i| match i {
            EmbeddingInput::Text(t) => Some(t.as_str()),
            EmbeddingInput::Tokens(_) => None,
        })
        .collect();
    if let Some(t) = texts {
        return Ok(json!(t));
    }
    let tokens: Option<Vec<&Vec<u32>>> = input
        .iter()
        .map(|i| match i {
            EmbeddingInput::Tokens(t) => Some(t),
            EmbeddingInput::Text(_) => None,
        })
        .collect();
    tokens.map(|t| json!(t)).ok_or_else(|| {
        Failure::new(FailureClass::InvalidRequest, "an embeddings request cannot mix text and token inputs")
            .detail("mixed_input")
    })
}

/// Reads a provider's 2xx answer: vectors put back in input order by `index`, as float arrays or
/// base64 strings.
pub fn decode_response(body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    let obj = value.as_object().ok_or_else(|| malformed("body is not a JSON object".into()))?;
    if obj.get("error").is_some_and(|e| !e.is_null()) && obj.get("data").is_none() {
        return Err(error::classify_value(200, &http::HeaderMap::new(), &value));
    }
    let data = obj.get("data").and_then(Value::as_array).ok_or_else(|| malformed("body has no data array".into()))?;
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; data.len()];
    for (pos, item) in data.iter().enumerate() {
        let index = match item.get("index") {
            None | Some(Value::Null) => pos,
            Some(i) => i
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| malformed(format!("data[{pos}].index is not an index")))?,
        };
        let vector = match item.get("embedding") {
            Some(Value::Array(v)) => {
                floats(v).ok_or_else(|| malformed(format!("data[{pos}].embedding has non-numbers")))?
            }
            Some(Value::String(s)) => {
                b64::decode_f32(s).ok_or_else(|| malformed(format!("data[{pos}].embedding is not base64 floats")))?
            }
            _ => return Err(malformed(format!("data[{pos}] has no embedding"))),
        };
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            _ => return Err(malformed(format!("data[{pos}].index {index} is out of range or repeated"))),
        }
    }
    let usage = obj.get("usage");
    let tokens = usage.and_then(|u| u.get("prompt_tokens").or_else(|| u.get("total_tokens"))).and_then(Value::as_u64);
    Ok(EmbeddingsResponse {
        model: obj.get("model").and_then(Value::as_str).unwrap_or_default().to_string(),
        // Every slot is filled: as many distinct indices in range as there are items.
        vectors: slots.into_iter().flatten().collect(),
        input_tokens: tokens.unwrap_or(0),
    })
}

fn floats(v: &[Value]) -> Option<Vec<f32>> {
    v.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body").status(200)
}

/// Standard base64 (RFC 4648, with padding) of `f32` vectors, little-endian as OpenAI writes them.
mod b64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode_f32(v: &[f32]) -> String {
        let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        encode(&bytes)
    }

    pub fn decode_f32(s: &str) -> Option<Vec<f32>> {
        let bytes = decode(s)?;
        if bytes.len() % 4 != 0 {
            return None;
        }
        Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let s = s.trim_end_matches('=');
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            let v = ALPHABET.iter().position(|a| *a == c)?;
            acc = (acc << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bad(body: &str) -> BadRequest {
        decode(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn decodes_every_input_form() {
        let one = decode(br#"{"model":"e","input":"hello"}"#).unwrap();
        assert_eq!(one.request.input, vec![EmbeddingInput::Text("hello".into())]);
        assert_eq!(one.encoding, Encoding::Float);
        let many = decode(br#"{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":8}"#).unwrap();
        assert_eq!(many.request.input.len(), 2);
        assert_eq!(many.request.dimensions, Some(8));
        assert_eq!(many.encoding, Encoding::Base64);
        let toks = decode(br#"{"model":"e","input":[1,2,3]}"#).unwrap();
        assert_eq!(toks.request.input, vec![EmbeddingInput::Tokens(vec![1, 2, 3])]);
        let nested = decode(br#"{"model":"e","input":[[1],[2,3]],"user":"u1","x_extra":true}"#).unwrap();
        assert_eq!(nested.request.input, vec![EmbeddingInput::Tokens(vec![1]), EmbeddingInput::Tokens(vec![2, 3])]);
        let native = nested.request.native.unwrap();
        assert_eq!(native["user"], "u1");
        assert_eq!(native["x_extra"], true);
    }

    #[test]
    fn validation_names_the_param() {
        let cases = [
            (r#"{"input":"x"}"#, "model"),
            (r#"{"model":"e"}"#, "input"),
            (r#"{"model":"e","input":5}"#, "input"),
            (r#"{"model":"e","input":""}"#, "input"),
            (r#"{"model":"e","input":[]}"#, "input"),
            (r#"{"model":"e","input":["a",""]}"#, "input[1]"),
            (r#"{"model":"e","input":["a",3]}"#, "input[1]"),
            (r#"{"model":"e","input":[1,-2]}"#, "input[1]"),
            (r#"{"model":"e","input":[[1],[]]}"#, "input[1]"),
            (r#"{"model":"e","input":[[1],[2,"x"]]}"#, "input[1][1]"),
            (r#"{"model":"e","input":[[1],"x"]}"#, "input[1]"),
            (r#"{"model":"e","input":"x","dimensions":0}"#, "dimensions"),
            (r#"{"model":"e","input":"x","dimensions":"8"}"#, "dimensions"),
            (r#"{"model":"e","input":"x","encoding_format":"int8"}"#, "encoding_format"),
            (r#"{"model":"e","input":"x","user":5}"#, "user"),
        ];
        for (body, param) in cases {
            assert_eq!(bad(body).param.as_deref(), Some(param), "{body}");
        }
        assert!(bad("{").message.contains("could not parse the JSON body"));
        assert!(bad("[]").param.is_none());
        let many = format!(r#"{{"model":"e","input":[{}]}}"#, vec!["\"a\""; MAX_INPUTS + 1].join(","));
        assert!(bad(&many).message.contains("maximum length 2048"));
    }

    #[test]
    fn encodes_floats_and_little_endian_base64() {
        let resp =
            EmbeddingsResponse { model: "m".into(), vectors: vec![vec![1.0, -0.5], vec![0.25]], input_tokens: 3 };
        let v = encode_response(&resp, Encoding::Float);
        assert_eq!(
            v,
            json!({"object":"list","data":[
                {"object":"embedding","index":0,"embedding":[1.0,-0.5]},
                {"object":"embedding","index":1,"embedding":[0.25]}],
                "model":"m","usage":{"prompt_tokens":3,"total_tokens":3}})
        );
        let v = encode_response(&resp, Encoding::Base64);
        // 1.0f32 = 00 00 80 3F, -0.5f32 = 00 00 00 BF (little-endian).
        assert_eq!(v["data"][0]["embedding"], "AACAPwAAAL8=");
        assert_eq!(v["data"][1]["embedding"], "AACAPg==");
    }

    #[test]
    fn provider_body_passes_unknown_fields_through() {
        let front = decode(br#"{"model":"route","input":["a"],"encoding_format":"base64","user":"u","x":1}"#).unwrap();
        let body = encode(&front.request, "text-embedding-3-small").unwrap();
        assert_eq!(body["model"], "text-embedding-3-small");
        assert_eq!(body["user"], "u");
        assert_eq!(body["x"], 1);
        assert!(!body.contains_key("encoding_format"), "floats are always asked for");
        let plain = EmbeddingsRequest {
            model: "r".into(),
            input: vec![EmbeddingInput::Tokens(vec![1, 2])],
            dimensions: Some(4),
            native: None,
        };
        assert_eq!(Value::Object(encode(&plain, "m").unwrap()), json!({"model":"m","input":[[1,2]],"dimensions":4}));
        let mixed = EmbeddingsRequest {
            input: vec![EmbeddingInput::Text("a".into()), EmbeddingInput::Tokens(vec![1])],
            ..plain
        };
        assert_eq!(encode(&mixed, "m").unwrap_err().class, FailureClass::InvalidRequest);
    }

    #[test]
    fn decodes_answers_in_index_order() {
        let r = decode_response(
            br#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":"AACAPg=="},
                {"object":"embedding","index":0,"embedding":[0.5,1]}],"model":"text-embedding-3-small",
                "usage":{"prompt_tokens":4,"total_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!(r.vectors, vec![vec![0.5, 1.0], vec![0.25]]);
        assert_eq!(r.model, "text-embedding-3-small");
        assert_eq!(r.input_tokens, 4);
        for body in [
            &b"nope"[..],
            br#"{"data":{}}"#,
            br#"{"data":[{"index":0}]}"#,
            br#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#,
            br#"{"data":[{"index":5,"embedding":[1]}]}"#,
            br#"{"data":[{"embedding":["x"]}]}"#,
            br#"{"data":[{"embedding":"!!"}]}"#,
        ] {
            let f = decode_response(body).unwrap_err();
            assert_eq!(f.class, FailureClass::InvalidResponse, "{}", String::from_utf8_lossy(body));
        }
        let f = decode_response(br#"{"error":{"message":"overloaded","type":"server_error"}}"#).unwrap_err();
        assert_ne!(f.class, FailureClass::InvalidRequest);
    }

    proptest! {
        #[test]
        fn base64_round_trips(v in proptest::collection::vec(proptest::num::f32::NORMAL, 0..64)) {
            prop_assert_eq!(b64::decode_f32(&b64::encode_f32(&v)), Some(v));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(&bytes);
            let _ = decode_response(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) {
                let _ = b64::decode_f32(s);
            }
        }
    }
}
