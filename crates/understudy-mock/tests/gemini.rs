//! Gemini dialect over real sockets: answers, CRLF-framed streams, errors, validation, faults.

mod common;

use common::*;
use serde_json::{json, Value};

fn texts(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| e.json()["candidates"][0]["content"]["parts"][0]["text"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn non_stream_answer_has_the_real_shape() {
    let m = mock().await;
    let resp = gemini(&m, "gemini-2.5-flash", false, &gemini_body()).await;
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    let cand = &body["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["content"]["parts"], json!([{"text": "Simulated answer from gemini-2.5-flash."}]));
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 8);
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 4);
    assert_eq!(body["usageMetadata"]["totalTokenCount"], 12);
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
}

#[tokio::test]
async fn stream_uses_crlf_data_frames_and_ends_with_finish_reason() {
    let m = mock().await;
    let resp = gemini(&m, "gemini-2.5-flash", true, &gemini_body()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (raw, err) = read_all(resp).await;
    assert!(err.is_none());
    assert!(!raw.contains("[DONE]"));
    let events = sse_events(&raw, "\r\n");
    assert_eq!(events.len(), 5);
    assert!(events.iter().all(|e| e.event.is_none()));
    assert_eq!(texts(&events), "Simulated answer from gemini-2.5-flash.");
    let (last, rest) = events.split_last().unwrap();
    assert!(rest.iter().all(|e| e.json()["candidates"][0].get("finishReason").is_none()));
    let last = last.json();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 4);
    // Usage on intermediate chunks is cumulative, never to be summed.
    assert_eq!(rest[1].json()["usageMetadata"]["candidatesTokenCount"], 2);
}

/// (kind, status, google status); `None` means the front end's HTML page.
const ERRORS: [(&str, u16, Option<&str>); 13] = [
    ("invalid_key", 400, Some("INVALID_ARGUMENT")),
    ("account_deactivated", 403, Some("PERMISSION_DENIED")),
    ("forbidden", 403, Some("PERMISSION_DENIED")),
    ("model_not_found", 404, Some("NOT_FOUND")),
    ("context_length", 400, Some("INVALID_ARGUMENT")),
    ("rate_limit", 429, Some("RESOURCE_EXHAUSTED")),
    ("quota_exhausted", 429, Some("RESOURCE_EXHAUSTED")),
    ("server", 500, Some("INTERNAL")),
    ("bad_gateway", 502, None),
    ("unavailable", 503, Some("UNAVAILABLE")),
    ("overloaded", 503, Some("UNAVAILABLE")),
    ("bad_request", 400, Some("INVALID_ARGUMENT")),
    ("timeout", 504, Some("DEADLINE_EXCEEDED")),
];

#[tokio::test]
async fn every_error_kind_has_the_real_status_and_body() {
    let m = mock().await;
    for (kind, status, name) in ERRORS {
        for stream in [false, true] {
            let resp = gemini(&m, &format!("gemini-2.5-pro+error={kind}"), stream, &gemini_body()).await;
            assert_eq!(resp.status(), status, "{kind}");
            let Some(name) = name else {
                assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
                continue;
            };
            let body = json_of(resp).await;
            assert_eq!(body["error"]["code"], status, "{kind}");
            assert_eq!(body["error"]["status"], name, "{kind}");
            assert!(body["error"]["message"].as_str().is_some_and(|s| !s.is_empty()), "{kind}");
        }
    }
}

fn detail<'a>(body: &'a Value, ty: &str) -> Option<&'a Value> {
    body["error"]["details"].as_array()?.iter().find(|d| d["@type"].as_str().is_some_and(|t| t.ends_with(ty)))
}

#[tokio::test]
async fn error_details_gateways_classify_on() {
    let m = mock().await;
    // A bad key is a 400 with reason API_KEY_INVALID, not a 401.
    let body = json_of(gemini(&m, "g+error=invalid_key", false, &gemini_body()).await).await;
    assert_eq!(detail(&body, "ErrorInfo").unwrap()["reason"], "API_KEY_INVALID");

    let resp = gemini(&m, "g+error=rate_limit+retry_after=41", false, &gemini_body()).await;
    assert_eq!(resp.headers()["retry-after"], "41");
    let body = json_of(resp).await;
    assert_eq!(detail(&body, "RetryInfo").unwrap()["retryDelay"], "41s");
    assert!(body["error"]["message"].as_str().unwrap().contains("Please retry in 41s."));
    let quota = detail(&body, "QuotaFailure").unwrap()["violations"][0]["quotaId"].as_str().unwrap().to_string();
    assert!(quota.contains("PerMinute"), "{quota}");

    let body = json_of(gemini(&m, "g+error=quota_exhausted", false, &gemini_body()).await).await;
    let quota = &detail(&body, "QuotaFailure").unwrap()["violations"][0]["quotaId"];
    assert!(quota.as_str().unwrap().contains("PerDay"));
    assert!(detail(&body, "RetryInfo").is_none());

    let body = json_of(gemini(&m, "gemini-x+error=model_not_found", false, &gemini_body()).await).await;
    assert!(body["error"]["message"].as_str().unwrap().starts_with("models/gemini-x is not found"));
}

#[tokio::test]
async fn content_policy_and_content_filter_are_blocked_prompts() {
    let m = mock().await;
    for (model, reason) in [("g+content_filter", "SAFETY"), ("g+error=content_policy", "PROHIBITED_CONTENT")] {
        let resp = gemini(&m, model, false, &gemini_body()).await;
        assert_eq!(resp.status(), 200);
        let body = json_of(resp).await;
        assert!(body.get("candidates").is_none());
        assert_eq!(body["promptFeedback"]["blockReason"], reason);
        assert_eq!(body["usageMetadata"]["promptTokenCount"], 8);

        let (raw, _) = read_all(gemini(&m, model, true, &gemini_body()).await).await;
        let events = sse_events(&raw, "\r\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].json()["promptFeedback"]["blockReason"], reason);
    }
}

#[tokio::test]
async fn the_key_is_required_in_header_or_query() {
    let m = mock().await;
    let url = gemini_url(&m, "g", false);
    let resp = client().post(&url).json(&gemini_body()).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(resp).await["error"]["status"], "PERMISSION_DENIED");
    let resp = client().post(format!("{url}?key=AIza-q")).json(&gemini_body()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn invalid_requests_get_400_invalid_argument() {
    let m = mock().await;
    let cases = [
        (json!({}), "contents is not specified"),
        (
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
            "Please use a valid role: user, model.",
        ),
        (json!({"contents": [{"role": "user", "parts": []}]}), "contents.parts must not be empty"),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "messages": []}),
            "Unknown name \"messages\": Cannot find field.",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}}),
            "Unknown name \"max_tokens\" at 'generation_config'",
        ),
    ];
    for (body, want) in cases {
        let resp = gemini(&m, "g", false, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err = json_of(resp).await;
        assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
        assert!(err["error"]["message"].as_str().unwrap().contains(want), "{err}");
    }
}

#[tokio::test]
async fn stream_faults() {
    let m = mock().await;
    let (raw, err) = read_all(gemini(&m, "g+cut_after=2", true, &gemini_body()).await).await;
    assert!(err.is_some());
    assert_eq!(texts(&sse_events(&raw, "\r\n")), "Simulated answer");

    // no_done: Gemini has no [DONE], so the finishReason chunk is what goes missing.
    let (raw, err) = read_all(gemini(&m, "g+no_done", true, &gemini_body()).await).await;
    assert!(err.is_none());
    let events = sse_events(&raw, "\r\n");
    assert_eq!(events.len(), 4);
    assert!(!raw.contains("finishReason"));

    let (raw, _) = read_all(gemini(&m, "g+error_after=1", true, &gemini_body()).await).await;
    let events = sse_events(&raw, "\r\n");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].json()["error"]["status"], "UNAVAILABLE");

    let (raw, _) = read_all(gemini(&m, "g+malformed_at=4", true, &gemini_body()).await).await;
    let events = sse_events(&raw, "\r\n");
    assert_eq!(events.len(), 6);
    assert!(serde_json::from_str::<Value>(&events[4].data).is_err());
}

#[tokio::test]
async fn empty_truncated_and_tool_call() {
    let m = mock().await;
    let body = json_of(gemini(&m, "g+empty", false, &gemini_body()).await).await;
    assert_eq!(body["candidates"][0]["content"], json!({"role": "model"}));
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    let body = json_of(gemini(&m, "g+truncated", false, &gemini_body()).await).await;
    assert_eq!(body["candidates"][0]["finishReason"], "MAX_TOKENS");

    let mut req = gemini_body();
    req["tools"] = json!([{"functionDeclarations": [{"name": "get_weather"}, {"name": "other"}]}]);
    let body = json_of(gemini(&m, "g+tool_call", false, &req).await).await;
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {}})
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");

    let (raw, _) = read_all(gemini(&m, "g+tool_call", true, &req).await).await;
    let events = sse_events(&raw, "\r\n");
    assert_eq!(events[0].json()["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
    assert_eq!(events.last().unwrap().json()["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn fault_syntax_works_in_the_url_path_even_percent_encoded() {
    let m = mock().await;
    let resp = gemini(&m, "g%2Berror%3Dserver", false, &gemini_body()).await;
    assert_eq!(resp.status(), 500);
    let body = json_of(gemini(&m, "g+text=%22hi%20there%22", false, &gemini_body()).await).await;
    assert_eq!(body["candidates"][0]["content"]["parts"][0]["text"], "hi there");
    assert_eq!(body["modelVersion"], "g");
    assert_eq!(m.stats().model("g"), 2);
}

#[tokio::test]
async fn streaming_without_alt_sse_is_refused() {
    let m = mock().await;
    let url = format!("{}/v1beta/models/g:streamGenerateContent", m.url());
    let resp = client().post(url).header("x-goog-api-key", "k").json(&gemini_body()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(json_of(resp).await["error"]["message"].as_str().unwrap().contains("alt=sse"));
}

#[tokio::test]
async fn models_are_listed() {
    let m = mock().await;
    let resp = client().get(format!("{}/v1beta/models", m.url())).header("x-goog-api-key", "k").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_of(resp).await;
    assert!(body["models"].as_array().unwrap().iter().any(|m| m["name"] == "models/gemini-2.5-flash"));
}
