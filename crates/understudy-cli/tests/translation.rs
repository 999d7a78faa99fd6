//! Hub-and-spoke translation over real HTTP: what each provider receives from each front, and
//! what callers get back. Same-dialect calls keep fields the gateway does not understand.

mod common;

use common::*;
use serde_json::{json, Value};

fn single(provider: &str, model: &str) -> String {
    format!(
        "  r:
    fallback_chain:
      - {{ provider: {provider}, model: \"{model}\" }}
"
    )
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn openai_fields_reach_an_openai_provider_unchanged() {
    let env = env(&single("openai", "m")).await;
    let body = json!({
        "model": "r",
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "ann"}],
        "tools": weather_tool_openai(), "tool_choice": "auto", "parallel_tool_calls": false,
        "response_format": {"type": "json_object"}, "logprobs": true, "top_logprobs": 2, "seed": 42,
        "metadata": {"a": "b"}, "user": "u1", "n": 1, "vendor_extra": {"x": [1]}
    });
    // The caller asked for JSON: the answer must be JSON to pass validation.
    env.mock.set_fault("m", understudy_mock::Fault { text: Some("{\"ok\": true}".into()), ..Default::default() });
    let r = env.chat(body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = &env.recorded("m")[0]["body"];
    for (k, v) in body.as_object().unwrap() {
        if k != "model" {
            assert_eq!(&got[k], v, "field {k} changed on the way");
        }
    }
    assert_eq!(got["model"], "m");
}

#[tokio::test]
async fn anthropic_fields_reach_an_anthropic_provider_unchanged() {
    let env = env(&single("anthropic", "m")).await;
    let body = json!({
        "model": "r", "max_tokens": 50, "top_k": 5, "metadata": {"user_id": "h"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    });
    let r = env.messages(body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = &env.recorded("m")[0]["body"];
    for (k, v) in body.as_object().unwrap() {
        if k != "model" {
            assert_eq!(&got[k], v, "field {k} changed on the way");
        }
    }
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "m");
}

#[tokio::test]
async fn openai_caller_to_anthropic_provider_with_tools() {
    let env = env(&single("anthropic", "m+tool_call")).await;
    let r = env
        .chat(json!({
            "model": "r",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Oslo?"}
            ],
            "tools": weather_tool_openai(),
            "tool_choice": "required",
            "max_tokens": 100
        }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &env.recorded("m")[0]["body"];
    assert_eq!(sent["system"], "You are terse.");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1);
    assert_eq!(sent["messages"][0]["role"], "user");
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["input_schema"]["required"], json!(["city"]));
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));
    assert_eq!(sent["max_tokens"], 100);
    let v = r.json();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(call["function"]["arguments"].is_string());
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn a_tool_conversation_translates_to_every_provider() {
    let convo = json!({
        "model": "r",
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees"},
            {"role": "user", "content": [{"type": "text", "text": "And this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
        ],
        "tools": weather_tool_openai()
    });
    // Anthropic: tool_use in the assistant turn, tool_result in a user turn, alternating roles.
    let env = env(&single("anthropic", "m")).await;
    let r = env.chat(convo.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let msgs = env.recorded("m")[0]["body"]["messages"].clone();
    assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
    assert_eq!(msgs[1]["content"][0]["input"], json!({"city": "Oslo"}));
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "call_1");
    let image = msgs[2]["content"].as_array().unwrap().iter().find(|b| b["type"] == "image").cloned().unwrap();
    assert_eq!(image["source"]["media_type"], "image/png");

    // Gemini: functionCall / functionResponse matched by name, inlineData for the image.
    let env = common::env(&single("gemini", "m")).await;
    let r = env.chat(convo).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let contents = env.recorded("m")[0]["body"]["contents"].clone();
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(contents[1]["parts"][0]["functionCall"]["name"], "get_weather");
    let user_parts = contents[2]["parts"].as_array().unwrap();
    assert_eq!(user_parts[0]["functionResponse"]["name"], "get_weather");
    assert!(user_parts.iter().any(|p| p["inlineData"]["mimeType"] == "image/png"));
}

#[tokio::test]
async fn anthropic_caller_to_openai_and_gemini_providers() {
    for provider in ["openai", "gemini"] {
        let env = env(&single(provider, "m")).await;
        let r = env
            .messages(json!({
                "model": "r", "max_tokens": 64, "system": "Be brief.", "temperature": 0.3,
                "stop_sequences": ["END"],
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}]
            }))
            .await;
        assert_eq!(r.status, 200, "{provider}: {}", r.text);
        let v = r.json();
        assert_eq!(v["type"], "message");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["content"][0]["type"], "text");
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
        let sent = &env.recorded("m")[0]["body"];
        if provider == "openai" {
            assert_eq!(sent["messages"][0], json!({"role": "system", "content": "Be brief."}));
            assert_eq!(sent["messages"].as_array().unwrap().len(), 4);
            assert_eq!(sent["temperature"], 0.3);
            assert_eq!(sent["max_tokens"], 64);
            assert_eq!(sent["stop"], json!(["END"]));
        } else {
            assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "Be brief.");
            assert_eq!(sent["contents"].as_array().unwrap().len(), 3);
            assert_eq!(sent["generationConfig"]["maxOutputTokens"], 64);
            assert_eq!(sent["generationConfig"]["stopSequences"], json!(["END"]));
        }
    }
}

#[tokio::test]
async fn usage_and_model_are_the_answering_deployments() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: \"a+error=unavailable\", max_retries: 0 }
      - { provider: gemini, model: gemini-2.5-flash }
")
    .await;
    let r = env.chat(openai_body("r")).await;
    let v = r.json();
    assert_eq!(v["model"], "gemini-2.5-flash");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        v["usage"]["total_tokens"].as_u64().unwrap(),
        v["usage"]["prompt_tokens"].as_u64().unwrap() + v["usage"]["completion_tokens"].as_u64().unwrap()
    );
}
