//! Anthropic dialect over real sockets: answers, event sequence, errors, validation, faults.

mod common;

use common::*;
use serde_json::{json, Value};

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_deref().unwrap_or("")).collect()
}

fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .filter_map(|e| e.json()["delta"]["text"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn non_stream_answer_has_the_real_shape() {
    let m = mock().await;
    let resp = anthropic(&m, &anthropic_body("claude-sonnet-4-5")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["request-id"].to_str().unwrap().starts_with("req_"));
    let body = json_of(resp).await;
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["content"], json!([{"type": "text", "text": "Simulated answer from claude-sonnet-4-5."}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(body["usage"]["input_tokens"], 8);
    assert_eq!(body["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn stream_follows_the_documented_event_sequence() {
    let m = mock().await;
    let resp = anthropic(&m, &with_stream(anthropic_body("claude-sonnet-4-5"))).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (raw, err) = read_all(resp).await;
    assert!(err.is_none());
    let events = sse_events(&raw, "\n");
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // data.type always equals the event name.
    assert!(events.iter().all(|e| e.json()["type"] == e.event.as_deref().unwrap()));
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["stop_reason"], Value::Null);
    assert_eq!(start["message"]["usage"]["input_tokens"], 8);
    assert_eq!(events[1].json()["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(text_of(&events), "Simulated answer from claude-sonnet-4-5.");
    let delta = events[8].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4, "message_delta usage is cumulative");
}

/// (kind, status, error.type); `None` means the CDN's HTML page.
const ERRORS: [(&str, u16, Option<&str>); 14] = [
    ("invalid_key", 401, Some("authentication_error")),
    ("account_deactivated", 401, Some("authentication_error")),
    ("forbidden", 403, Some("permission_error")),
    ("model_not_found", 404, Some("not_found_error")),
    ("context_length", 400, Some("invalid_request_error")),
    ("content_policy", 400, Some("invalid_request_error")),
    ("rate_limit", 429, Some("rate_limit_error")),
    ("quota_exhausted", 429, Some("rate_limit_error")),
    ("server", 500, Some("api_error")),
    ("bad_gateway", 502, None),
    ("unavailable", 503, Some("api_error")),
    ("overloaded", 529, Some("overloaded_error")),
    ("bad_request", 400, Some("invalid_request_error")),
    ("timeout", 504, Some("timeout_error")),
];

#[tokio::test]
async fn every_error_kind_has_the_real_status_and_body() {
    let m = mock().await;
    for (kind, status, typ) in ERRORS {
        for stream in [false, true] {
            let mut body = anthropic_body(&format!("claude-3-opus+error={kind}"));
            body["stream"] = json!(stream);
            let resp = anthropic(&m, &body).await;
            assert_eq!(resp.status(), status, "{kind}");
            assert!(resp.headers().contains_key("request-id"), "{kind}");
            let Some(typ) = typ else {
                assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
                continue;
            };
            let body = json_of(resp).await;
            assert_eq!(body["type"], "error", "{kind}");
            assert_eq!(body["error"]["type"], typ, "{kind}");
            assert!(body["request_id"].as_str().unwrap().starts_with("req_"), "{kind}");
            assert!(body["error"]["message"].as_str().is_some_and(|s| !s.is_empty()), "{kind}");
        }
    }
}

#[tokio::test]
async fn error_details_gateways_classify_on() {
    let m = mock().await;
    let body = json_of(anthropic(&m, &anthropic_body("claude-x+error=model_not_found")).await).await;
    assert_eq!(body["error"]["message"], "model: claude-x");
    let body = json_of(anthropic(&m, &anthropic_body("c+error=context_length")).await).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("prompt is too long"));

    // The spend cap is a 429 that must not be retried: details.error_code, no Retry-After.
    let resp = anthropic(&m, &anthropic_body("c+error=quota_exhausted")).await;
    assert!(!resp.headers().contains_key("retry-after"));
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let body = json_of(resp).await;
    assert_eq!(body["error"]["details"]["error_code"], "enforced_spend_limit_reached");

    let resp = anthropic(&m, &anthropic_body("c+error=rate_limit+retry_after=7")).await;
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["anthropic-ratelimit-requests-remaining"], "0");
    let reset = resp.headers()["anthropic-ratelimit-requests-reset"].to_str().unwrap();
    assert!(reset.len() == 20 && reset.ends_with('Z') && reset.as_bytes()[10] == b'T', "{reset}");

    let resp = anthropic(&m, &anthropic_body("c+status=402")).await;
    assert_eq!(resp.status(), 402);
    assert_eq!(json_of(resp).await["error"]["type"], "billing_error");
}

#[tokio::test]
async fn headers_are_required_like_the_real_api() {
    let m = mock().await;
    let url = format!("{}/v1/messages", m.url());
    let body = anthropic_body("c");
    let resp = client().post(&url).header("anthropic-version", "2023-06-01").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err = json_of(resp).await;
    assert_eq!(err["error"]["type"], "authentication_error");
    assert_eq!(err["error"]["message"], "x-api-key header is required");

    let resp = client().post(&url).header("x-api-key", "k").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err = json_of(resp).await;
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["message"], "anthropic-version: header is required");

    // OAuth tokens go in Authorization: Bearer.
    let resp = client()
        .post(&url)
        .bearer_auth("tok")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn invalid_requests_get_400_invalid_request_error() {
    let m = mock().await;
    let user = json!({"role": "user", "content": "hi"});
    let assistant = json!({"role": "assistant", "content": "hello"});
    let cases = [
        (json!({"model": "c", "messages": [user]}), "max_tokens: Field required"),
        (json!({"max_tokens": 5, "messages": [user]}), "model: Field required"),
        (json!({"model": "c", "max_tokens": 5}), "messages: Field required"),
        (
            json!({"model": "c", "max_tokens": 5, "messages": [assistant, user]}),
            "first message must use the \"user\" role",
        ),
        (json!({"model": "c", "max_tokens": 5, "messages": [user, user]}), "roles must alternate"),
        (
            json!({"model": "c", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}, user]}),
            "Unexpected role \"system\"",
        ),
        (
            json!({"model": "c", "max_tokens": 5, "messages": [user], "stream_options": {"include_usage": true}}),
            "stream_options: Extra inputs are not permitted",
        ),
    ];
    for (body, want) in cases {
        let resp = anthropic(&m, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err = json_of(resp).await;
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert!(err["error"]["message"].as_str().unwrap().contains(want), "{err}");
    }
}

#[tokio::test]
async fn cut_stall_and_no_done_break_the_stream() {
    let m = mock().await;
    let (raw, err) = read_all(anthropic(&m, &with_stream(anthropic_body("c+cut_after=1"))).await).await;
    assert!(err.is_some());
    let events = sse_events(&raw, "\n");
    assert_eq!(text_of(&events), "Simulated");
    assert!(!names(&events).contains(&"message_stop"));

    let (raw, err) = read_all(anthropic(&m, &with_stream(anthropic_body("c+no_done"))).await).await;
    assert!(err.is_none());
    let events = sse_events(&raw, "\n");
    assert_eq!(*names(&events).last().unwrap(), "message_delta");
}

#[tokio::test(start_paused = true)]
async fn stall_after_sends_nothing_more() {
    use futures::StreamExt;
    let m = mock().await;
    let resp = anthropic(&m, &with_stream(anthropic_body("c+stall_after=0"))).await;
    let mut stream = resp.bytes_stream();
    let mut raw = String::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next()).await {
        raw.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert_eq!(names(&sse_events(&raw, "\n")), ["message_start", "content_block_start", "ping"]);
}

#[tokio::test]
async fn error_after_and_malformed_at() {
    let m = mock().await;
    let (raw, _) = read_all(anthropic(&m, &with_stream(anthropic_body("c+error_after=3"))).await).await;
    let events = sse_events(&raw, "\n");
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(last.json()["error"]["type"], "overloaded_error");
    assert_eq!(text_of(&events[..events.len() - 1]), "Simulated answer from");

    let (raw, _) = read_all(anthropic(&m, &with_stream(anthropic_body("c+malformed_at=0"))).await).await;
    let events = sse_events(&raw, "\n");
    let bad = events.iter().position(|e| serde_json::from_str::<Value>(&e.data).is_err()).unwrap();
    assert_eq!(events[bad - 1].event.as_deref(), Some("ping"));
    assert_eq!(*names(&events).last().unwrap(), "message_stop");
}

#[tokio::test]
async fn empty_truncated_refusal_and_tool_use() {
    let m = mock().await;
    let body = json_of(anthropic(&m, &anthropic_body("c+empty")).await).await;
    assert_eq!(body["content"], json!([]));
    assert_eq!(body["stop_reason"], "end_turn");
    let body = json_of(anthropic(&m, &anthropic_body("c+truncated")).await).await;
    assert_eq!(body["stop_reason"], "max_tokens");
    let body = json_of(anthropic(&m, &anthropic_body("c+content_filter")).await).await;
    assert_eq!(body["stop_reason"], "refusal");

    let mut req = anthropic_body("c+tool_call");
    req["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let body = json_of(anthropic(&m, &req).await).await;
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!((block["type"].as_str(), block["name"].as_str()), (Some("tool_use"), Some("get_weather")));
    assert_eq!(block["input"], json!({}));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));

    let (raw, _) = read_all(anthropic(&m, &with_stream(req)).await).await;
    let events = sse_events(&raw, "\n");
    assert_eq!(events[1].json()["content_block"]["type"], "tool_use");
    assert_eq!(events[3].json()["delta"], json!({"type": "input_json_delta", "partial_json": "{}"}));
    assert_eq!(events[5].json()["delta"]["stop_reason"], "tool_use");

    let (raw, _) = read_all(anthropic(&m, &with_stream(anthropic_body("c+empty"))).await).await;
    assert_eq!(names(&sse_events(&raw, "\n")), ["message_start", "ping", "message_delta", "message_stop"]);
}

#[tokio::test]
async fn models_listing_with_anthropic_headers() {
    let m = mock().await;
    let resp = client()
        .get(format!("{}/v1/models", m.url()))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["has_more"], false);
    assert!(body["data"].as_array().unwrap().iter().all(|m| m["type"] == "model"));
}
