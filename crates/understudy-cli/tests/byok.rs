//! Bring your own key over real HTTP: the caller's key reaches the provider, a bad one fails over
//! without taking the gateway's deployment away from others, `fallback_to_gateway_keys` on and
//! off, and the key shows up in no header, error body or log line.

mod common;

use common::*;
use serde_json::{json, Value};
use understudy_mock::MockConfig;

const GOOD: &str = "sk-caller-good-0000111122223333";
const BAD: &str = "sk-caller-wrong-9999888877776666";
const KEY_HEADER: &str = "x-understudy-openai-key";

/// A mock that accepts the gateway's keys and one caller key.
fn strict_mock() -> MockConfig {
    let keys = ["test-openai-key", "test-anthropic-key", "test-gemini-key", GOOD];
    MockConfig { api_keys: keys.map(String::from).to_vec(), ..MockConfig::default() }
}

async fn chat_with_key(env: &Env, route: &str, key: &str) -> Reply {
    env.post("/v1/chat/completions", &openai_body(route), &[(KEY_HEADER, key)]).await
}

/// No part of a reply mentions `secret`.
fn assert_absent(r: &Reply, secret: &str) {
    assert!(!r.text.contains(secret), "body: {}", r.text);
    for (name, value) in &r.headers {
        assert!(!value.as_bytes().windows(secret.len()).any(|w| w == secret.as_bytes()), "header {name}");
    }
}

#[tokio::test]
async fn the_callers_key_reaches_the_provider_even_when_the_gateways_is_refused() {
    // The mock knows the caller's key but not this provider's configured one.
    let mock = MockConfig { api_keys: vec![GOOD.into()], ..MockConfig::default() };
    let env = env_full(
        "  r:
    byok: { providers: [openai] }
    fallback_chain:
      - { provider: openai, model: gpt-4o }
",
        "",
        mock,
    )
    .await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 503, "the gateway's own key is refused: {}", r.text);
    // That auth failure took the deployment out of rotation for the gateway's key only.
    let r = chat_with_key(&env, "r", GOOD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/gpt-4o");
    assert_eq!(r.attempts(), 1);
    assert_absent(&r, GOOD);
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.reasons(), "openai/gpt-4o=circuit_open", "still out for the gateway's key");

    // Embeddings take the caller's key the same way.
    let r = env.post("/v1/embeddings", &json!({"model": "r", "input": "x"}), &[(KEY_HEADER, GOOD)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/gpt-4o");
}

#[tokio::test]
async fn a_bad_callers_key_fails_over_and_leaves_the_deployment_to_everyone_else() {
    let env = env_full(
        "  r:
    byok: { providers: [openai] }
    breaker: { consecutive_failures: 2 }
    fallback_chain:
      - { provider: openai, model: gpt-4o }
      - { provider: anthropic, model: claude-haiku-4-5 }
",
        "",
        strict_mock(),
    )
    .await;
    for _ in 0..5 {
        let r = chat_with_key(&env, "r", BAD).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.served_by(), "anthropic/claude-haiku-4-5", "other providers keep the gateway's keys");
        assert_eq!(r.reasons(), "openai/gpt-4o=auth");
        assert_absent(&r, BAD);
    }
    assert_eq!(env.upstream("gpt-4o"), 5, "never skipped: the bad key disabled nothing");
    // Another caller, with the gateway's key, still gets the first choice.
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/gpt-4o");
    assert_eq!(r.attempts(), 1);
    let state: Value =
        env.client.get(format!("{}/admin/state", env.gw.url())).send().await.unwrap().json().await.unwrap();
    let text = state.to_string();
    assert!(!text.contains(BAD), "admin state never holds a caller's key");
}

#[tokio::test]
async fn without_fallback_the_gateways_key_is_never_used_for_that_provider() {
    let env = env_full(
        "  r:
    byok: { providers: [openai] }
    fallback_chain:
      - { provider: openai, model: gpt-4o }
      - { provider: openai, model: gpt-4o-mini }
      - { provider: anthropic, model: claude-haiku-4-5 }
  only_openai:
    byok: { providers: [openai] }
    fallback_chain:
      - { provider: openai, model: gpt-4o }
",
        "",
        strict_mock(),
    )
    .await;
    let r = chat_with_key(&env, "r", BAD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "anthropic/claude-haiku-4-5");
    assert_eq!(r.reasons(), "openai/gpt-4o-mini=caller_key_rejected, openai/gpt-4o=auth");
    assert_eq!(env.upstream("gpt-4o-mini"), 0, "skipped: the same key would be refused again");

    let r = chat_with_key(&env, "only_openai", BAD).await;
    assert_eq!(r.status, 401, "the caller's key is the caller's to fix: {}", r.text);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "caller_key_rejected");
    assert_eq!(e["attempts"][0]["caller_key"], true);
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert_absent(&r, BAD);
    assert_eq!(env.upstream("gpt-4o"), 2);
}

#[tokio::test]
async fn with_fallback_the_gateways_key_stands_in_at_once() {
    let env = env_full(
        "  r:
    byok: { providers: [openai], fallback_to_gateway_keys: true }
    fallback_chain:
      - { provider: openai, model: gpt-4o }
      - { provider: openai, model: gpt-4o-mini }
",
        "",
        strict_mock(),
    )
    .await;
    let r = chat_with_key(&env, "r", BAD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/gpt-4o", "the same deployment, with the gateway's key");
    assert_eq!(r.attempts(), 2);
    assert_eq!(r.reasons(), "openai/gpt-4o=auth");
    assert_eq!(env.upstream("gpt-4o"), 2);
    assert_absent(&r, BAD);
    let r = chat_with_key(&env, "r", GOOD).await;
    assert_eq!((r.status, r.attempts()), (200, 1), "a good caller key is used first: {}", r.text);
}

#[tokio::test]
async fn by_default_only_providers_at_their_official_url_take_callers_keys() {
    // No `byok.providers`: the loopback `openai` provider is not api.openai.com, so the caller's
    // key is not sent there and the gateway's key is used.
    let env = env_full(
        "  r:
    fallback_chain:
      - { provider: openai, model: gpt-4o }
",
        "",
        strict_mock(),
    )
    .await;
    let r = chat_with_key(&env, "r", BAD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.attempts(), 1);
}

#[tokio::test]
async fn bad_key_headers_are_the_callers_mistake() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: gpt-4o }
")
    .await;
    for (name, value) in [("x-understudy-bedrock-key", "sk-some-secret-value-1"), ("x-understudy-openai-key", " ")] {
        let r = env.post("/v1/chat/completions", &openai_body("r"), &[(name, value)]).await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
        assert_eq!(r.json()["error"]["param"], name);
        assert_absent(&r, "sk-some-secret-value-1");
        let r = env.post("/v1/embeddings", &json!({"model": "r", "input": "x"}), &[(name, value)]).await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
    }
    let r = env.messages(anthropic_body("r")).await;
    assert_eq!(r.status, 200);
    assert_eq!(env.upstream("gpt-4o"), 1);
}

/// `understudy serve` as users run it: callers' keys appear in no log line.
#[tokio::test]
async fn callers_keys_never_reach_the_log() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), strict_mock()).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "providers:\n  openai: {{ kind: openai, base_url: \"{url}/v1\", api_key: test-openai-key }}\n  backup: {{ kind: anthropic, base_url: \"{url}\", api_key: test-anthropic-key }}\nroutes:\n  r:\n    byok: {{ providers: [openai] }}\n    fallback_chain:\n      - {{ provider: openai, model: gpt-4o }}\n      - {{ provider: backup, model: b }}\n  solo:\n    byok: {{ providers: [openai] }}\n    fallback_chain:\n      - {{ provider: openai, model: gpt-4o }}\n",
        url = mock.url()
    );
    let dir = std::env::temp_dir().join(format!("understudy-byok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("byok.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("UNDERSTUDY_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let send = |path: &'static str, body: Value, key: &'static str| {
        let rb = client.post(format!("{base}{path}")).header(KEY_HEADER, key).json(&body);
        async move { rb.send().await }
    };
    let mut up = false;
    for _ in 0..100 {
        if send("/v1/chat/completions", openai_body("r"), BAD).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the gateway started");
    let mut bodies = Vec::new();
    for (path, body, key) in [
        ("/v1/chat/completions", openai_body("r"), GOOD),
        ("/v1/chat/completions", openai_body("solo"), BAD),
        ("/v1/embeddings", json!({"model": "solo", "input": "x"}), BAD),
        ("/v1/embeddings", json!({"model": "r", "input": "x"}), GOOD),
    ] {
        let r = send(path, body, key).await.unwrap();
        let headers = format!("{:?}", r.headers());
        bodies.push(format!("{} {headers} {}", r.status(), r.text().await.unwrap()));
    }
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while lines.iter().filter(|l: &&String| l.contains("understudy::request")).count() < 5
        && std::time::Instant::now() < deadline
    {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = lines.join("\n");
    assert!(all.matches("understudy::request").count() >= 5, "one line per request:\n{all}");
    assert!(all.contains(r#"caller_key\":true"#), "the trace says which attempts used a caller's key:\n{all}");
    for secret in [GOOD, BAD] {
        assert!(!all.contains(secret), "a caller's key in the log:\n{all}");
        for b in &bodies {
            assert!(!b.contains(secret), "a caller's key in a reply: {b}");
        }
    }
    assert!(bodies[1].starts_with("401"), "{}", bodies[1]);
}
