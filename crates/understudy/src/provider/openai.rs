//! The `openai` provider kind: OpenAI itself and every server that speaks its Chat Completions
//! API (Azure OpenAI's v1 endpoint, vLLM, Ollama, OpenRouter...). The wire format lives in
//! [`crate::wire::openai`]; this adapter adds the URL and headers.

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};

use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::Secret;
use crate::failure::Failure;
use crate::wire::openai::{embeddings, error, request, response, stream};
use crate::wire::StreamDecoder;

pub struct OpenAi;

impl Adapter for OpenAi {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAi
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body = request::encode(req, call.model, call.stream);
        merge_params(&mut body, call.extra_params);
        Ok(UpstreamRequest {
            url: chat_url(&call.endpoint.base_url),
            headers: json_headers(call)?,
            body: to_body(&body),
        })
    }

    /// `POST {base_url}/embeddings`, with the chat call's credentials and headers.
    fn build_embeddings(&self, req: &EmbeddingsRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body = embeddings::encode(req, call.model)?;
        merge_params(&mut body, call.extra_params);
        let url = url(&call.endpoint.base_url, "embeddings");
        Ok(UpstreamRequest { url, headers: json_headers(call)?, body: to_body(&body) })
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
        embeddings::decode_response(body)
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

    /// `GET {base_url}/models` with the same credentials as a chat call.
    fn models_request(&self, endpoint: &Endpoint, api_key: &Secret) -> Option<Result<UpstreamRequest, Failure>> {
        let mut headers = HeaderMap::new();
        if !api_key.is_empty() {
            match secret_header(&format!("Bearer {}", api_key.expose())) {
                Ok(v) => headers.insert(AUTHORIZATION, v),
                Err(f) => return Some(Err(f)),
            };
        }
        for (name, value) in &endpoint.headers {
            headers.insert(name.clone(), value.clone());
        }
        Some(Ok(UpstreamRequest { url: url(&endpoint.base_url, "models"), headers, body: Default::default() }))
    }
}

/// JSON content type, the bearer key, then the configured headers.
fn json_headers(call: &Call<'_>) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Local servers (Ollama, vLLM) take no key: send no header rather than "Bearer ".
    if !call.api_key.is_empty() {
        let bearer = secret_header(&format!("Bearer {}", call.api_key.expose()))?;
        headers.insert(AUTHORIZATION, bearer);
    }
    // Configured headers come last, so that they can replace the defaults (Azure's `api-key`
    // instead of a bearer token, an organisation or project header...).
    for (name, value) in &call.endpoint.headers {
        headers.insert(name.clone(), value.clone());
    }
    Ok(headers)
}

/// `{base_url}/chat/completions`. A query in the base URL stays at the end, so that an Azure
/// classic deployment (`…/openai/deployments/{name}?api-version=2024-10-21`) can be configured.
fn chat_url(base_url: &str) -> String {
    url(base_url, "chat/completions")
}

/// `{base_url}/{path}`, keeping a query in the base URL at the end.
fn url(base_url: &str, path: &str) -> String {
    match base_url.split_once('?') {
        Some((base, query)) => format!("{}/{path}?{query}", base.trim_end_matches('/')),
        None => format!("{base_url}/{path}"),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::canonical::{Message, Role};
    use crate::config::{ProviderKind, Secret};
    use crate::provider::Endpoint;
    use crate::FailureClass;

    fn endpoint(headers: Vec<(HeaderName, HeaderValue)>) -> Endpoint {
        Endpoint {
            name: "oai".into(),
            kind: ProviderKind::Openai,
            base_url: "https://api.openai.com/v1".into(),
            api_key: Secret::new("sk-provider"),
            headers,
            anthropic_version: String::new(),
            aws: None,
            cloud: Default::default(),
            token_source: None,
        }
    }

    fn build(endpoint: &Endpoint, key: &str, extra: &Map<String, Value>, req: &ChatRequest) -> UpstreamRequest {
        let key = Secret::new(key);
        let call = Call { endpoint, model: "gpt-4o-mini", api_key: &key, extra_params: extra, stream: true };
        OpenAi.build(req, &call).unwrap()
    }

    #[test]
    fn builds_url_headers_and_body() {
        let req = crate::wire::openai::request::decode(
            br#"{"model":"smart","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"seed":7}"#,
        )
        .unwrap();
        let mut extra = Map::new();
        extra.insert("reasoning_effort".into(), json!("low"));
        extra.insert("temperature".into(), json!(0.5));
        let up = build(&endpoint(vec![]), "sk-entry", &extra, &req);
        assert_eq!(up.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(up.headers[CONTENT_TYPE], "application/json");
        assert_eq!(up.headers[AUTHORIZATION], "Bearer sk-entry");
        assert!(up.headers[AUTHORIZATION].is_sensitive());
        assert!(!format!("{:?}", up.headers).contains("sk-entry"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.5, "seed": 7, "stream": true, "stream_options": {"include_usage": true},
                "reasoning_effort": "low"})
        );
    }

    #[test]
    fn no_key_means_no_authorization_and_configured_headers_win() {
        let req = ChatRequest {
            model: "smart".into(),
            messages: vec![Message::text(Role::User, "hi")],
            ..ChatRequest::default()
        };
        let up = build(&endpoint(vec![]), "", &Map::new(), &req);
        assert!(up.headers.get(AUTHORIZATION).is_none());

        let headers = vec![
            (HeaderName::from_static("api-key"), HeaderValue::from_static("azure-key")),
            (HeaderName::from_static("openai-project"), HeaderValue::from_static("proj_1")),
            (CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8")),
        ];
        let up = build(&endpoint(headers), "sk-entry", &Map::new(), &req);
        assert_eq!(up.headers["api-key"], "azure-key");
        assert_eq!(up.headers["openai-project"], "proj_1");
        assert_eq!(up.headers[CONTENT_TYPE], "application/json; charset=utf-8");
    }

    #[test]
    fn azure_classic_query_stays_at_the_end() {
        assert_eq!(
            chat_url("https://res.openai.azure.com/openai/deployments/gpt4o/?api-version=2024-10-21"),
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(chat_url("http://localhost:11434/v1"), "http://localhost:11434/v1/chat/completions");
    }

    #[test]
    fn a_key_that_is_not_a_header_value_is_an_auth_failure() {
        let key = Secret::new("sk-\nbad");
        let ep = endpoint(vec![]);
        let extra = Map::new();
        let call = Call { endpoint: &ep, model: "m", api_key: &key, extra_params: &extra, stream: false };
        let err = OpenAi.build(&ChatRequest::default(), &call).unwrap_err();
        assert_eq!(err.class, FailureClass::Auth);
        assert!(!err.message.contains("bad"));
    }

    #[test]
    fn models_listing_uses_the_chat_credentials() {
        let ep = endpoint(vec![(HeaderName::from_static("openai-project"), HeaderValue::from_static("proj_1"))]);
        let up = OpenAi.models_request(&ep, &Secret::new("sk-entry")).unwrap().unwrap();
        assert_eq!(up.url, "https://api.openai.com/v1/models");
        assert_eq!(up.headers[AUTHORIZATION], "Bearer sk-entry");
        assert!(up.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(up.headers["openai-project"], "proj_1");
        assert!(up.body.is_empty());
        let none = OpenAi.models_request(&ep, &Secret::new("")).unwrap().unwrap();
        assert!(none.headers.get(AUTHORIZATION).is_none());
        assert_eq!(
            url("https://r.example/openai/v1?api-version=1", "models"),
            "https://r.example/openai/v1/models?api-version=1"
        );
        assert_eq!(OpenAi.models_request(&ep, &Secret::new("a\nb")).unwrap().unwrap_err().class, FailureClass::Auth);
    }

    #[test]
    fn embeddings_go_to_the_embeddings_path_with_the_same_credentials() {
        let ep = endpoint(vec![(HeaderName::from_static("openai-project"), HeaderValue::from_static("proj_1"))]);
        let key = Secret::new("sk-caller");
        let mut extra = Map::new();
        extra.insert("user".into(), json!("svc"));
        let call =
            Call { endpoint: &ep, model: "text-embedding-3-small", api_key: &key, extra_params: &extra, stream: false };
        let front =
            crate::wire::openai::embeddings::decode(br#"{"model":"route","input":"hi","dimensions":8}"#).unwrap();
        let up = OpenAi.build_embeddings(&front.request, &call).unwrap();
        assert_eq!(up.url, "https://api.openai.com/v1/embeddings");
        assert_eq!(up.headers[AUTHORIZATION], "Bearer sk-caller");
        assert!(up.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(up.headers["openai-project"], "proj_1");
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body, json!({"model": "text-embedding-3-small", "input": "hi", "dimensions": 8, "user": "svc"}));
        let r = OpenAi.decode_embeddings(br#"{"data":[{"index":0,"embedding":[1]}],"model":"m"}"#).unwrap();
        assert_eq!(r.vectors, vec![vec![1.0]]);
    }

    #[test]
    fn delegates_decoding_and_classification() {
        assert_eq!(OpenAi.dialect(), Dialect::OpenAi);
        let resp = OpenAi
            .decode_response(br#"{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#)
            .unwrap();
        assert_eq!(resp.choices[0].text(), "ok");
        let f = OpenAi.classify_error(
            429,
            &HeaderMap::new(),
            br#"{"error":{"code":"insufficient_quota","type":"insufficient_quota","message":"quota"}}"#,
        );
        assert!(f.is_quota_exhausted());
        let mut d = OpenAi.stream_decoder();
        let mut out = Vec::new();
        d.feed(b"data: [DONE]\n\n", &mut out);
        assert_eq!(out.len(), 1);
    }
}
