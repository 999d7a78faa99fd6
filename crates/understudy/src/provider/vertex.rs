//! The `vertex` provider kind: Google Vertex AI, serving Gemini models (Gemini's wire format,
//! [`crate::wire::gemini`]) and Anthropic's Claude models (the Messages format,
//! [`crate::wire::anthropic`], with `model` in the URL and `anthropic_version` in the body).
//!
//! `POST {host}/v1/projects/{project}/locations/{location}/publishers/{google|anthropic}/models/
//! {model}:{method}` with `Authorization: Bearer <access token>`. The token is the configured
//! `api_key` (a ready token) or comes from the endpoint's token source (a service-account key
//! file, see [`super::google_auth`]); either way it arrives here as `Call::api_key`.
//!
//! Errors come in Google's shape (auth, quota: `{"error":{"code","message","status"}}`) and, for
//! Claude models, in Anthropic's shape (model errors such as `overloaded_error`): both are
//! classified.

use std::sync::Arc;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::gemini::path_segment;
use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect};
use crate::config::Secret;
use crate::failure::{Failure, FailureClass};
use crate::wire::{anthropic, gemini, StreamDecoder};

/// The `anthropic_version` Vertex expects in Claude request bodies.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The API host for a location: regional, `global`, or the `us` / `eu` multi-regions.
pub fn host(location: &str) -> String {
    match location {
        "" | "global" => "https://aiplatform.googleapis.com".into(),
        "us" | "eu" => format!("https://aiplatform.{location}.rep.googleapis.com"),
        region => format!("https://{region}-aiplatform.googleapis.com"),
    }
}

/// Claude models (`claude-*`) are Anthropic's publisher; every other model is Google's.
pub fn adapter_for(model: &str) -> Arc<dyn Adapter> {
    if is_claude(model) {
        Arc::new(VertexClaude)
    } else {
        Arc::new(VertexGemini)
    }
}

fn is_claude(model: &str) -> bool {
    model.strip_prefix("publishers/anthropic/models/").unwrap_or(model).starts_with("claude")
}

/// Gemini models on Vertex.
pub struct VertexGemini;

/// Claude models on Vertex.
pub struct VertexClaude;

impl Adapter for VertexGemini {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body = gemini::request::encode(req, call.model, call.stream);
        merge_params(&mut body, call.extra_params);
        let method = if call.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        let model = call.model.strip_prefix("publishers/google/models/").unwrap_or(call.model);
        Ok(UpstreamRequest {
            url: model_url(call.endpoint, "google", model, method)?,
            headers: headers(call.endpoint, call.api_key)?,
            body: to_body(&body),
        })
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Failure> {
        gemini::response::decode(body)
    }

    fn classify_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        gemini::error::classify(status, headers, body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(gemini::stream::Decoder::new())
    }
}

impl Adapter for VertexClaude {
    fn dialect(&self) -> Dialect {
        Dialect::Anthropic
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let model = call.model.strip_prefix("publishers/anthropic/models/").unwrap_or(call.model);
        let mut body = anthropic::request::encode(req, model, call.stream);
        vertex_claude_body(&mut body, &call.endpoint.anthropic_version);
        merge_params(&mut body, call.extra_params);
        // `stream: true` stays in the body for streamRawPredict, as Anthropic's SDK sends it.
        let method = if call.stream { "streamRawPredict" } else { "rawPredict" };
        Ok(UpstreamRequest {
            url: model_url(call.endpoint, "anthropic", model, method)?,
            headers: headers(call.endpoint, call.api_key)?,
            body: to_body(&body),
        })
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Failure> {
        anthropic::response::decode(body)
    }

    /// Anthropic's shape (`{"type":"error","error":{"type":...}}`) for model errors, Google's
    /// for everything the platform answers itself (auth, quota, unknown model).
    fn classify_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        if is_anthropic_error(body) {
            anthropic::error::classify(status, headers, body)
        } else {
            gemini::error::classify(status, headers, body)
        }
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(anthropic::stream::Decoder::new())
    }
}

/// The model is in the URL, and the API version goes in the body instead of a header.
fn vertex_claude_body(body: &mut Map<String, Value>, configured_version: &str) {
    body.shift_remove("model");
    // `anthropic_version: vertex-...` in the provider's configuration wins over the default.
    let version = if configured_version.starts_with("vertex-") { configured_version } else { ANTHROPIC_VERSION };
    body.insert("anthropic_version".into(), version.into());
}

/// An Anthropic error body names its error with a string `type`; Google's has a numeric `code`.
fn is_anthropic_error(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.get("type")).map(Value::is_string))
        .unwrap_or(false)
}

/// `{base}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`.
/// A configured `base_url` with a path (`…/v1beta1`) is used as the API root as it is.
fn model_url(endpoint: &Endpoint, publisher: &str, model: &str, method: &str) -> Result<String, Failure> {
    let cloud = &endpoint.cloud;
    if cloud.project.is_empty() || cloud.location.is_empty() {
        return Err(Failure::new(
            FailureClass::DeploymentInvalid,
            "a vertex provider needs `project` and `location` in its configuration",
        )
        .detail("bad_config"));
    }
    Ok(format!(
        "{}/projects/{}/locations/{}/publishers/{publisher}/models/{}:{method}",
        api_root(&endpoint.base_url),
        path_segment(&cloud.project),
        path_segment(&cloud.location),
        path_segment(model),
    ))
}

/// The base URL with `/v1` appended when it is a bare host.
fn api_root(base_url: &str) -> String {
    let after_scheme = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    if after_scheme.contains('/') {
        base_url.to_string()
    } else {
        format!("{base_url}/v1")
    }
}

/// `Authorization: Bearer <token>` (required: Vertex takes no API keys), then configured headers
/// (`anthropic-beta`, `x-goog-user-project`...).
fn headers(endpoint: &Endpoint, token: &Secret) -> Result<HeaderMap, Failure> {
    if token.is_empty() {
        return Err(Failure::new(
            FailureClass::Auth,
            "no access token: set `api_key` (a ready token) or `credentials_file` (a service-account key)",
        )
        .detail("missing_api_key"));
    }
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(AUTHORIZATION, secret_header(&format!("Bearer {}", token.expose()))?);
    for (name, value) in &endpoint.headers {
        h.insert(name.clone(), value.clone());
    }
    Ok(h)
}

#[cfg(test)]
#[path = "vertex_tests.rs"]
mod tests;
