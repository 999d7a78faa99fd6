//! InvokeModel for embeddings models: Amazon Titan (`{"inputText"}` -> `{"embedding",
//! "inputTextTokenCount"}`) and Cohere (`{"texts", "input_type"}` -> `{"embeddings": [[...]]}`).
//! Vectors are deterministic functions of the text, so tests can compare them.

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::errors::{aws_error, request_id};
use crate::http::{json_response, set_header, Resp};
use crate::parse::count_words;

const DEFAULT_DIMENSIONS: usize = 8;

/// The answer of embeddings model `model` (base name) to `body`.
pub(crate) fn embeddings(model: &str, body: &[u8], rid: u64) -> Resp {
    let invalid = |m: &str| aws_error(StatusCode::BAD_REQUEST, "ValidationException", m, rid);
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return invalid("Malformed input request, please reformat your input and try again.");
    };
    let base = model.split_once('.').filter(|(p, _)| !matches!(*p, "amazon" | "cohere")).map_or(model, |(_, r)| r);
    let mut resp = if base.starts_with("amazon.titan-embed") {
        titan(&req).unwrap_or_else(|m| invalid(&m))
    } else if base.starts_with("cohere.embed") {
        cohere(&req, rid).unwrap_or_else(|m| invalid(&m))
    } else {
        invalid(&format!("The provided model {model} does not support embeddings."))
    };
    set_header(&mut resp, "x-amzn-requestid", request_id(rid));
    resp
}

fn titan(req: &Map<String, Value>) -> Result<Resp, String> {
    if let Some(k) =
        req.keys().find(|k| !matches!(k.as_str(), "inputText" | "dimensions" | "normalize" | "embeddingTypes"))
    {
        return Err(format!("Malformed input request: extraneous key [{k}] is not permitted"));
    }
    let text = req
        .get("inputText")
        .and_then(Value::as_str)
        .ok_or("Malformed input request: required key [inputText] not found")?;
    let dims = dimensions(req.get("dimensions"))?;
    let body = json!({"embedding": vector(text, dims), "inputTextTokenCount": count_words(text).max(1)});
    Ok(json_response(StatusCode::OK, &body))
}

fn cohere(req: &Map<String, Value>, rid: u64) -> Result<Resp, String> {
    if let Some(k) = req.keys().find(|k| {
        !matches!(k.as_str(), "texts" | "input_type" | "truncate" | "embedding_types" | "output_dimension" | "images")
    }) {
        return Err(format!("Malformed input request: extraneous key [{k}] is not permitted"));
    }
    let texts: Vec<&str> = req
        .get("texts")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .ok_or("Malformed input request: required key [texts] not found")?;
    if texts.is_empty() || texts.len() > 96 {
        return Err(format!("texts must hold 1 to 96 items, not {}", texts.len()));
    }
    if req.get("input_type").and_then(Value::as_str).is_none() {
        return Err("Malformed input request: required key [input_type] not found".into());
    }
    let dims = dimensions(req.get("output_dimension"))?;
    let vectors: Vec<Vec<f64>> = texts.iter().map(|t| vector(t, dims)).collect();
    let body = json!({"id": format!("mock-{rid}"), "embeddings": vectors, "texts": texts, "response_type": "embeddings_floats"});
    Ok(json_response(StatusCode::OK, &body))
}

fn dimensions(v: Option<&Value>) -> Result<usize, String> {
    match v {
        None => Ok(DEFAULT_DIMENSIONS),
        Some(d) => {
            d.as_u64().filter(|d| (1..=4096).contains(d)).map(|d| d as usize).ok_or(format!("invalid dimensions {d}"))
        }
    }
}

/// A unit-length vector derived from the text's bytes.
fn vector(text: &str, dims: usize) -> Vec<f64> {
    let mut v = vec![0.0f64; dims];
    for (i, b) in text.bytes().enumerate() {
        if let Some(x) = v.get_mut(i % dims) {
            *x += f64::from(b) / 255.0;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
