use proptest::prelude::*;
use serde_json::json;

use super::*;

/// The reference's sample request.
const SAMPLE: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,
 "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
 "messages":[
  {"role":"user","content":[{"type":"text","text":"Weather in Oslo?"},
    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR..."}}]},
  {"role":"assistant","content":[{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oslo"}}]},
  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"4°C","is_error":false}]}],
 "tools":[{"name":"get_weather","description":"…","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
 "tool_choice":{"type":"auto","disable_parallel_tool_use":false},
 "stop_sequences":["\n\nHuman:"],"temperature":0.7,"stream":false,"metadata":{"user_id":"hash-123"}}"#;

#[test]
fn decodes_the_reference_sample() {
    let req = decode(SAMPLE.as_bytes()).unwrap();
    assert_eq!(req.model, "claude-sonnet-4-5");
    assert_eq!(req.system, vec![ContentPart::text("Be brief.")]);
    assert_eq!(req.messages.len(), 3);
    assert_eq!(req.messages[0].role, Role::User);
    assert_eq!(
        req.messages[0].content,
        vec![
            ContentPart::text("Weather in Oslo?"),
            ContentPart::Image {
                source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBOR...".into() }
            }
        ]
    );
    assert_eq!(req.messages[1].role, Role::Assistant);
    match &req.messages[1].content[..] {
        [ContentPart::ToolCall { id, name, arguments }] => {
            assert_eq!((id.as_str(), name.as_str()), ("toolu_01", "get_weather"));
            assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"city": "Oslo"}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        req.messages[2].content,
        vec![ContentPart::ToolResult {
            call_id: "toolu_01".into(),
            name: None,
            content: vec![ContentPart::text("4°C")],
            is_error: false
        }]
    );
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(req.tools[0].description.as_deref(), Some("…"));
    assert_eq!(req.tools[0].parameters["required"], json!(["city"]));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        req.params,
        Params { max_tokens: Some(1024), temperature: Some(0.7), top_p: None, stop: vec!["\n\nHuman:".into()] }
    );
    assert!(!req.stream);
    assert_eq!(req.response_format, None);
    let native = req.native.unwrap();
    assert_eq!(native.dialect, Dialect::Anthropic);
    assert!(!native.messages_edited);
    assert_eq!(Value::Object(native.body), serde_json::from_str::<Value>(SAMPLE).unwrap());
}

#[test]
fn decodes_other_blocks_tool_choices_and_server_tools() {
    let body = json!({"model": "m", "max_tokens": 5, "system": "sys", "stream": true, "top_p": 0.9,
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                {"type": "document", "source": {"type": "text", "data": "doc", "media_type": "text/plain"}},
                {"type": "image", "source": {"type": "file", "file_id": "f1"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xx"},
                {"type": "text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": true,
                "content": [{"type": "text", "text": "boom"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0"}}]}]}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                  {"type": "custom", "name": "calc", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "calc"}});
    let req = decode(body.to_string().as_bytes()).unwrap();
    assert_eq!(req.system, vec![ContentPart::text("sys")]);
    assert!(req.stream);
    assert_eq!(req.params.top_p, Some(0.9));
    let user = &req.messages[0].content;
    assert_eq!(user[0], ContentPart::Image { source: ImageSource::Url("https://x/a.png".into()) });
    assert!(
        matches!(&user[1], ContentPart::Other { dialect: Dialect::Anthropic, value } if value["type"] == "document")
    );
    assert!(matches!(&user[2], ContentPart::Other { value, .. } if value["source"]["file_id"] == "f1"));
    let asst = &req.messages[1].content;
    assert!(matches!(&asst[0], ContentPart::Other { value, .. } if value["signature"] == "sig"));
    assert!(matches!(&asst[1], ContentPart::Other { value, .. } if value["type"] == "redacted_thinking"));
    assert_eq!(asst[2], ContentPart::text("ok"));
    match &req.messages[2].content[0] {
        ContentPart::ToolResult { content, is_error, .. } => {
            assert!(is_error);
            assert_eq!(content[0], ContentPart::text("boom"));
            assert!(matches!(&content[1], ContentPart::Image { .. }));
        }
        other => panic!("{other:?}"),
    }
    // The server tool lives only in `native`.
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "calc");
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("calc".into())));
    for (choice, want) in [("any", ToolChoice::Required), ("none", ToolChoice::None)] {
        let mut b = body.clone();
        b["tool_choice"] = json!({"type": choice});
        assert_eq!(decode(b.to_string().as_bytes()).unwrap().tool_choice, Some(want));
    }
}

#[test]
fn bad_requests_name_the_field() {
    let ok = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let with = |path: &str, v: Value| {
        let mut b = ok.clone();
        match b.pointer_mut(path) {
            Some(slot) => *slot = v,
            None => {
                b[&path[1..]] = v;
            }
        }
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let param = |b: Value| decode(b.to_string().as_bytes()).unwrap_err().param;
    let some = |s: &str| Some(s.to_string());

    assert_eq!(decode(b"not json").unwrap_err().param, None);
    assert_eq!(decode(b"[1]").unwrap_err().param, None);
    assert_eq!(decode(b"").unwrap_err().param, None);
    assert_eq!(param(without("max_tokens")), some("max_tokens"));
    assert_eq!(decode(without("max_tokens").to_string().as_bytes()).unwrap_err().message, "max_tokens: Field required");
    assert_eq!(param(with("/max_tokens", json!(-1))), some("max_tokens"));
    assert_eq!(param(with("/max_tokens", json!("10"))), some("max_tokens"));
    assert_eq!(param(with("/max_tokens", json!(1.5))), some("max_tokens"));
    assert_eq!(param(without("model")), some("model"));
    assert_eq!(param(with("/model", json!(""))), some("model"));
    assert_eq!(param(with("/model", json!(7))), some("model"));
    assert_eq!(param(without("messages")), some("messages"));
    assert_eq!(param(with("/messages", json!([]))), some("messages"));
    assert_eq!(param(with("/messages", json!("hi"))), some("messages"));
    assert_eq!(param(with("/messages/0", json!("hi"))), some("messages[0]"));
    assert_eq!(param(with("/messages/0/role", json!("system"))), some("messages[0].role"));
    assert_eq!(param(with("/messages/0/content", json!(3))), some("messages[0].content"));
    assert_eq!(param(with("/messages/0/content", json!([{"text": "x"}]))), some("messages[0].content[0].type"));
    assert_eq!(
        param(with("/messages/0/content", json!([{"type": "text", "text": 1}]))),
        some("messages[0].content[0].text")
    );
    assert_eq!(
        param(with("/messages/0/content", json!([{"type": "tool_use", "id": "a", "name": "b", "input": "x"}]))),
        some("messages[0].content[0].input")
    );
    assert_eq!(
        param(with("/messages/0/content", json!([{"type": "image", "source": {"type": "base64"}}]))),
        some("messages[0].content[0].source.media_type")
    );
    assert_eq!(param(with("/temperature", json!("hot"))), some("temperature"));
    assert_eq!(param(with("/top_p", json!([]))), some("top_p"));
    assert_eq!(param(with("/stop_sequences", json!([1]))), some("stop_sequences[0]"));
    assert_eq!(param(with("/stop_sequences", json!("END"))), some("stop_sequences"));
    assert_eq!(param(with("/stream", json!("yes"))), some("stream"));
    assert_eq!(param(with("/system", json!(1))), some("system"));
    assert_eq!(param(with("/system", json!([{"type": "image"}]))), some("system[0].type"));
    assert_eq!(param(with("/tools", json!({}))), some("tools"));
    assert_eq!(param(with("/tools", json!([{"name": "t"}]))), some("tools[0].input_schema"));
    assert_eq!(param(with("/tool_choice", json!({"type": "sometimes"}))), some("tool_choice.type"));
    assert_eq!(param(with("/tool_choice", json!({"type": "tool"}))), some("tool_choice.name"));
}

#[test]
fn same_dialect_round_trip_keeps_unknown_fields() {
    let original = json!({
        "model": "smart", "max_tokens": 2048, "top_k": 40, "service_tier": "auto",
        "metadata": {"user_id": "hash-123"}, "vendor_extra": {"nested": [1, 2, {"x": null}]},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "...", "signature": "abc"},
                                              {"type": "text", "text": "hello"}]},
            {"role": "user", "content": "again"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "stream": false});
    let req = decode(original.to_string().as_bytes()).unwrap();
    let encoded = encode(&req, "claude-sonnet-4-5", false);
    let mut expected = original.clone();
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(Value::Object(encoded), expected);

    // Streaming to the provider only flips the flag.
    let encoded = encode(&req, "claude-sonnet-4-5", true);
    expected["stream"] = json!(true);
    assert_eq!(Value::Object(encoded), expected);

    // Without a `stream` field, a non-streaming call adds none.
    let mut no_stream = original.clone();
    no_stream.as_object_mut().unwrap().remove("stream");
    let req = decode(no_stream.to_string().as_bytes()).unwrap();
    assert!(!encode(&req, "m", false).contains_key("stream"));
}

#[test]
fn chain_override_lands_on_the_native_body() {
    let mut req = decode(SAMPLE.as_bytes()).unwrap();
    // What a chain entry overriding model, temperature and max_tokens does to the request.
    req.params.temperature = Some(0.2);
    req.params.max_tokens = Some(256);
    let body = encode(&req, "claude-3-haiku", true);
    assert_eq!(body["model"], "claude-3-haiku");
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["stream"], true);
    let original: Value = serde_json::from_str(SAMPLE).unwrap();
    for k in ["system", "messages", "tools", "tool_choice", "stop_sequences", "metadata"] {
        assert_eq!(body[k], original[k], "{k}");
    }
    // Key order is the caller's: overrides replace values in place.
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(&keys[..3], &["model", "max_tokens", "system"]);
}

#[test]
fn edited_conversation_is_reencoded() {
    let mut req = decode(SAMPLE.as_bytes()).unwrap();
    req.messages.truncate(1);
    req.system.push(ContentPart::text("Use metric units."));
    if let Some(n) = req.native.as_mut() {
        n.messages_edited = true;
    }
    let body = encode(&req, "m", false);
    assert_eq!(body["system"], "Be brief.\n\nUse metric units.");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR..."}}]}])
    );
    assert_eq!(body["metadata"], json!({"user_id": "hash-123"}));
}

fn tool_call(id: &str, args: &str) -> ContentPart {
    ContentPart::ToolCall { id: id.into(), name: "get_weather".into(), arguments: args.into() }
}

fn tool_result(id: &str, text: &str) -> ContentPart {
    ContentPart::ToolResult {
        call_id: id.into(),
        name: Some("get_weather".into()),
        content: vec![ContentPart::text(text)],
        is_error: false,
    }
}

/// What an OpenAI caller's conversation looks like once decoded.
fn canonical_request() -> ChatRequest {
    let user = |parts: Vec<ContentPart>| Message { role: Role::User, content: parts, name: None };
    let assistant = |parts: Vec<ContentPart>| Message { role: Role::Assistant, content: parts, name: None };
    ChatRequest {
        model: "smart".into(),
        system: vec![ContentPart::text("Be brief."), ContentPart::text("Answer in English.")],
        messages: vec![
            Message::text(Role::User, "Weather in Oslo"),
            user(vec![
                ContentPart::text("and Bergen?"),
                ContentPart::Image { source: ImageSource::Url("data:image/png;base64,iVBOR".into()) },
                ContentPart::Image { source: ImageSource::Url("https://x/map.png".into()) },
            ]),
            assistant(vec![
                ContentPart::text(""),
                tool_call("call_1", r#"{"city":"Oslo"}"#),
                tool_call("call_2", "not json"),
            ]),
            user(vec![tool_result("call_1", "4°C")]),
            user(vec![ContentPart::ToolResult {
                call_id: "call_2".into(),
                name: None,
                content: vec![],
                is_error: true,
            }]),
            user(vec![
                ContentPart::text("Thanks. Which is warmer?"),
                ContentPart::Other { dialect: Dialect::OpenAi, value: json!({"type": "input_audio"}) },
            ]),
            assistant(vec![ContentPart::Other {
                dialect: Dialect::Anthropic,
                value: json!({"type": "thinking", "thinking": "t", "signature": "s"}),
            }]),
            Message::text(Role::Assistant, "Bergen"),
        ],
        tools: vec![
            ToolDef {
                name: "get_weather".into(),
                description: Some("Weather by city".into()),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            },
            ToolDef { name: "now".into(), description: None, parameters: Value::Null },
        ],
        tool_choice: Some(ToolChoice::Required),
        params: Params { max_tokens: None, temperature: Some(0.5), top_p: None, stop: vec!["END".into()] },
        response_format: Some(ResponseFormat::JsonSchema {
            name: "w".into(),
            schema: json!({"type": "object"}),
            strict: Some(true),
        }),
        stream: true,
        include_usage: true,
        native: None,
    }
}

#[test]
fn cross_dialect_encode_gives_alternating_turns() {
    let body = encode(&canonical_request(), "claude-3-haiku", true);
    assert_eq!(
        Value::Object(body),
        json!({
            "model": "claude-3-haiku",
            "max_tokens": 4096,
            "system": "Be brief.\n\nAnswer in English.\n\nRespond only with a JSON object that conforms to this JSON Schema: {\"type\":\"object\"}",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Oslo"},
                    {"type": "text", "text": "and Bergen?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/map.png"}}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "4°C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "is_error": true},
                    {"type": "text", "text": "Thanks. Which is warmer?"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "text", "text": "Bergen"}]}],
            "tools": [
                {"name": "get_weather", "description": "Weather by city",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                {"name": "now", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "any"},
            "temperature": 0.5,
            "stop_sequences": ["END"],
            "stream": true
        })
    );
}

#[test]
fn cross_dialect_edge_cases() {
    let mut req = canonical_request();
    // A tool result placed after text in the same canonical message still leads the turn.
    req.messages = vec![
        Message::text(Role::Assistant, "I am the greeting."),
        Message { role: Role::User, content: vec![ContentPart::text("here:"), tool_result("c", "r")], name: None },
    ];
    req.response_format = Some(ResponseFormat::JsonObject);
    req.system.clear();
    req.stream = false;
    for (choice, want) in [
        (ToolChoice::Auto, json!({"type": "auto"})),
        (ToolChoice::None, json!({"type": "none"})),
        (ToolChoice::Tool("now".into()), json!({"type": "tool", "name": "now"})),
    ] {
        req.tool_choice = Some(choice);
        let body = encode(&req, "m", false);
        assert_eq!(body["tool_choice"], want);
        assert_eq!(body["system"], "Respond only with a JSON object.");
        assert!(!body.contains_key("stream"));
        let roles: Vec<&str> =
            body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(body["messages"][0]["content"][0]["text"], LEADING_USER_TURN);
        assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(body["messages"][2]["content"][1]["text"], "here:");
    }
    // No tools: no tool_choice either.
    req.tools.clear();
    assert!(!encode(&req, "m", false).contains_key("tool_choice"));
}

#[test]
fn reference_sample_survives_a_trip_through_canonical() {
    let mut req = decode(SAMPLE.as_bytes()).unwrap();
    req.native = None;
    let body = encode(&req, "claude-sonnet-4-5", false);
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["messages"][1]["content"][0]["input"], json!({"city": "Oslo"}));
    assert_eq!(body["messages"][2]["content"][0]["content"], "4°C");
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["city"]));
}

proptest! {
    #[test]
    fn decode_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_odd_json(
        role in prop_oneof![Just("user".to_string()), Just("assistant".to_string()), ".*"],
        block_type in prop_oneof![
            Just("text".to_string()), Just("image".to_string()), Just("tool_use".to_string()),
            Just("tool_result".to_string()), ".*"
        ],
        field in prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("s")), Just(json!([])), Just(json!({}))],
        max_tokens in prop_oneof![Just(json!(10)), Just(json!(-1)), Just(json!(1e30)), Just(json!(u64::MAX))],
    ) {
        let body = json!({"model": "m", "max_tokens": max_tokens, "system": field.clone(),
            "messages": [{"role": role, "content": [{"type": block_type, "text": field.clone(),
                "source": field.clone(), "input": field.clone(), "content": field.clone(), "tool_use_id": field}]}]});
        if let Ok(req) = decode(body.to_string().as_bytes()) {
            let _ = encode(&req, "m", true);
        }
    }
}
