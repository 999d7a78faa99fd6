//! Azure OpenAI: the OpenAI wire format under Azure's paths
//! (`/openai/deployments/{deployment}/chat/completions?api-version=…`, `/openai/v1/chat/completions`,
//! and `embeddings` under both), with Azure's auth (`api-key`, or an Entra `Authorization: Bearer`
//! token) and Azure's error bodies: `{"error":{"code":"429","message":"… retry after N seconds …"}}`
//! with `retry-after` / `retry-after-ms`, the 400 `content_filter` with `innererror`, the 404
//! `DeploymentNotFound`. Answers carry content-filter annotations, and a stream starts with
//! Azure's `choices: []` chunk (see `openai::answer_azure`).

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::HeaderMap;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AuthFailure, ErrorSpec, Invalid};
use crate::fault::ErrorKind;
use crate::http::{json_response, retry_after_secs, set_header, Resp};

const ACCESS_DENIED: &str =
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a \
                             valid key for an active subscription and use a correct regional API endpoint for your \
                             resource.";

/// The key from `api-key`, else a bearer token.
pub(crate) fn check_auth<'h>(
    headers: &'h HeaderMap,
    keys: &[String],
) -> (Option<Cow<'h, str>>, Result<(), AuthFailure>) {
    let key = headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| super::openai::api_key(headers))
        .map(Cow::Borrowed);
    let verdict = match key.as_deref() {
        None | Some("") => Err(AuthFailure::Missing),
        Some(k) if !keys.is_empty() && !keys.iter().any(|x| x == k) => Err(AuthFailure::Invalid),
        Some(_) => Ok(()),
    };
    (key, verdict)
}

fn azure_error(status: StatusCode, code: &str, message: &str, request_id: u64) -> Resp {
    let mut resp = json_response(status, &json!({"error": {"code": code, "message": message}}));
    set_header(&mut resp, "apim-request-id", format!("00000000-0000-0000-0000-{request_id:012x}"));
    resp
}

pub(crate) fn auth_error(_failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    azure_error(StatusCode::UNAUTHORIZED, "401", ACCESS_DENIED, spec.request_id)
}

/// A classic path without `api-version`.
pub(crate) fn missing_api_version() -> Resp {
    json_response(StatusCode::NOT_FOUND, &json!({"error": {"code": "404", "message": "Resource not found"}}))
}

pub(crate) fn invalid(inv: &Invalid, request_id: u64) -> Resp {
    super::openai::invalid(inv, request_id)
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    let Some(kind) = spec.kind else {
        let status =
            spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = status.as_u16().to_string();
        return azure_error(status, &code, &format!("Mock upstream error: HTTP {status}"), rid);
    };
    match kind {
        ErrorKind::InvalidKey => azure_error(StatusCode::UNAUTHORIZED, "401", ACCESS_DENIED, rid),
        ErrorKind::AccountDeactivated | ErrorKind::Forbidden => azure_error(
            StatusCode::FORBIDDEN,
            "PermissionDenied",
            "Principal does not have access to API/Operation.",
            rid,
        ),
        ErrorKind::ModelNotFound => azure_error(
            StatusCode::NOT_FOUND,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the deployment within the last 5 \
             minutes, please wait a moment and try again.",
            rid,
        ),
        ErrorKind::ContentPolicy => content_filter(rid),
        ErrorKind::RateLimit => rate_limit(spec, spec.retry_after.and_then(retry_after_secs).unwrap_or(1.0)),
        // Azure's daily quota: a 429 whose retry hint is a whole day.
        ErrorKind::QuotaExhausted => rate_limit(spec, 86_400.0),
        ErrorKind::Server => azure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The server had an error while processing your request. Sorry about that!",
            rid,
        ),
        ErrorKind::Unavailable | ErrorKind::Overloaded => azure_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unable to process your request. Please try again later.",
            rid,
        ),
        // Context overflow, bad requests and the front end's 502/504 look as on OpenAI.
        ErrorKind::ContextLength | ErrorKind::BadRequest | ErrorKind::BadGateway | ErrorKind::Timeout => {
            super::openai::error(spec)
        }
    }
}

/// The prompt-filter refusal: `code: content_filter`, `type: null`, `innererror`.
fn content_filter(rid: u64) -> Resp {
    let safe = json!({"filtered": false, "severity": "safe"});
    let body = json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. \
                    Please modify your prompt and retry. To learn more about our content filtering policies please \
                    read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": safe, "jailbreak": {"filtered": true, "detected": true}, "self_harm": safe,
            "sexual": safe, "violence": safe}}}});
    let mut resp = json_response(StatusCode::BAD_REQUEST, &body);
    set_header(&mut resp, "apim-request-id", format!("00000000-0000-0000-0000-{rid:012x}"));
    resp
}

/// 429 with `code: "429"` (a string), "retry after N seconds", and both retry headers.
fn rate_limit(spec: &ErrorSpec<'_>, secs: f64) -> Resp {
    let whole = secs.ceil().max(0.0) as u64;
    let message = format!(
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded \
         token rate limit of your current OpenAI S0 pricing tier. Please retry after {whole} seconds. Please go \
         here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
    );
    let mut resp = azure_error(StatusCode::TOO_MANY_REQUESTS, "429", &message, spec.request_id);
    set_header(&mut resp, "retry-after", whole.to_string());
    set_header(&mut resp, "retry-after-ms", format!("{}", (secs * 1000.0).round() as u64));
    set_header(&mut resp, "x-ratelimit-remaining-requests", "0".into());
    resp
}

// ---------------------------------------------------------------------------------------------
// Embeddings

#[derive(Deserialize)]
pub(crate) struct EmbeddingsRequest {
    pub model: Option<String>,
    input: Option<Value>,
    dimensions: Option<u32>,
    encoding_format: Option<String>,
}

/// Parses an embeddings body; `Err` is the 400 the real API gives.
pub(crate) fn parse_embeddings(body: &[u8]) -> Result<EmbeddingsRequest, Invalid> {
    let req: EmbeddingsRequest =
        serde_json::from_slice(body).map_err(|e| Invalid::new(format!("Invalid request body: {e}")))?;
    let ok_input = match &req.input {
        Some(Value::String(_)) => true,
        Some(Value::Array(items)) => {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.is_string() || i.is_u64() || i.as_array().is_some_and(|t| t.iter().all(Value::is_u64)))
        }
        _ => false,
    };
    if !ok_input {
        return Err(Invalid::new("'input' is a required property and must be a string or an array").param("input"));
    }
    if matches!(req.encoding_format.as_deref(), Some(f) if f != "float" && f != "base64") {
        return Err(Invalid::new("'encoding_format' must be 'float' or 'base64'").param("encoding_format"));
    }
    Ok(req)
}

/// One deterministic vector per input (from the input's bytes), `dimensions` long (default 8).
pub(crate) fn embeddings_answer(req: &EmbeddingsRequest, model: &str) -> Resp {
    let inputs: Vec<String> = match &req.input {
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => vec![Value::Array(items.clone()).to_string()],
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect()
        }
        Some(other) => vec![other.as_str().map_or_else(|| other.to_string(), str::to_string)],
        None => Vec::new(),
    };
    let dims = req.dimensions.unwrap_or(8).clamp(1, 4096) as usize;
    let base64 = req.encoding_format.as_deref() == Some("base64");
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += text.split_whitespace().count().max(1) as u64;
            let vector = vector_for(text, dims);
            let embedding = if base64 {
                Value::from(STANDARD.encode(vector.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>()))
            } else {
                Value::from(vector.iter().map(|f| f64::from(*f)).collect::<Vec<f64>>())
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// Values in [-1, 1) from a simple hash of the text, exactly representable as f32.
fn vector_for(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|i| {
            let x = h.rotate_left((i % 64) as u32) ^ (i as u64);
            f32::from((x % 256) as u8) / 128.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_inputs() {
        assert!(parse_embeddings(br#"{"input":"a"}"#).is_ok());
        assert!(parse_embeddings(br#"{"input":["a","b"]}"#).is_ok());
        assert!(parse_embeddings(br#"{"input":[[1,2],[3]]}"#).is_ok());
        assert!(parse_embeddings(br#"{"input":[]}"#).is_err());
        assert!(parse_embeddings(br#"{"model":"m"}"#).is_err());
        assert!(parse_embeddings(br#"{"input":"a","encoding_format":"int8"}"#).is_err());
        assert_eq!(vector_for("a", 4), vector_for("a", 4));
        assert_ne!(vector_for("a", 4), vector_for("b", 4));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            if let Ok(req) = parse_embeddings(&bytes) {
                let _ = embeddings_answer(&req, "m");
            }
        }
    }
}
