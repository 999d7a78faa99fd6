//! Embeddings over real sockets: OpenAI `/v1/embeddings` and Gemini `:batchEmbedContents`,
//! deterministic vectors, and the same faults and auth checks as chat.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use understudy_mock::{Fault, MockConfig};

async fn openai_embed(m: &understudy_mock::MockHandle, body: &Value, key: &str) -> reqwest::Response {
    client().post(format!("{}/v1/embeddings", m.url())).bearer_auth(key).json(body).send().await.unwrap()
}

async fn gemini_embed(m: &understudy_mock::MockHandle, model: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1beta/models/{model}:batchEmbedContents", m.url()))
        .header("x-goog-api-key", "AIza-test")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[tokio::test]
async fn openai_answers_have_the_real_shape_and_stable_vectors() {
    let m = mock().await;
    let body = json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]});
    let resp = openai_embed(&m, &body, "sk-test").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    let v = json_of(resp).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["object"], "embedding");
    let first = floats(&v["data"][0]["embedding"]);
    assert_eq!(first.len(), 8);
    let norm: f32 = first.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    // Same text, same vector; dimensions honoured; base64 when asked.
    let again = json_of(openai_embed(&m, &json!({"model": "x", "input": "hello world"}), "k").await).await;
    assert_eq!(floats(&again["data"][0]["embedding"]), first);
    let small = json_of(openai_embed(&m, &json!({"model": "x", "input": "a", "dimensions": 3}), "k").await).await;
    assert_eq!(small["data"][0]["embedding"].as_array().unwrap().len(), 3);
    let b64 = json!({"model": "x", "input": "a", "dimensions": 3, "encoding_format": "base64"});
    let b64 = json_of(openai_embed(&m, &b64, "k").await).await;
    assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 16, "12 bytes of f32");
}

#[tokio::test]
async fn gemini_batches_answer_in_order_with_the_same_vectors() {
    let m = mock().await;
    let req = |text: &str| json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}});
    let body = json!({"requests": [req("hello world"), req("bye")]});
    let resp = gemini_embed(&m, "gemini-embedding-001", &body).await;
    assert_eq!(resp.status(), 200);
    let v = json_of(resp).await;
    let vectors = v["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    let oa = json_of(openai_embed(&m, &json!({"model": "x", "input": "hello world"}), "k").await).await;
    assert_eq!(floats(&vectors[0]["values"]), floats(&oa["data"][0]["embedding"]));

    let mismatched = json!({"requests": [req("x")]});
    let resp = gemini_embed(&m, "other-model", &mismatched).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn faults_by_model_name_and_rule_apply_to_embeddings() {
    let m = mock().await;
    let resp = openai_embed(&m, &json!({"model": "e+error=unavailable", "input": "x"}), "k").await;
    assert_eq!(resp.status(), 503);
    let resp = openai_embed(&m, &json!({"model": "e+error=model_not_found", "input": "x"}), "k").await;
    assert_eq!(resp.status(), 404);
    let empty = json_of(openai_embed(&m, &json!({"model": "e+empty", "input": "x"}), "k").await).await;
    assert_eq!(empty["data"], json!([]));

    m.set_fault("gemini-embedding-001", Fault::parse("error=rate_limit+retry_after=3").unwrap());
    let body = json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "x"}]}}]});
    let resp = gemini_embed(&m, "gemini-embedding-001", &body).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");

    let started = Instant::now();
    let resp = openai_embed(&m, &json!({"model": "e+latency=150ms", "input": "x"}), "k").await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(m.stats().model("e"), 4);
}

#[tokio::test]
async fn keys_are_checked_as_for_chat() {
    let m = mock_with(MockConfig { api_keys: vec!["sk-good".into()], ..MockConfig::default() }).await;
    let body = json!({"model": "e", "input": "x"});
    assert_eq!(openai_embed(&m, &body, "sk-good").await.status(), 200);
    let resp = openai_embed(&m, &body, "sk-bad-key-123456").await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["error"]["code"], "invalid_api_key");
    let resp = openai_embed(&m, &json!({"model": "e"}), "sk-good").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"]["param"], "input");
}
