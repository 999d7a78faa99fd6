//! The `gemini` provider kind: Google's Gemini API (`generativelanguage` v1beta).

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};

use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::Secret;
use crate::failure::Failure;
use crate::wire::gemini::{embeddings, error, request, response, stream};
use crate::wire::StreamDecoder;

pub struct Gemini;

impl Adapter for Gemini {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body = request::encode(req, call.model, call.stream);
        merge_params(&mut body, call.extra_params);
        Ok(UpstreamRequest {
            url: url(&call.endpoint.base_url, call.model, call.stream),
            headers: headers(call.endpoint, call.api_key)?,
            body: to_body(&body),
        })
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Failure> {
        response::decode(body)
    }

    /// `POST {base}/models/{model}:batchEmbedContents`; token-id inputs are refused as
    /// `deployment_invalid` (Gemini embeds text only).
    fn build_embeddings(&self, req: &EmbeddingsRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let body = embeddings::encode(req, call.model, call.extra_params)?;
        let model = call.model.strip_prefix("models/").unwrap_or(call.model);
        Ok(UpstreamRequest {
            url: format!("{}/models/{}:batchEmbedContents", call.endpoint.base_url, path_segment(model)),
            headers: headers(call.endpoint, call.api_key)?,
            body: to_body(&body),
        })
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
        embeddings::decode(body)
    }

    fn classify_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
        error::classify(status, headers, body)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        Box::new(stream::Decoder::new())
    }

    /// `GET {base_url}/models` with `x-goog-api-key`.
    fn models_request(&self, endpoint: &Endpoint, api_key: &Secret) -> Option<Result<UpstreamRequest, Failure>> {
        let url = format!("{}/models", endpoint.base_url);
        Some(headers(endpoint, api_key).map(|mut headers| {
            headers.remove(CONTENT_TYPE);
            UpstreamRequest { url, headers, body: Default::default() }
        }))
    }
}

/// `{base}/models/{model}:generateContent`, or the SSE streaming method.
fn url(base_url: &str, model: &str, stream: bool) -> String {
    let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    // Accept the resource name (`models/gemini-2.5-flash`) as well as the bare id.
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("{base_url}/models/{}:{method}", path_segment(model))
}

/// Percent-encodes what would break out of one path segment (`/ ? # %`, spaces, controls,
/// non-ASCII); keeps RFC 3986 segment characters, `+ = : .` among them, as they are (the mock
/// provider selects faults with `+` in model names).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The key goes in `x-goog-api-key`, never in the URL, so that it cannot reach a log line.
fn headers(endpoint: &Endpoint, api_key: &Secret) -> Result<HeaderMap, Failure> {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if !api_key.is_empty() {
        h.insert("x-goog-api-key", secret_header(api_key.expose())?);
    }
    for (name, value) in &endpoint.headers {
        h.insert(name.clone(), value.clone());
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Message, Role};
    use crate::config::{ProviderKind, Secret};
    use crate::failure::FailureClass;
    use http::HeaderName;
    use serde_json::{json, Map, Value};

    fn endpoint() -> super::super::Endpoint {
        super::super::Endpoint {
            name: "google".into(),
            kind: ProviderKind::Gemini,
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            api_key: Secret::new("provider-key"),
            headers: vec![(HeaderName::from_static("x-team"), HeaderValue::from_static("blue"))],
            anthropic_version: String::new(),
            aws: None,
            cloud: Default::default(),
            token_source: None,
        }
    }

    fn request() -> ChatRequest {
        ChatRequest { model: "smart".into(), messages: vec![Message::text(Role::User, "Hi")], ..Default::default() }
    }

    #[test]
    fn url_headers_and_body() {
        let ep = endpoint();
        let key = Secret::new("AIza-secret");
        let mut extra = Map::new();
        extra.insert(
            "safetySettings".into(),
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]),
        );
        let call =
            Call { endpoint: &ep, model: "gemini-2.5-flash", api_key: &key, extra_params: &extra, stream: false };
        let up = Gemini.build(&request(), &call).unwrap();
        assert_eq!(up.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
        assert!(!up.url.contains("AIza"));
        assert!(!up.url.contains("key="));
        assert_eq!(up.headers["content-type"], "application/json");
        assert_eq!(up.headers["x-goog-api-key"], "AIza-secret");
        assert!(up.headers["x-goog-api-key"].is_sensitive());
        assert_eq!(up.headers["x-team"], "blue");
        assert!(!format!("{:?}", up.headers).contains("AIza"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
            })
        );
    }

    #[test]
    fn streaming_url_and_model_escaping() {
        let ep = endpoint();
        let key = Secret::new("k");
        let extra = Map::new();
        let call = |model| Call { endpoint: &ep, model, api_key: &key, extra_params: &extra, stream: true };
        let url = |model| Gemini.build(&request(), &call(model)).unwrap().url;
        assert_eq!(
            url("gemini-2.5-flash"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            url("mock+fail=503+delay:2s"),
            "https://generativelanguage.googleapis.com/v1beta/models/mock+fail=503+delay:2s:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            url("a/b?c#d%e f"),
            "https://generativelanguage.googleapis.com/v1beta/models/a%2Fb%3Fc%23d%25e%20f:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            url("models/gemini-2.5-pro"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn bad_key_characters_fail_as_auth_and_empty_key_sends_no_header() {
        let ep = endpoint();
        let extra = Map::new();
        let bad = Secret::new("line\nbreak");
        let call =
            Call { endpoint: &ep, model: "gemini-2.5-flash", api_key: &bad, extra_params: &extra, stream: false };
        assert_eq!(Gemini.build(&request(), &call).unwrap_err().class, FailureClass::Auth);
        let empty = Secret::new("");
        let call = Call { api_key: &empty, ..call };
        assert!(!Gemini.build(&request(), &call).unwrap().headers.contains_key("x-goog-api-key"));
    }

    #[test]
    fn models_listing_keeps_the_key_out_of_the_url() {
        let up = Gemini.models_request(&endpoint(), &Secret::new("AIza-secret")).unwrap().unwrap();
        assert_eq!(up.url, "https://generativelanguage.googleapis.com/v1beta/models");
        assert_eq!(up.headers["x-goog-api-key"], "AIza-secret");
        assert!(up.headers["x-goog-api-key"].is_sensitive());
        assert_eq!(up.headers["x-team"], "blue");
        assert!(up.body.is_empty());
    }

    #[test]
    fn embeddings_use_batch_embed_contents_with_the_key_in_a_header() {
        let ep = endpoint();
        let key = Secret::new("AIza-caller");
        let extra = Map::new();
        let call =
            Call { endpoint: &ep, model: "gemini-embedding-001", api_key: &key, extra_params: &extra, stream: false };
        let req = crate::canonical::EmbeddingsRequest {
            model: "route".into(),
            input: vec![crate::canonical::EmbeddingInput::Text("hi".into())],
            dimensions: Some(4),
            native: None,
        };
        let up = Gemini.build_embeddings(&req, &call).unwrap();
        assert_eq!(
            up.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(up.headers["x-goog-api-key"], "AIza-caller");
        assert!(!up.url.contains("AIza"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["requests"][0]["outputDimensionality"], 4);
        let tokens = crate::canonical::EmbeddingsRequest {
            input: vec![crate::canonical::EmbeddingInput::Tokens(vec![1])],
            ..req
        };
        assert_eq!(Gemini.build_embeddings(&tokens, &call).unwrap_err().class, FailureClass::DeploymentInvalid);
        assert_eq!(Gemini.decode_embeddings(br#"{"embeddings":[{"values":[1]}]}"#).unwrap().vectors, vec![vec![1.0]]);
    }

    #[test]
    fn delegates_to_the_wire_module() {
        assert_eq!(Gemini.dialect(), Dialect::Gemini);
        let f = Gemini.classify_error(404, &HeaderMap::new(), br#"{"error":{"code":404,"status":"NOT_FOUND"}}"#);
        assert_eq!(f.class, FailureClass::DeploymentInvalid);
        let r = Gemini
            .decode_response(br#"{"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"#)
            .unwrap();
        assert_eq!(r.choices[0].text(), "ok");
        let mut d = Gemini.stream_decoder();
        let mut out = Vec::new();
        d.feed(b"data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n", &mut out);
        d.finish(&mut out);
        assert_eq!(out.len(), 2);
    }
}
