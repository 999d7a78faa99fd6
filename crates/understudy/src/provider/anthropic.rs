//! The `anthropic` provider kind: `POST {base_url}/v1/messages` with `x-api-key` and
//! `anthropic-version`. The wire format lives in [`crate::wire::anthropic`].

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect};
use crate::config::Secret;
use crate::failure::{Failure, FailureClass};
use crate::wire::anthropic::{error, request, response, stream};
use crate::wire::StreamDecoder;

pub struct Anthropic;

impl Adapter for Anthropic {
    fn dialect(&self) -> Dialect {
        Dialect::Anthropic
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let endpoint = call.endpoint;
        let mut body = request::encode(req, call.model, call.stream);
        merge_params(&mut body, call.extra_params);
        let mut headers = auth_headers(endpoint, call.api_key)?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Configured headers come last so they can override (anthropic-beta, a proxy's auth...).
        for (name, value) in &endpoint.headers {
            headers.insert(name.clone(), value.clone());
        }

        Ok(UpstreamRequest { url: format!("{}/v1/messages", endpoint.base_url), headers, body: to_body(&body) })
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

    /// `GET {base_url}/v1/models` with `x-api-key` and `anthropic-version`.
    fn models_request(&self, endpoint: &Endpoint, api_key: &Secret) -> Option<Result<UpstreamRequest, Failure>> {
        Some(auth_headers(endpoint, api_key).map(|mut headers| {
            for (name, value) in &endpoint.headers {
                headers.insert(name.clone(), value.clone());
            }
            UpstreamRequest { url: format!("{}/v1/models", endpoint.base_url), headers, body: Default::default() }
        }))
    }
}

/// `x-api-key` (when a key is configured) and `anthropic-version`.
fn auth_headers(endpoint: &Endpoint, api_key: &Secret) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    // No key configured: send none, so a proxy that adds its own credentials still works.
    if !api_key.is_empty() {
        headers.insert(HeaderName::from_static("x-api-key"), secret_header(api_key.expose())?);
    }
    let version = HeaderValue::from_str(&endpoint.anthropic_version).map_err(|_| {
        Failure::new(FailureClass::DeploymentInvalid, "the configured anthropic_version is not a valid header value")
            .detail("bad_config")
    })?;
    headers.insert(HeaderName::from_static("anthropic-version"), version);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::config::{ProviderKind, Secret};
    use crate::provider::Endpoint;
    use crate::wire::anthropic::request as wire_request;

    fn endpoint() -> Endpoint {
        Endpoint {
            name: "anthropic".into(),
            kind: ProviderKind::Anthropic,
            base_url: "http://127.0.0.1:9999".into(),
            api_key: Secret::new("sk-ant-provider"),
            headers: vec![(HeaderName::from_static("anthropic-beta"), HeaderValue::from_static("feat-a"))],
            anthropic_version: "2023-06-01".into(),
            aws: None,
            cloud: Default::default(),
            token_source: None,
        }
    }

    #[test]
    fn builds_a_messages_call() {
        let ep = endpoint();
        let key = Secret::new("sk-ant-entry");
        let mut extra = Map::new();
        extra.insert("top_k".into(), json!(5));
        let call = Call { endpoint: &ep, model: "claude-3-haiku", api_key: &key, extra_params: &extra, stream: true };
        let req = wire_request::decode(br#"{"model":"smart","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"}}"#).unwrap();
        let up = Anthropic.build(&req, &call).unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9999/v1/messages");
        assert_eq!(up.headers["content-type"], "application/json");
        assert_eq!(up.headers["x-api-key"], "sk-ant-entry");
        assert!(up.headers["x-api-key"].is_sensitive());
        assert_eq!(up.headers["anthropic-version"], "2023-06-01");
        assert_eq!(up.headers["anthropic-beta"], "feat-a");
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["model"], "claude-3-haiku");
        assert_eq!(body["stream"], true);
        assert_eq!(body["top_k"], 5);
        assert_eq!(body["metadata"], json!({"user_id": "u"}));
        assert!(!format!("{:?}", up.headers).contains("sk-ant-entry"));
    }

    #[test]
    fn models_listing_uses_the_chat_credentials() {
        let up = Anthropic.models_request(&endpoint(), &Secret::new("sk-ant-entry")).unwrap().unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9999/v1/models");
        assert_eq!(up.headers["x-api-key"], "sk-ant-entry");
        assert!(up.headers["x-api-key"].is_sensitive());
        assert_eq!(up.headers["anthropic-version"], "2023-06-01");
        assert_eq!(up.headers["anthropic-beta"], "feat-a");
        assert!(up.body.is_empty());
    }

    #[test]
    fn delegates_to_the_wire_module() {
        let ok = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
        assert_eq!(Anthropic.decode_response(ok).unwrap().choices[0].text(), "hi");
        let f = Anthropic.classify_error(
            529,
            &HeaderMap::new(),
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(f.class, FailureClass::Overloaded);
        let mut d = Anthropic.stream_decoder();
        let mut out = Vec::new();
        d.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", &mut out);
        assert_eq!(out[0].as_ref().unwrap().events, vec![crate::canonical::StreamEvent::Done]);
        assert_eq!(Anthropic.dialect(), Dialect::Anthropic);
    }
}
