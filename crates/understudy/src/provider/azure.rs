//! The `azure` provider kind: Azure OpenAI. The wire format is OpenAI's
//! ([`crate::wire::openai`], which already knows Azure's error shapes and its `choices: []` first
//! stream chunk); this adapter adds Azure's URLs and auth.
//!
//! * With `api_version` (classic): `{base}/openai/deployments/{deployment}/chat/completions?api-version=…`,
//!   the chain entry's `model` being the deployment name; `model` is left out of the body.
//! * Without (the v1 API): `{base}/openai/v1/chat/completions` with the deployment name as `model`.
//!
//! Auth: `api-key: <key>`; a key written `Bearer <token>` (a Microsoft Entra ID token) is sent as
//! `Authorization: Bearer <token>` instead. Configured `headers` come last and may override both.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::gemini::path_segment;
use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect, EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::Secret;
use crate::failure::{Failure, FailureClass};
use crate::wire::openai::{error, request, response, stream};
use crate::wire::StreamDecoder;

pub struct Azure;

impl Adapter for Azure {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAi
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body = request::encode(req, call.model, call.stream);
        if call.endpoint.cloud.api_version.is_some() {
            // The deployment in the URL chooses the model.
            body.shift_remove("model");
        }
        merge_params(&mut body, call.extra_params);
        Ok(UpstreamRequest {
            url: url(call.endpoint, Some(call.model), "chat/completions"),
            headers: headers(call.endpoint, call.api_key, true)?,
            body: to_body(&body),
        })
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Failure> {
        response::decode(body)
    }

    fn classify_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        error::classify(status, headers, body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::new())
    }

    /// `GET {base}/openai/models?api-version=…` (classic) or `{base}/openai/v1/models`.
    fn models_request(&self, endpoint: &Endpoint, api_key: &Secret) -> Option<Result<UpstreamRequest, Failure>> {
        Some(headers(endpoint, api_key, false).map(|headers| UpstreamRequest {
            url: url(endpoint, None, "models"),
            headers,
            body: Default::default(),
        }))
    }

    fn build_embeddings(&self, req: &EmbeddingsRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let classic = call.endpoint.cloud.api_version.is_some();
        let mut body = embeddings_body(req, call.model, classic);
        merge_params(&mut body, call.extra_params);
        Ok(UpstreamRequest {
            url: url(call.endpoint, Some(call.model), "embeddings"),
            headers: headers(call.endpoint, call.api_key, true)?,
            body: to_body(&body),
        })
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
        decode_embeddings(body)
    }
}

/// The resource endpoint without a trailing `/`, `/openai` or `/openai/v1` (all three spellings of
/// the base URL are accepted).
fn resource(base_url: &str) -> &str {
    let base = base_url.trim_end_matches('/');
    let base = base.strip_suffix("/openai/v1").or_else(|| base.strip_suffix("/openai")).unwrap_or(base);
    base.trim_end_matches('/')
}

/// A classic deployment URL when an `api-version` is configured (per deployment, or resource-wide
/// when `deployment` is `None`), else a v1 API URL.
fn url(endpoint: &Endpoint, deployment: Option<&str>, operation: &str) -> String {
    let base = resource(&endpoint.base_url);
    match (&endpoint.cloud.api_version, deployment) {
        (Some(version), Some(d)) => {
            format!("{base}/openai/deployments/{}/{operation}?api-version={}", path_segment(d), query_value(version))
        }
        (Some(version), None) => format!("{base}/openai/{operation}?api-version={}", query_value(version)),
        (None, _) => format!("{base}/openai/v1/{operation}"),
    }
}

/// Percent-encodes what would end a query value (`2024-10-21` and `preview` pass unchanged).
fn query_value(v: &str) -> String {
    path_segment(v).replace('&', "%26").replace('=', "%3D").replace('+', "%2B")
}

/// `api-key`, or `Authorization` for a key written `Bearer <token>`; then configured headers.
fn headers(endpoint: &Endpoint, key: &Secret, json: bool) -> Result<HeaderMap, Failure> {
    let mut h = HeaderMap::new();
    if json {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let key = key.expose().trim();
    if key.starts_with("Bearer ") {
        h.insert(AUTHORIZATION, secret_header(key)?);
    } else if !key.is_empty() {
        h.insert(HeaderName::from_static("api-key"), secret_header(key)?);
    }
    for (name, value) in &endpoint.headers {
        h.insert(name.clone(), value.clone());
    }
    Ok(h)
}

/// An OpenAI embeddings body: the caller's own (for fields the gateway does not model), with the
/// input, the dimensions and float encoding (the canonical answer holds floats) written over it.
fn embeddings_body(req: &EmbeddingsRequest, deployment: &str, classic: bool) -> Map<String, Value> {
    let mut body = req.native.clone().unwrap_or_default();
    let input: Vec<Value> = req
        .input
        .iter()
        .map(|i| match i {
            EmbeddingInput::Text(t) => Value::from(t.as_str()),
            EmbeddingInput::Tokens(t) => Value::from(t.clone()),
        })
        .collect();
    if classic {
        body.shift_remove("model");
    } else {
        body.insert("model".into(), deployment.into());
    }
    body.insert("input".into(), input.into());
    if let Some(d) = req.dimensions {
        body.insert("dimensions".into(), d.into());
    }
    body.insert("encoding_format".into(), "float".into());
    body
}

fn bad_embeddings(message: impl Into<String>) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed")
}

/// `{"data":[{"index","embedding"}],"model","usage":{"prompt_tokens"}}`, vectors put in input
/// order by `index`. An `embedding` may be a list of floats or base64 of little-endian `f32`s.
pub fn decode_embeddings(body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_embeddings(format!("unparsable embeddings: {e}")))?;
    let data = v.get("data").and_then(Value::as_array).ok_or_else(|| bad_embeddings("embeddings without `data`"))?;
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; data.len()];
    for (position, item) in data.iter().enumerate() {
        let index =
            item.get("index").and_then(Value::as_u64).map_or(position, |i| usize::try_from(i).unwrap_or(usize::MAX));
        let vector = vector_of(item.get("embedding"))?;
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            _ => return Err(bad_embeddings(format!("embedding index {index} is out of range or repeated"))),
        }
    }
    let vectors =
        slots.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| bad_embeddings("an embedding is missing"))?;
    Ok(EmbeddingsResponse {
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_string(),
        vectors,
        input_tokens: v.pointer("/usage/prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
    })
}

fn vector_of(v: Option<&Value>) -> Result<Vec<f32>, Failure> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| bad_embeddings("an embedding holds a non-number")))
            .collect(),
        Some(Value::String(b64)) => {
            let bytes = STANDARD.decode(b64).map_err(|_| bad_embeddings("an embedding is not valid base64"))?;
            if bytes.len() % 4 != 0 {
                return Err(bad_embeddings("a base64 embedding is not a whole number of floats"));
            }
            Ok(bytes.chunks_exact(4).map(|c| c.try_into().map(f32::from_le_bytes).unwrap_or_default()).collect())
        }
        _ => Err(bad_embeddings("an embedding is neither a list of numbers nor base64")),
    }
}

#[cfg(test)]
#[path = "azure_tests.rs"]
mod tests;
