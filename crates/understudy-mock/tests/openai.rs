//! OpenAI dialect over real sockets: answers, streams, errors, validation, stream faults.

mod common;

use common::*;
use serde_json::{json, Value};
use understudy_mock::MockConfig;

#[tokio::test]
async fn non_stream_answer_has_the_real_shape() {
    let m = mock().await;
    let resp = openai(&m, &openai_body("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body = json_of(resp).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Simulated answer from gpt-4o.");
    assert_eq!(choice["finish_reason"], "stop");
    // 2 + 6 prompt words, 4 answer words.
    assert_eq!(body["usage"]["prompt_tokens"], 8);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(body["usage"]["total_tokens"], 12);
}

#[tokio::test]
async fn the_base_model_is_echoed_and_text_is_configurable() {
    let m = mock_with(MockConfig { text: Some("Hello from {model} today".into()), ..MockConfig::default() }).await;
    let body = json_of(openai(&m, &openai_body("gpt-4o-mini+latency=1ms")).await).await;
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello from gpt-4o-mini today");
    let body = json_of(openai(&m, &openai_body(r#"m+text="a + b"+chunks=5"#)).await).await;
    assert_eq!(body["choices"][0]["message"]["content"], "a + b a +");
    assert_eq!(body["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn stream_with_usage_follows_the_documented_sequence() {
    let m = mock().await;
    let mut body = with_stream(openai_body("gpt-4o"));
    body["stream_options"] = json!({"include_usage": true});
    let resp = openai(&m, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (raw, err) = read_all(resp).await;
    assert!(err.is_none());
    let events = sse_events(&raw, "\n");
    assert!(events.iter().all(|e| e.event.is_none()), "OpenAI streams have no event names");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    let id = chunks[0]["id"].clone();
    assert!(chunks.iter().all(|c| c["id"] == id && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    // Every chunk but the last carries "usage": null; the last has no choices and the totals.
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert!(rest.iter().all(|c| c.get("usage") == Some(&Value::Null)));
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 4);
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 8);
    let finish = &rest.last().unwrap()["choices"][0];
    assert_eq!(finish["finish_reason"], "stop");
    assert_eq!(finish["delta"], json!({}));
    // One word per content chunk.
    let words: Vec<&str> = rest.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(words, ["", "Simulated", " answer", " from", " gpt-4o."]);
    assert_eq!(openai_text(&events), "Simulated answer from gpt-4o.");
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_field() {
    let m = mock().await;
    let (raw, _) = read_all(openai(&m, &with_stream(openai_body("gpt-4o"))).await).await;
    let events = sse_events(&raw, "\n");
    assert_eq!(events.len(), 1 + 4 + 1 + 1);
    assert!(events.iter().filter(|e| e.data != "[DONE]").all(|e| e.json().get("usage").is_none()));
}

/// (kind, status, error.type, error.code); `None` type means an HTML page from the CDN.
const ERRORS: [(&str, u16, Option<&str>, Option<&str>); 14] = [
    ("invalid_key", 401, Some("invalid_request_error"), Some("invalid_api_key")),
    ("account_deactivated", 401, Some("invalid_request_error"), Some("account_deactivated")),
    ("forbidden", 403, Some("request_forbidden"), Some("unsupported_country_region_territory")),
    ("model_not_found", 404, Some("invalid_request_error"), Some("model_not_found")),
    ("context_length", 400, Some("invalid_request_error"), Some("context_length_exceeded")),
    ("content_policy", 400, Some("invalid_request_error"), Some("invalid_prompt")),
    ("rate_limit", 429, Some("requests"), Some("rate_limit_exceeded")),
    ("quota_exhausted", 429, Some("insufficient_quota"), Some("insufficient_quota")),
    ("server", 500, Some("server_error"), None),
    ("bad_gateway", 502, None, None),
    ("unavailable", 503, Some("service_unavailable_error"), None),
    ("overloaded", 503, Some("service_unavailable_error"), Some("server_is_overloaded")),
    ("bad_request", 400, Some("invalid_request_error"), None),
    ("timeout", 504, None, None),
];

#[tokio::test]
async fn every_error_kind_has_the_real_status_and_body() {
    let m = mock().await;
    for (kind, status, typ, code) in ERRORS {
        for stream in [false, true] {
            let mut body = openai_body(&format!("gpt-4o+error={kind}"));
            body["stream"] = json!(stream);
            let resp = openai(&m, &body).await;
            assert_eq!(resp.status(), status, "{kind}");
            assert!(resp.headers().contains_key("x-request-id"), "{kind}");
            let Some(typ) = typ else {
                assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
                assert!(resp.text().await.unwrap().contains(&status.to_string()));
                continue;
            };
            let err = &json_of(resp).await["error"];
            assert_eq!(err["type"], typ, "{kind}");
            assert_eq!(err["code"].as_str(), code, "{kind}");
            assert!(err["message"].as_str().is_some_and(|s| !s.is_empty()), "{kind}");
            assert!(err.get("param").is_some(), "{kind}: param is always present");
        }
    }
}

#[tokio::test]
async fn error_messages_carry_the_details_gateways_parse() {
    let m = mock().await;
    let err = json_of(openai(&m, &openai_body("gpt-4o+error=model_not_found")).await).await;
    assert_eq!(err["error"]["message"], "The model `gpt-4o` does not exist or you do not have access to it.");
    let err = json_of(openai(&m, &openai_body("m+error=context_length")).await).await;
    assert!(err["error"]["message"].as_str().unwrap().contains("maximum context length"));
    assert_eq!(err["error"]["param"], "messages");
    let err = json_of(openai(&m, &openai_body("m+error=invalid_key")).await).await;
    assert!(err["error"]["message"].as_str().unwrap().starts_with("Incorrect API key provided: sk-"));
}

#[tokio::test]
async fn rate_limit_reflects_retry_after_in_headers_and_message() {
    let m = mock().await;
    let resp = openai(&m, &openai_body("gpt-4o+error=rate_limit+retry_after=2")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(resp.headers()["x-ratelimit-reset-requests"], "2s");
    assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
    let msg = json_of(resp).await["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("Please try again in 2s."), "{msg}");

    // Without a delay there is no hint at all, and quota errors have no Retry-After.
    let resp = openai(&m, &openai_body("gpt-4o+error=rate_limit")).await;
    assert!(!resp.headers().contains_key("retry-after"));
    assert!(!resp.headers().contains_key("x-ratelimit-reset-requests"));
    assert!(!json_of(resp).await["error"]["message"].as_str().unwrap().contains("try again in"));

    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    let resp = openai(&m, &openai_body(&format!("gpt-4o+error=server+retry_after={date}"))).await;
    assert_eq!(resp.headers()["retry-after"], date);
}

#[tokio::test]
async fn raw_status_uses_the_generic_body() {
    let m = mock().await;
    for (status, typ) in [(409, "invalid_request_error"), (500, "server_error"), (529, "server_error")] {
        let resp = openai(&m, &openai_body(&format!("m+status={status}"))).await;
        assert_eq!(resp.status(), status);
        assert_eq!(json_of(resp).await["error"]["type"], typ);
    }
    // `status` overrides the status of a named kind, keeping its body.
    let resp = openai(&m, &openai_body("m+error=overloaded+status=500")).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(json_of(resp).await["error"]["code"], "server_is_overloaded");
}

#[tokio::test]
async fn invalid_requests_get_400_invalid_request_error() {
    let m = mock().await;
    let cases = [
        (json!({"messages": [{"role": "user", "content": "x"}]}), "you must provide a model parameter"),
        (json!({"model": "m", "messages": []}), "[] is too short - 'messages'"),
        (json!({"model": "m"}), "Missing required parameter: 'messages'."),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "r"}]}),
            "must be a response to a preceeding message with 'tool_calls'",
        ),
    ];
    for (body, want) in cases {
        let resp = openai(&m, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err = json_of(resp).await;
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert!(err["error"]["message"].as_str().unwrap().contains(want), "{err}");
    }
    let resp = client()
        .post(format!("{}/v1/chat/completions", m.url()))
        .bearer_auth("k")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A fault suffix that does not parse is the caller's mistake too.
    let resp = openai(&m, &openai_body("m+error=nope")).await;
    assert_eq!(resp.status(), 400);
    assert!(json_of(resp).await["error"]["message"].as_str().unwrap().contains("bad fault suffix"));
}

#[tokio::test]
async fn auth_is_required_and_keys_can_be_restricted() {
    let m = mock_with(MockConfig { api_keys: vec!["sk-good-key-123456".into()], ..MockConfig::default() }).await;
    let url = format!("{}/v1/chat/completions", m.url());
    let resp = client().post(&url).json(&openai_body("m")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(json_of(resp).await["error"]["message"].as_str().unwrap().contains("You didn't provide an API key"));
    let resp = client().post(&url).bearer_auth("sk-bad-key-0000000").json(&openai_body("m")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(json_of(resp).await["error"]["code"], "invalid_api_key");
    let resp = client().post(&url).bearer_auth("sk-good-key-123456").json(&openai_body("m")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn cut_after_closes_without_terminator() {
    let m = mock().await;
    let resp = openai(&m, &with_stream(openai_body("m+cut_after=2"))).await;
    assert_eq!(resp.status(), 200);
    let (raw, err) = read_all(resp).await;
    assert!(err.is_some(), "the body must end in an error, not cleanly");
    let events = sse_events(&raw, "\n");
    assert_eq!(openai_text(&events), "Simulated answer");
    assert!(!raw.contains("[DONE]") && !raw.contains("finish_reason\":\"stop"));
}

#[tokio::test(start_paused = true)]
async fn stall_after_keeps_the_connection_silent() {
    use futures::StreamExt;
    let m = mock().await;
    let resp = openai(&m, &with_stream(openai_body("m+stall_after=1"))).await;
    let mut stream = resp.bytes_stream();
    let mut raw = String::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), stream.next()).await {
            Ok(Some(chunk)) => raw.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
            Ok(None) => panic!("a stalled stream must not end"),
            Err(_) => break,
        }
    }
    assert_eq!(openai_text(&sse_events(&raw, "\n")), "Simulated");
}

#[tokio::test]
async fn malformed_at_inserts_a_broken_frame_and_continues() {
    let m = mock().await;
    let (raw, err) = read_all(openai(&m, &with_stream(openai_body("m+malformed_at=1"))).await).await;
    assert!(err.is_none());
    let events = sse_events(&raw, "\n");
    let broken: Vec<_> = events.iter().filter(|e| serde_json::from_str::<Value>(&e.data).is_err()).collect();
    assert_eq!(broken.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["{\"choices\":[{", "[DONE]"]);
    // The broken frame comes right after the first content chunk.
    let pos = events.iter().position(|e| e.data == "{\"choices\":[{").unwrap();
    assert_eq!(events[pos - 1].json()["choices"][0]["delta"]["content"], "Simulated");
    let good: Vec<Event> = events.into_iter().filter(|e| e.data != "{\"choices\":[{").collect();
    assert_eq!(openai_text(&good), "Simulated answer from m.");
}

#[tokio::test]
async fn no_done_omits_only_the_terminator() {
    let m = mock().await;
    let (raw, err) = read_all(openai(&m, &with_stream(openai_body("m+no_done"))).await).await;
    assert!(err.is_none());
    let events = sse_events(&raw, "\n");
    assert_ne!(events.last().unwrap().data, "[DONE]");
    assert_eq!(events.last().unwrap().json()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn error_after_sends_an_in_band_error() {
    let m = mock().await;
    let (raw, err) = read_all(openai(&m, &with_stream(openai_body("m+error_after=2"))).await).await;
    assert!(err.is_none(), "the HTTP body itself ends cleanly");
    let events = sse_events(&raw, "\n");
    let last = events.last().unwrap().json();
    assert_eq!(last["error"]["type"], "server_error");
    assert_eq!(openai_text(&events[..events.len() - 1]), "Simulated answer");
    assert!(!raw.contains("[DONE]"));
}

#[tokio::test]
async fn empty_truncated_and_content_filter_answers() {
    let m = mock().await;
    let body = json_of(openai(&m, &openai_body("m+empty")).await).await;
    assert_eq!(body["choices"][0]["message"]["content"], "");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["completion_tokens"], 0);
    let body = json_of(openai(&m, &openai_body("m+truncated")).await).await;
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    let body = json_of(openai(&m, &openai_body("m+content_filter")).await).await;
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);

    let (raw, _) = read_all(openai(&m, &with_stream(openai_body("m+empty+truncated"))).await).await;
    let events = sse_events(&raw, "\n");
    assert_eq!(openai_text(&events), "");
    assert_eq!(events[events.len() - 2].json()["choices"][0]["finish_reason"], "length");
    let (raw, _) = read_all(openai(&m, &with_stream(openai_body("m+content_filter"))).await).await;
    let events = sse_events(&raw, "\n");
    assert_eq!(events[events.len() - 2].json()["choices"][0]["finish_reason"], "content_filter");
}

fn with_tools(mut body: Value) -> Value {
    body["tools"] = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    ]);
    body
}

#[tokio::test]
async fn tool_call_calls_the_first_tool() {
    let m = mock().await;
    let body = json_of(openai(&m, &with_tools(openai_body("m+tool_call"))).await).await;
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{}");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));

    // Without tools the fault answers in text.
    let body = json_of(openai(&m, &openai_body("m+tool_call")).await).await;
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    let (raw, _) = read_all(openai(&m, &with_stream(with_tools(openai_body("m+tool_call")))).await).await;
    let events = sse_events(&raw, "\n");
    let deltas: Vec<Value> = events.iter().filter(|e| e.data != "[DONE]").map(|e| e.json()).collect();
    let first = &deltas[1]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!((first["index"].clone(), first["function"]["name"].clone()), (json!(0), json!("get_weather")));
    assert_eq!(deltas[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"], "{}");
    assert_eq!(deltas[3]["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn models_are_listed() {
    let m = mock().await;
    let resp = client().get(format!("{}/v1/models", m.url())).bearer_auth("k").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert_eq!(body["object"], "list");
    assert!(body["data"].as_array().unwrap().iter().any(|m| m["id"] == "gpt-4o" && m["object"] == "model"));
}
