//! The `bedrock` provider kind: AWS Bedrock Runtime's Converse API
//! (`POST {base_url}/model/{modelId}/converse`, `/converse-stream`), and InvokeModel for
//! embeddings (`/model/{modelId}/invoke`). Requests are signed with SigV4 (service `bedrock`),
//! or carry a Bedrock API key as `Authorization: Bearer` when `api_key` is set. The wire format
//! lives in [`crate::wire::bedrock`].

mod sign;

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::{merge_params, secret_header, to_body, Adapter, Call, Endpoint, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::{ProviderConfig, Secret};
use crate::failure::{Failure, FailureClass};
use crate::wire::bedrock::{embeddings, encode_model_id, error, request, response, stream};
use crate::wire::StreamDecoder;

/// Where SDKs default when no region is configured anywhere.
const DEFAULT_REGION: &str = "us-east-1";
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

pub struct Bedrock;

/// A Bedrock provider's region and SigV4 credentials.
#[derive(Clone)]
pub struct AwsSettings {
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// Empty for long-term credentials.
    pub session_token: Secret,
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .finish()
    }
}

impl AwsSettings {
    /// From the provider's configuration, falling back to the standard variables (read through
    /// `env`): `AWS_REGION`, then `AWS_DEFAULT_REGION` (else `us-east-1`); `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` when the configuration names no key. A
    /// configured key pair never borrows a session token from the environment: the two would
    /// not belong together.
    pub fn from_config(c: &ProviderConfig, env: impl Fn(&str) -> Option<String>) -> AwsSettings {
        let env_value = |k: &str| env(k).filter(|v| !v.is_empty());
        let region = c
            .region
            .as_ref()
            .map(|r| r.value.trim().to_string())
            .filter(|r| !r.is_empty())
            .or_else(|| env_value("AWS_REGION"))
            .or_else(|| env_value("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let from_env = |k: &str| env_value(k).map(Secret::new).unwrap_or_default();
        let configured = c.aws_access_key_id.is_some() || c.aws_secret_access_key.is_some();
        let (access_key_id, secret_access_key, session_token) = if configured {
            (
                c.aws_access_key_id.clone().unwrap_or_default(),
                c.aws_secret_access_key.clone().unwrap_or_default(),
                c.aws_session_token.clone().unwrap_or_default(),
            )
        } else {
            (from_env("AWS_ACCESS_KEY_ID"), from_env("AWS_SECRET_ACCESS_KEY"), from_env("AWS_SESSION_TOKEN"))
        };
        AwsSettings { region, access_key_id, secret_access_key, session_token }
    }

    /// `https://bedrock-runtime.{region}.amazonaws.com`.
    pub fn default_base_url(&self) -> String {
        format!("https://bedrock-runtime.{}.amazonaws.com", self.region)
    }
}

impl Adapter for Bedrock {
    fn dialect(&self) -> Dialect {
        Dialect::Bedrock
    }

    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let body = request::encode(req, call.extra_params)?;
        let (operation, accept) =
            if call.stream { ("converse-stream", EVENT_STREAM) } else { ("converse", "application/json") };
        let url = format!("{}/model/{}/{operation}", call.endpoint.base_url, encode_model_id(call.model));
        authorized(call, url, accept, to_body(&body), SystemTime::now())
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

    /// InvokeModel with the Titan or Cohere body, chosen by the model id.
    fn build_embeddings(&self, req: &EmbeddingsRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let mut body: Map<String, Value> = embeddings::encode(req, call.model)?;
        // InvokeModel bodies are model-native: a chain entry's params go in as they are.
        merge_params(&mut body, call.extra_params);
        let url = format!("{}/model/{}/invoke", call.endpoint.base_url, encode_model_id(call.model));
        authorized(call, url, "application/json", to_body(&body), SystemTime::now())
    }

    fn decode_embeddings(&self, body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
        embeddings::decode(body)
    }
}

/// The request with its headers: JSON content, the configured headers, then the credentials:
/// a Bedrock API key as a bearer token when one is set, else a SigV4 signature over exactly
/// these headers and body bytes.
fn authorized(
    call: &Call<'_>,
    url: String,
    accept: &'static str,
    body: Bytes,
    now: SystemTime,
) -> Result<UpstreamRequest, Failure> {
    let endpoint = call.endpoint;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    for (name, value) in &endpoint.headers {
        headers.insert(name.clone(), value.clone());
    }
    if !call.api_key.is_empty() {
        headers.insert(AUTHORIZATION, secret_header(&format!("Bearer {}", call.api_key.expose()))?);
    } else {
        let aws = aws_settings(endpoint)?;
        sign::sign(aws, "bedrock", "POST", &url, &mut headers, &body, now)?;
    }
    Ok(UpstreamRequest { url, headers, body })
}

fn aws_settings(endpoint: &Endpoint) -> Result<&AwsSettings, Failure> {
    endpoint.aws.as_ref().ok_or_else(|| {
        Failure::new(FailureClass::DeploymentInvalid, "this provider has no AWS settings").detail("bad_config")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::HeaderName;
    use serde_json::json;

    use super::*;
    use crate::canonical::{EmbeddingInput, Message, Role, StreamEvent};
    use crate::config::ProviderKind;

    fn settings() -> AwsSettings {
        AwsSettings {
            region: "eu-west-3".into(),
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Secret::default(),
        }
    }

    fn endpoint(aws: AwsSettings) -> Endpoint {
        Endpoint {
            name: "bedrock".into(),
            kind: ProviderKind::Bedrock,
            base_url: "http://127.0.0.1:9999".into(),
            api_key: Secret::default(),
            headers: vec![(HeaderName::from_static("x-team"), HeaderValue::from_static("blue"))],
            anthropic_version: String::new(),
            aws: Some(aws),
            cloud: Default::default(),
            token_source: None,
        }
    }

    fn request() -> ChatRequest {
        ChatRequest { model: "smart".into(), messages: vec![Message::text(Role::User, "Hi")], ..Default::default() }
    }

    fn call<'a>(ep: &'a Endpoint, key: &'a Secret, extra: &'a Map<String, Value>, stream: bool) -> Call<'a> {
        Call {
            endpoint: ep,
            model: "anthropic.claude-3-haiku-20240307-v1:0",
            api_key: key,
            extra_params: extra,
            stream,
        }
    }

    #[test]
    fn builds_a_signed_converse_call() {
        let ep = endpoint(settings());
        let (key, extra) = (Secret::default(), Map::new());
        let up = Bedrock.build(&request(), &call(&ep, &key, &extra, false)).unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9999/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
        assert_eq!(up.headers["content-type"], "application/json");
        assert_eq!(up.headers["accept"], "application/json");
        assert_eq!(up.headers["x-team"], "blue");
        let auth = up.headers["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.contains("/eu-west-3/bedrock/aws4_request"), "{auth}");
        // Every header we send is signed (host comes from the URL).
        assert!(auth.contains("SignedHeaders=accept;content-type;host;x-amz-date;x-team,"), "{auth}");
        assert!(up.headers["authorization"].is_sensitive());
        assert!(up.headers.contains_key("x-amz-date"));
        assert!(!up.headers.contains_key("x-amz-security-token"));
        assert!(!format!("{:?}", up.headers).contains("AKIDEXAMPLE"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body, json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}));
    }

    #[test]
    fn streams_go_to_converse_stream() {
        let mut aws = settings();
        aws.session_token = Secret::new("FwoGZXIvYXdzEBYaDkeyTOKEN");
        let ep = endpoint(aws);
        let (key, extra) = (Secret::default(), Map::new());
        let up = Bedrock.build(&request(), &call(&ep, &key, &extra, true)).unwrap();
        assert!(up.url.ends_with("/converse-stream"));
        assert_eq!(up.headers["accept"], EVENT_STREAM);
        assert_eq!(up.headers["x-amz-security-token"], "FwoGZXIvYXdzEBYaDkeyTOKEN");
        assert!(up.headers["x-amz-security-token"].is_sensitive());
        assert!(up.headers["authorization"].to_str().unwrap().contains(";x-amz-security-token;"));
    }

    #[test]
    fn a_bedrock_api_key_is_a_bearer_token_without_sigv4() {
        let ep = endpoint(settings());
        let (key, extra) = (Secret::new("ABSKbedrockapikey"), Map::new());
        let up = Bedrock.build(&request(), &call(&ep, &key, &extra, false)).unwrap();
        assert_eq!(up.headers["authorization"], "Bearer ABSKbedrockapikey");
        assert!(up.headers["authorization"].is_sensitive());
        assert!(!up.headers.contains_key("x-amz-date"));
    }

    #[test]
    fn missing_credentials_are_auth_failures() {
        let mut aws = settings();
        aws.secret_access_key = Secret::default();
        let ep = endpoint(aws);
        let (key, extra) = (Secret::default(), Map::new());
        let f = Bedrock.build(&request(), &call(&ep, &key, &extra, false)).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::Auth, Some("missing_credentials")));
    }

    #[test]
    fn params_become_model_fields() {
        let ep = endpoint(settings());
        let key = Secret::default();
        let mut extra = Map::new();
        extra.insert("top_k".into(), json!(5));
        let up = Bedrock.build(&request(), &call(&ep, &key, &extra, false)).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["additionalModelRequestFields"], json!({"top_k": 5}));
    }

    #[test]
    fn embeddings_use_invoke_model() {
        let ep = endpoint(settings());
        let (key, extra) = (Secret::default(), Map::new());
        let req = EmbeddingsRequest {
            model: "emb".into(),
            input: vec![EmbeddingInput::Text("hello".into())],
            dimensions: None,
            native: None,
        };
        let c = Call { model: "amazon.titan-embed-text-v2:0", ..call(&ep, &key, &extra, false) };
        let up = Bedrock.build_embeddings(&req, &c).unwrap();
        assert_eq!(up.url, "http://127.0.0.1:9999/model/amazon.titan-embed-text-v2%3A0/invoke");
        assert!(up.headers["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256 "));
        assert_eq!(serde_json::from_slice::<Value>(&up.body).unwrap(), json!({"inputText": "hello"}));
        let r = Bedrock.decode_embeddings(br#"{"embedding":[0.5],"inputTextTokenCount":1}"#).unwrap();
        assert_eq!(r.vectors, vec![vec![0.5]]);
        // A chat model refuses, so that the route moves on.
        let c = Call { model: "anthropic.claude-3-haiku", ..c };
        assert_eq!(Bedrock.build_embeddings(&req, &c).unwrap_err().class, FailureClass::DeploymentInvalid);
    }

    #[test]
    fn delegates_to_the_wire_module() {
        let ok = br#"{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2}}"#;
        assert_eq!(Bedrock.decode_response(ok).unwrap().choices[0].text(), "hi");
        let mut h = HeaderMap::new();
        h.insert("x-amzn-errortype", HeaderValue::from_static("ThrottlingException:http://internal.amazon.com/coral/"));
        assert_eq!(
            Bedrock.classify_error(429, &h, br#"{"message":"Too many requests"}"#).class,
            FailureClass::RateLimited
        );
        let mut d = Bedrock.stream_decoder();
        let mut out = Vec::new();
        let frame = crate::wire::bedrock::eventstream::event("messageStart", br#"{"role":"assistant"}"#).unwrap();
        d.feed(&frame, &mut out);
        assert_eq!(out[0].as_ref().unwrap().events, vec![StreamEvent::Start { id: None, model: None }]);
        assert_eq!(Bedrock.dialect(), Dialect::Bedrock);
        assert!(Bedrock.models_request(&endpoint(settings()), &Secret::default()).is_none());
    }

    fn provider_config(yaml: &str) -> ProviderConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn settings_from_config_and_environment() {
        let env: BTreeMap<&str, &str> = [
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "sa-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
        ]
        .into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        // Nothing configured: all from the environment.
        let s = AwsSettings::from_config(&provider_config("kind: bedrock"), lookup);
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(s.default_base_url(), "https://bedrock-runtime.ap-south-1.amazonaws.com");
        assert_eq!((s.access_key_id.expose(), s.secret_access_key.expose()), ("AKIAENV", "envsecret"));
        assert_eq!(s.session_token.expose(), "envtoken");
        // Configured keys: no token borrowed from the environment.
        let c = provider_config(
            "kind: bedrock\nregion: eu-central-1\naws_access_key_id: AKIACFG\naws_secret_access_key: cfgsecret",
        );
        let s = AwsSettings::from_config(&c, lookup);
        assert_eq!(s.region, "eu-central-1");
        assert_eq!((s.access_key_id.expose(), s.secret_access_key.expose()), ("AKIACFG", "cfgsecret"));
        assert!(s.session_token.is_empty());
        // AWS_DEFAULT_REGION, then us-east-1.
        let s = AwsSettings::from_config(&provider_config("kind: bedrock"), |k| {
            (k == "AWS_DEFAULT_REGION").then(|| "sa-east-1".to_string())
        });
        assert_eq!(s.region, "sa-east-1");
        assert!(s.access_key_id.is_empty());
        let s = AwsSettings::from_config(&provider_config("kind: bedrock"), |_| None);
        assert_eq!(s.region, "us-east-1");
        assert!(!format!("{s:?}").contains("cfgsecret"));
    }

    #[test]
    fn unset_credential_variables() {
        let yaml = "providers:\n  bedrock:\n    kind: bedrock\n    region: us-east-1\n    \
                    aws_access_key_id: ${UNDERSTUDY_TEST_UNSET_AKID}\n    \
                    aws_secret_access_key: ${UNDERSTUDY_TEST_UNSET_SECRET}\n    \
                    aws_session_token: ${UNDERSTUDY_TEST_UNSET_TOKEN}\n\
                    routes:\n  r:\n    fallback_chain:\n      - { provider: bedrock, model: m }\n";
        let loaded = crate::config::load_str(yaml, "t.yaml").unwrap();
        for field in ["aws_access_key_id", "aws_secret_access_key"] {
            assert!(
                loaded.warnings.iter().any(|w| w.contains(&format!("providers.bedrock.{field}"))),
                "{:?}",
                loaded.warnings
            );
        }
        let ep = Endpoint::from_config("bedrock", &loaded.config.providers["bedrock"]);
        let (key, extra) = (Secret::default(), Map::new());
        let f = Bedrock.build(&request(), &call(&ep, &key, &extra, false)).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::Auth, Some("missing_credentials")));
        assert!(f.message.contains("UNDERSTUDY_TEST_UNSET_AKID"), "{}", f.message);
        // An unset session token alone means long-term credentials.
        let mut aws = ep.aws.clone().unwrap();
        aws.access_key_id = Secret::new("AKIDEXAMPLE");
        aws.secret_access_key = Secret::new("secret");
        let ep = endpoint(aws);
        let up = Bedrock.build(&request(), &call(&ep, &key, &extra, false)).unwrap();
        assert!(!up.headers.contains_key("x-amz-security-token"));
    }

    #[test]
    fn endpoint_from_config() {
        let c = provider_config("kind: bedrock\nregion: us-west-2\naws_access_key_id: A\naws_secret_access_key: S");
        let ep = Endpoint::from_config("bedrock", &c);
        assert_eq!(ep.base_url, "https://bedrock-runtime.us-west-2.amazonaws.com");
        assert_eq!(ep.aws.as_ref().unwrap().region, "us-west-2");
        let c = provider_config("kind: bedrock\nbase_url: http://127.0.0.1:9/\nregion: us-west-2");
        assert_eq!(Endpoint::from_config("bedrock", &c).base_url, "http://127.0.0.1:9");
        let c = provider_config("kind: openai");
        assert!(Endpoint::from_config("openai", &c).aws.is_none());
    }
}
