//! The `/_mock/` control plane and the equivalent handle methods.

mod common;

use common::*;
use serde_json::{json, Value};
use understudy_mock::{Dialect, ErrorKind, Fault, MockConfig, Recorded, Stats};

async fn put_fault(m: &understudy_mock::MockHandle, model: &str, body: &Value) -> reqwest::Response {
    client().put(format!("{}/_mock/faults/{model}", m.url())).json(body).send().await.unwrap()
}

async fn get(m: &understudy_mock::MockHandle, path: &str) -> Value {
    let resp = client().get(format!("{}{path}", m.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    json_of(resp).await
}

#[tokio::test]
async fn faults_can_be_set_listed_and_cleared_over_http() {
    let m = mock().await;
    let resp = put_fault(&m, "gpt-4o", &json!({"error": "rate_limit", "retry_after": "3"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["fault"], json!({"error": "rate_limit", "retry_after": "3"}));
    let resp = openai(&m, &openai_body("gpt-4o")).await;
    assert_eq!((resp.status().as_u16(), resp.headers()["retry-after"].to_str().unwrap()), (429, "3"));

    // A JSON string body uses the suffix syntax; `*` (even percent-encoded) means every model.
    assert_eq!(put_fault(&m, "%2A", &json!("error=server+latency=1ms")).await.status(), 200);
    assert_eq!(anthropic(&m, &anthropic_body("claude")).await.status(), 500);
    let faults = get(&m, "/_mock/faults").await;
    assert_eq!(faults["*"], json!({"error": "server", "latency": "1ms"}));
    assert_eq!(faults["gpt-4o"]["error"], "rate_limit");

    let resp = client().delete(format!("{}/_mock/faults/gpt-4o", m.url())).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(openai(&m, &openai_body("gpt-4o")).await.status(), 500, "the `*` rule remains");
    let resp = client().delete(format!("{}/_mock/faults", m.url())).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(openai(&m, &openai_body("gpt-4o")).await.status(), 200);
    assert_eq!(get(&m, "/_mock/faults").await, json!({}));
}

#[tokio::test]
async fn bad_fault_bodies_are_refused() {
    let m = mock().await;
    for body in [json!({"eror": "server"}), json!({"error": "nope"}), json!("latency=fast"), json!({"latency": 600})] {
        let resp = put_fault(&m, "m", &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert!(json_of(resp).await["error"].as_str().is_some());
    }
    let resp = client().get(format!("{}/_mock/nothing", m.url())).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn stats_count_every_request_before_any_fault() {
    let m = mock().await;
    openai(&m, &openai_body("gpt-4o")).await;
    openai(&m, &openai_body("gpt-4o+error=server")).await;
    let _ = client().post(format!("{}/v1/chat/completions", m.url())).json(&openai_body("gpt-4o+reset")).send().await;
    anthropic(&m, &anthropic_body("claude+error=overloaded")).await;
    gemini(&m, "gemini-2.5-flash", true, &gemini_body()).await.bytes().await.unwrap();
    // Requests refused for auth or validation count too (the last one names no model).
    client().post(format!("{}/v1/messages", m.url())).json(&anthropic_body("claude")).send().await.unwrap();
    openai(&m, &json!({"messages": []})).await;

    let stats: Stats = serde_json::from_value(get(&m, "/_mock/stats").await).unwrap();
    // Open connections come and go with the client pools; the counts must agree.
    let counts = |s: &Stats| Stats { open_connections: 0, ..s.clone() };
    assert_eq!(counts(&stats), counts(&m.stats()));
    assert_eq!(stats.total, 7);
    assert_eq!(stats.model("gpt-4o"), 3);
    assert_eq!(stats.model("claude"), 2);
    assert_eq!(stats.model("gemini-2.5-flash"), 1);
    assert_eq!(stats.dialect(Dialect::OpenAi), 4);
    assert_eq!(stats.dialect(Dialect::Anthropic), 2);
    assert_eq!(stats.dialect(Dialect::Gemini), 1);
    let raw = get(&m, "/_mock/stats").await;
    assert_eq!(raw["by_dialect"], json!({"openai": 4, "anthropic": 2, "gemini": 1}));
}

#[tokio::test]
async fn requests_are_recorded_with_credentials_redacted() {
    let m = mock().await;
    openai(&m, &openai_body("gpt-4o+latency=1ms")).await;
    anthropic(&m, &anthropic_body("claude")).await;
    client()
        .post(format!("{}?alt=sse&key=AIza-secret", gemini_url(&m, "gemini-2.5-flash", true)))
        .header("x-goog-api-key", "AIza-secret")
        .header("api-key", "azure-secret")
        .json(&gemini_body())
        .send()
        .await
        .unwrap();

    let all: Vec<Recorded> = serde_json::from_value(get(&m, "/_mock/requests").await).unwrap();
    assert_eq!(all, m.requests(None));
    assert_eq!(all.len(), 3);
    let dump = serde_json::to_string(&all).unwrap();
    for secret in ["sk-test-0123456789abcdef", "sk-ant-test", "AIza-secret", "azure-secret"] {
        assert!(!dump.contains(secret), "{secret} leaked: {dump}");
    }
    let first = &all[0];
    assert_eq!(
        (first.dialect, first.model.as_str(), first.raw_model.as_str()),
        (Dialect::OpenAi, "gpt-4o", "gpt-4o+latency=1ms")
    );
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.headers["authorization"], "[redacted]");
    assert_eq!(first.body["messages"][1]["content"], "What is the capital of Norway?");
    assert_eq!(all[1].headers["x-api-key"], "[redacted]");
    assert_eq!(all[1].headers["anthropic-version"], "2023-06-01");
    assert_eq!(all[2].headers["x-goog-api-key"], "[redacted]");
    assert_eq!(all[2].headers["api-key"], "[redacted]");
    assert!(all[2].path.contains("key=[redacted]"), "{}", all[2].path);
    assert!(all[0].seq < all[1].seq && all[1].seq < all[2].seq);

    let only: Vec<Recorded> = serde_json::from_value(get(&m, "/_mock/requests?model=claude&limit=5").await).unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].model, "claude");
    let last: Vec<Recorded> = serde_json::from_value(get(&m, "/_mock/requests?limit=2").await).unwrap();
    assert_eq!(last.iter().map(|r| r.dialect).collect::<Vec<_>>(), [Dialect::Anthropic, Dialect::Gemini]);
}

#[tokio::test]
async fn the_recorder_is_a_bounded_ring() {
    assert_eq!(MockConfig::default().record_capacity, 1000);
    let m = mock_with(MockConfig { record_capacity: 3, ..MockConfig::default() }).await;
    for i in 0..5 {
        openai(&m, &openai_body(&format!("m{i}"))).await;
    }
    let models: Vec<String> = m.requests(None).into_iter().map(|r| r.model).collect();
    assert_eq!(models, ["m2", "m3", "m4"]);
    assert_eq!(m.stats().total, 5, "counting is not bounded by the recorder");
}

#[tokio::test]
async fn reset_clears_faults_stats_and_recordings() {
    let m = mock().await;
    m.set_fault("m", Fault { error: Some(ErrorKind::Server), ..Fault::default() });
    assert_eq!(openai(&m, &openai_body("m")).await.status(), 500);
    let resp = client().post(format!("{}/_mock/reset", m.url())).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(m.stats().total, 0);
    assert!(m.requests(None).is_empty());
    assert_eq!(openai(&m, &openai_body("m")).await.status(), 200);

    m.set_fault("m", Fault::parse("error=timeout").unwrap());
    m.control().reset();
    assert_eq!(openai(&m, &openai_body("m")).await.status(), 200);
    assert_eq!(m.stats().total, 1);
}
