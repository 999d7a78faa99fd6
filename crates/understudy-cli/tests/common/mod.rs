//! Test harness: the built-in mock provider and a gateway, both in process, over loopback.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use understudy_cli::server::{self, ServerHandle};
use understudy_mock::{Fault, MockConfig, MockHandle};

pub struct Env {
    pub mock: MockHandle,
    pub gw: ServerHandle,
    pub client: reqwest::Client,
}

/// Providers `openai`, `anthropic` and `gemini`, all pointing at one mock, plus `routes`
/// (YAML indented for the `routes:` block) and optional extra top-level YAML.
pub fn config_yaml(mock_url: &str, routes: &str, extra: &str) -> String {
    format!(
        r#"providers:
  openai:    {{ kind: openai,    base_url: "{mock_url}/v1",     api_key: test-openai-key }}
  anthropic: {{ kind: anthropic, base_url: "{mock_url}",        api_key: test-anthropic-key }}
  gemini:    {{ kind: gemini,    base_url: "{mock_url}/v1beta", api_key: test-gemini-key }}
  closed:    {{ kind: openai,    base_url: "http://127.0.0.1:9/v1", api_key: k }}
defaults:
  connect_timeout: 500ms
  backoff_base: 10ms
  backoff_max: 50ms
routes:
{routes}
{extra}"#
    )
}

pub async fn env(routes: &str) -> Env {
    env_with(routes, "").await
}

pub async fn env_with(routes: &str, extra: &str) -> Env {
    env_full(routes, extra, MockConfig::default()).await
}

pub async fn env_full(routes: &str, extra: &str, mock_config: MockConfig) -> Env {
    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), mock_config).await.unwrap();
    let yaml = config_yaml(&mock.url(), routes, extra);
    let loaded = understudy::config::load_str(&yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let gw = server::start(&loaded.config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    Env { mock, gw, client }
}

pub fn fault(spec: &str) -> Fault {
    Fault::parse(spec).unwrap_or_else(|e| panic!("bad fault {spec}: {e}"))
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn served_by(&self) -> &str {
        self.header("x-understudy-served-by").unwrap_or("")
    }

    pub fn attempts(&self) -> u32 {
        self.header("x-understudy-attempts").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn reasons(&self) -> &str {
        self.header("x-understudy-fallback-reasons").unwrap_or("")
    }

    /// `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        sse_frames(&self.text).into_iter().map(|(_, d)| d).collect()
    }

    /// `(event, data)` pairs of an SSE body.
    pub fn sse(&self) -> Vec<(Option<String>, String)> {
        sse_frames(&self.text)
    }
}

pub fn sse_frames(text: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event: ") {
                event = Some(e.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push(d);
            }
        }
        if event.is_some() || !data.is_empty() {
            out.push((event, data.join("\n")));
        }
    }
    out
}

impl Env {
    pub async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut rb = self.client.post(format!("{}{path}", self.gw.url())).json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.expect("gateway reachable");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Reply { status, headers, text }
    }

    /// OpenAI front.
    pub async fn chat(&self, body: Value) -> Reply {
        self.post("/v1/chat/completions", &body, &[]).await
    }

    /// Anthropic front.
    pub async fn messages(&self, body: Value) -> Reply {
        self.post("/v1/messages", &body, &[]).await
    }

    /// Upstream requests the mock saw for a base model.
    pub fn upstream(&self, model: &str) -> u64 {
        self.mock.stats().model(model)
    }

    /// Bodies the mock recorded for a base model, oldest first.
    pub fn recorded(&self, model: &str) -> Vec<Value> {
        let v = serde_json::to_value(self.mock.requests(Some(model))).unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

pub fn openai_body(route: &str) -> Value {
    json!({"model": route, "messages": [{"role": "user", "content": "Say hello."}]})
}

pub fn anthropic_body(route: &str) -> Value {
    json!({"model": route, "max_tokens": 256, "messages": [{"role": "user", "content": "Say hello."}]})
}

/// Text of an OpenAI chat.completion.
pub fn openai_text(v: &Value) -> String {
    v["choices"][0]["message"]["content"].as_str().unwrap_or("").to_string()
}

/// Concatenated content of an OpenAI stream and whether it ended with `[DONE]`.
pub fn openai_stream_text(r: &Reply) -> (String, bool) {
    let data = r.sse_data();
    let mut text = String::new();
    for d in &data {
        if d == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(d).unwrap_or_else(|e| panic!("bad chunk {d}: {e}"));
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(c);
        }
    }
    (text, data.last().map(|d| d == "[DONE]").unwrap_or(false))
}
