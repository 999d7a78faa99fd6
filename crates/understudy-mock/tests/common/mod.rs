//! Helpers shared by the integration tests: a mock on a loopback port, a client, request
//! builders per dialect and a strict SSE frame splitter.
#![allow(dead_code)]

use futures::StreamExt;
use serde_json::{json, Value};
use understudy_mock::{start, MockConfig, MockHandle};

pub async fn mock() -> MockHandle {
    mock_with(MockConfig::default()).await
}

pub async fn mock_with(config: MockConfig) -> MockHandle {
    start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

/// `.json(...)` without needing reqwest's `json` feature.
pub trait JsonBody {
    fn json(self, body: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json").body(serde_json::to_vec(body).unwrap())
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn openai_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "What is the capital of Norway?"}]})
}

pub fn anthropic_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "system": "Be brief.",
           "messages": [{"role": "user", "content": "What is the capital of Norway?"}]})
}

pub fn gemini_body() -> Value {
    json!({"systemInstruction": {"parts": [{"text": "Be brief."}]},
           "contents": [{"role": "user", "parts": [{"text": "What is the capital of Norway?"}]}]})
}

pub fn with_stream(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

pub async fn openai(m: &MockHandle, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", m.url()))
        .bearer_auth("sk-test-0123456789abcdef")
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn anthropic(m: &MockHandle, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", m.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

pub fn gemini_url(m: &MockHandle, model: &str, stream: bool) -> String {
    if stream {
        format!("{}/v1beta/models/{model}:streamGenerateContent?alt=sse", m.url())
    } else {
        format!("{}/v1beta/models/{model}:generateContent", m.url())
    }
}

pub async fn gemini(m: &MockHandle, model: &str, stream: bool, body: &Value) -> reqwest::Response {
    client().post(gemini_url(m, model, stream)).header("x-goog-api-key", "AIza-test").json(body).send().await.unwrap()
}

pub async fn json_of(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// Reads a body to its end, returning what arrived and whether it ended with an error.
pub async fn read_all(resp: reqwest::Response) -> (String, Option<reqwest::Error>) {
    let mut stream = resp.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => return (String::from_utf8_lossy(&out).into_owned(), Some(e)),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), None)
}

/// One SSE event: its `event:` name (if any) and `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("bad JSON in {:?}: {e}", self.data))
    }
}

/// Splits an SSE body into events using `eol` ("\n" or "\r\n"), asserting strict framing:
/// each event ends with a blank line and has only `event:` and `data:` lines.
pub fn sse_events(raw: &str, eol: &str) -> Vec<Event> {
    let separator = format!("{eol}{eol}");
    assert!(raw.is_empty() || raw.ends_with(&separator), "stream must end on an event boundary: {raw:?}");
    raw.split(&separator)
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            let mut event = Event { event: None, data: String::new() };
            for line in frame.split(eol) {
                assert!(!line.contains('\r') && !line.contains('\n'), "mixed line endings in {frame:?}");
                if let Some(name) = line.strip_prefix("event: ") {
                    event.event = Some(name.to_string());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data = data.to_string();
                } else {
                    panic!("unexpected SSE line {line:?} in {frame:?}");
                }
            }
            event
        })
        .collect()
}

/// The text of OpenAI content deltas, in order.
pub fn openai_text(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| e.json()["choices"][0]["delta"]["content"].as_str().map(String::from))
        .collect()
}
