//! The gateway's own API: bad input gets a clear error in the caller's format, never a panic or
//! a hang; authentication; models, health and metrics endpoints.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUTE: &str = "  r:
    description: the test route
    fallback_chain:
      - { provider: openai, model: m }
";

async fn raw_post(env: &Env, path: &str, body: &'static str) -> Reply {
    let r = env
        .client
        .post(format!("{}{path}", env.gw.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Reply { status, headers, text: r.text().await.unwrap() }
}

fn assert_openai_error(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    v
}

fn assert_anthropic_error(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert!(v["error"]["type"].is_string() && v["error"]["message"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn malformed_json_gets_a_400_in_the_callers_shape() {
    let env = env(ROUTE).await;
    assert_openai_error(&raw_post(&env, "/v1/chat/completions", "{not json").await, 400);
    assert_anthropic_error(&raw_post(&env, "/v1/messages", "{not json").await, 400);
    assert_openai_error(&raw_post(&env, "/v1/chat/completions", "").await, 400);
    assert_openai_error(&raw_post(&env, "/v1/chat/completions", "[1,2]").await, 400);
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let env = env(ROUTE).await;
    let v = assert_openai_error(&env.chat(json!({"model": "r", "messages": "hello"})).await, 400);
    assert_eq!(v["error"]["param"], "messages");
    let v = assert_openai_error(
        &env.chat(json!({"model": "r", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"})).await,
        400,
    );
    assert_eq!(v["error"]["param"], "temperature");
    assert_openai_error(&env.chat(json!({"messages": [{"role": "user", "content": "x"}]})).await, 400);
    assert_anthropic_error(
        &env.messages(json!({"model": "r", "messages": [{"role": "user", "content": "x"}]})).await,
        400,
    );
    assert_eq!(env.upstream("m"), 0, "nothing reached a provider");
}

#[tokio::test]
async fn unknown_routes_are_404_model_not_found() {
    let env = env(ROUTE).await;
    let v = assert_openai_error(&env.chat(openai_body("nope")).await, 404);
    assert_eq!(v["error"]["code"], "model_not_found");
    let v = assert_anthropic_error(&env.messages(anthropic_body("nope")).await, 404);
    assert_eq!(v["error"]["type"], "not_found_error");
    // `provider/model` addresses a configured provider directly.
    let r = env.chat(openai_body("openai/direct")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/direct");
    assert_openai_error(&env.chat(openai_body("nosuchprovider/x")).await, 404);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let env = env_with(ROUTE, "server:\n  max_body: 1KB\n").await;
    let big = "x".repeat(4000);
    let r = env.chat(json!({"model": "r", "messages": [{"role": "user", "content": big}]})).await;
    assert_openai_error(&r, 413);
    let r = env.messages(json!({"model": "r", "max_tokens": 5, "messages": [{"role": "user", "content": big}]})).await;
    assert_anthropic_error(&r, 413);
}

#[tokio::test]
async fn callers_must_authenticate_when_keys_are_configured() {
    std::env::set_var("UNDERSTUDY_TEST_CALLER_KEY", "caller-secret-1");
    let env = env_with(ROUTE, "server:\n  api_keys: [\"${UNDERSTUDY_TEST_CALLER_KEY}\", other-key]\n").await;
    let url = format!("{}/v1/chat/completions", env.gw.url());
    let send = |auth: Option<(&'static str, &'static str)>| {
        let mut rb = env.client.post(&url).json(&openai_body("r"));
        if let Some((k, v)) = auth {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some(("authorization", "Bearer wrong"))).await.unwrap().status(), 401);
    assert_eq!(send(Some(("authorization", "Bearer caller-secret-1"))).await.unwrap().status(), 200);
    assert_eq!(send(Some(("authorization", "Bearer other-key"))).await.unwrap().status(), 200);
    assert_eq!(send(Some(("x-api-key", "other-key"))).await.unwrap().status(), 200);
    let r = env.post("/v1/messages", &anthropic_body("r"), &[("x-api-key", "bad")]).await;
    assert_anthropic_error(&r, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    // Health stays open for load balancers.
    assert_eq!(env.client.get(format!("{}/healthz", env.gw.url())).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_non_loopback_listener_requires_keys() {
    let loaded = understudy::config::load_str(&config_yaml("http://127.0.0.1:1", ROUTE, ""), "t.yaml").unwrap();
    let err = understudy_cli::server::start(&loaded.config, "0.0.0.0:0".parse().unwrap()).await.err().unwrap();
    assert!(err.to_string().contains("without caller keys"), "{err}");
}

#[tokio::test]
async fn models_health_and_metrics() {
    let env = env(ROUTE).await;
    let v: Value = env.client.get(format!("{}/v1/models", env.gw.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "r");
    assert_eq!(v["data"][0]["fallback_chain"], json!(["openai/m"]));
    let h: Value = env.client.get(format!("{}/healthz", env.gw.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    env.chat(openai_body("r")).await;
    let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    for name in [
        "understudy_requests_total",
        "understudy_attempts_total",
        "understudy_overhead_seconds",
        "understudy_request_duration_seconds",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
    assert!(!m.contains("test-openai-key"), "no secrets in metrics");
}

#[tokio::test]
async fn slow_header_senders_are_disconnected() {
    let env = env_with(ROUTE, "server:\n  header_read_timeout: 300ms\n").await;
    let mut s = tokio::net::TcpStream::connect(env.gw.addr()).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was closed after the header-read timeout");
}

#[tokio::test]
async fn responses_name_the_request() {
    let env = env(ROUTE).await;
    let r = env.post("/v1/chat/completions", &openai_body("r"), &[("x-request-id", "abc-123")]).await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    assert_eq!(r.header("x-understudy-route"), Some("r"));
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.header("x-request-id").map(str::len), Some(32));
}
