//! OpenAI-compatible presets: Groq, Together, Mistral, DeepSeek, Fireworks, OpenRouter, Ollama and
//! vLLM. Each is the OpenAI wire format ([`crate::wire::openai`]) at the preset's default base URL
//! (see [`super::default_base_url`]), with small rewrites of the encoded body for what that
//! server is known to refuse. Each rewrite cites its reason.
//!
//! A rewrite never silently changes what the caller asked for: a field is dropped only when it is
//! a no-op (`logprobs: false`, `n: 1`) or an addition of the gateway's own (`stream_options`);
//! a field with a real effect that the server cannot honour (`n: 3` on Groq) fails the attempt
//! as `deployment_invalid` (`unsupported_parameter`), so that the route fails over to a deployment
//! that can. Provider-native `params` from the chain entry are merged after the rewrites and
//! reach the server as written.

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect};
use crate::config::{ProviderKind, Secret};
use crate::failure::{Failure, FailureClass};
use crate::wire::openai::{error, request, response, stream};
use crate::wire::StreamDecoder;

type Body = Map<String, Value>;

/// An OpenAI-compatible preset.
pub struct Preset {
    kind: ProviderKind,
}

impl Preset {
    pub fn new(kind: ProviderKind) -> Preset {
        Preset { kind }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            ProviderKind::Groq => "Groq",
            ProviderKind::Together => "Together",
            ProviderKind::Mistral => "Mistral",
            ProviderKind::Deepseek => "DeepSeek",
            ProviderKind::Fireworks => "Fireworks",
            ProviderKind::Openrouter => "OpenRouter",
            ProviderKind::Ollama => "Ollama",
            ProviderKind::Vllm => "vLLM",
            _ => "this provider",
        }
    }

    /// The preset's quirks, applied to an encoded body.
    pub fn rewrite(&self, body: &mut Body, model: &str) -> Result<(), Failure> {
        let refuse = |field: &str, why: &str| unsupported(self.name(), field, why);
        match self.kind {
            ProviderKind::Groq => {
                // console.groq.com/docs/openai: `logprobs`, `logit_bias`, `top_logprobs` and
                // `messages[].name` "will result in a 400 error"; `n` must be 1.
                for field in ["logprobs", "top_logprobs", "logit_bias"] {
                    drop_if_noop(body, field).map_err(|_| refuse(field, "not supported"))?;
                }
                drop_n_if_one(body).map_err(|_| refuse("n", "only n = 1 is supported"))?;
                strip_message_field(body, "name");
            }
            ProviderKind::Mistral => {
                // Mistral forbids extra fields (HTTP 422 `extra_forbidden`), among them
                // `stream_options.include_usage` (it sends usage on its last chunk anyway) and
                // `max_completion_tokens`; its seed is `random_seed`; `messages[].name` was
                // refused too. `tool_choice: "any"` is its "call some tool".
                body.shift_remove("stream_options");
                rename(body, "max_completion_tokens", "max_tokens");
                rename(body, "seed", "random_seed");
                if body.get("tool_choice").and_then(Value::as_str) == Some("required") {
                    body.insert("tool_choice".into(), "any".into());
                }
                strip_message_field(body, "name");
            }
            ProviderKind::Deepseek => {
                // DeepSeek's reasoning-model guide: `reasoning_content` replayed in input messages
                // is a 400; `logprobs` / `top_logprobs` "will trigger an error" on the reasoner.
                // Its API reference documents `max_tokens` only.
                strip_message_field(body, "reasoning_content");
                if model.contains("reasoner") {
                    for field in ["logprobs", "top_logprobs"] {
                        drop_if_noop(body, field).map_err(|_| refuse(field, "not supported by deepseek-reasoner"))?;
                    }
                }
                rename(body, "max_completion_tokens", "max_tokens");
            }
            ProviderKind::Together => {
                // Together refuses `tool_choice: "required"` ("Invalid request"); a named function is
                // the same demand when only one tool is offered. Its reference documents
                // `max_tokens` only.
                if body.get("tool_choice").and_then(Value::as_str) == Some("required") {
                    let name = only_tool_name(body).ok_or_else(|| {
                        refuse("tool_choice", "\"required\" is not supported (and more than one tool is offered)")
                    })?;
                    body.insert("tool_choice".into(), json!({"type": "function", "function": {"name": name}}));
                }
                rename(body, "max_completion_tokens", "max_tokens");
            }
            // Fireworks names models by resource (`accounts/fireworks/models/<id>`); a bare id is
            // taken as one of Fireworks' own.
            ProviderKind::Fireworks if !model.contains('/') => {
                body.insert("model".into(), format!("accounts/fireworks/models/{model}").into());
            }
            ProviderKind::Ollama => {
                // Ollama's OpenAI compatibility lists `max_tokens` among its fields but not
                // `max_completion_tokens`, which it would ignore (an unbounded answer).
                rename(body, "max_completion_tokens", "max_tokens");
            }
            // OpenRouter and vLLM take the OpenAI body as it is (OpenRouter's optional
            // `HTTP-Referer` / `X-Title` attribution headers go in the provider's `headers`).
            _ => {}
        }
        Ok(())
    }
}

fn unsupported(provider: &str, field: &str, why: &str) -> Failure {
    Failure::new(FailureClass::DeploymentInvalid, format!("{provider} cannot take `{field}`: {why}"))
        .detail("unsupported_parameter")
}

impl Adapter for Preset {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAi
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body = request::encode(req, call.model, call.stream);
        self.rewrite(&mut body, call.model)?;
        merge_params(&mut body, call.extra_params);
        Ok(UpstreamRequest {
            url: format!("{}/chat/completions", call.endpoint.base_url),
            headers: headers(call.endpoint, call.api_key, true)?,
            body: to_body(&body),
        })
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Failure> {
        response::decode(body)
    }

    fn classify_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        let f = error::classify(status, headers, body);
        // Mistral's 422 `extra_forbidden` names a field this server does not take, which another
        // deployment may: a deployment problem, not the caller's mistake.
        if self.kind == ProviderKind::Mistral && status == 422 && contains(body, b"extra_forbidden") {
            let mut f = f;
            f.class = FailureClass::DeploymentInvalid;
            f.detail = Some("unsupported_parameter");
            return f;
        }
        f
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::new())
    }

    /// `GET {base_url}/models`.
    fn models_request(&self, endpoint: &Endpoint, api_key: &Secret) -> Option<Result<UpstreamRequest, Failure>> {
        Some(headers(endpoint, api_key, false).map(|headers| UpstreamRequest {
            url: format!("{}/models", endpoint.base_url),
            headers,
            body: Default::default(),
        }))
    }
}

/// `Authorization: Bearer` when a key is configured (Ollama and vLLM need none), then configured
/// headers.
fn headers(endpoint: &Endpoint, key: &Secret, json: bool) -> Result<HeaderMap, Failure> {
    let mut h = HeaderMap::new();
    if json {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if !key.is_empty() {
        h.insert(AUTHORIZATION, secret_header(&format!("Bearer {}", key.expose()))?);
    }
    for (name, value) in &endpoint.headers {
        h.insert(name.clone(), value.clone());
    }
    Ok(h)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A value that asks for nothing: absent, null, false, 0, or empty.
fn is_noop(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes `field` when it asks for nothing; `Err` when it asks for something.
fn drop_if_noop(body: &mut Body, field: &str) -> Result<(), ()> {
    match body.get(field) {
        None => Ok(()),
        Some(v) if is_noop(v) => {
            body.shift_remove(field);
            Ok(())
        }
        Some(_) => Err(()),
    }
}

/// Removes `n` when it is 1 (or null); `Err` for more choices.
fn drop_n_if_one(body: &mut Body) -> Result<(), ()> {
    match body.get("n") {
        None => Ok(()),
        Some(v) if v.is_null() || v.as_u64() == Some(1) => {
            body.shift_remove("n");
            Ok(())
        }
        Some(_) => Err(()),
    }
}

/// Moves `from` to `to` (a `to` already set wins, and `from` is dropped).
fn rename(body: &mut Body, from: &str, to: &str) {
    if let Some(v) = body.shift_remove(from) {
        if body.get(to).is_none_or(Value::is_null) {
            body.insert(to.into(), v);
        }
    }
}

fn strip_message_field(body: &mut Body, field: &str) {
    for m in body.get_mut("messages").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(m) = m.as_object_mut() {
            m.shift_remove(field);
        }
    }
}

/// The function name when exactly one tool is offered.
fn only_tool_name(body: &Body) -> Option<String> {
    match body.get("tools").and_then(Value::as_array).map(Vec::as_slice) {
        Some([tool]) => tool.pointer("/function/name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
#[path = "presets_tests.rs"]
mod tests;
