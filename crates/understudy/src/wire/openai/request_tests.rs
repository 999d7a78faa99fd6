use proptest::prelude::*;
use serde_json::json;

use super::*;

fn decode_value(v: &Value) -> Result<ChatRequest, BadRequest> {
    decode(&serde_json::to_vec(v).unwrap())
}

fn as_object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        other => panic!("not an object: {other}"),
    }
}

/// The reference's sample request (section 1).
const SAMPLE: &str = r#"{"model":"gpt-4o","messages":[{"role":"developer","content":"Be brief."},
 {"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR..."}}]}],
 "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
 "tool_choice":"auto","max_completion_tokens":256,"stream":true,"stream_options":{"include_usage":true}}"#;

#[test]
fn decodes_the_reference_sample() {
    let req = decode(SAMPLE.as_bytes()).unwrap();
    let native: Value = serde_json::from_str(SAMPLE).unwrap();
    let expected = ChatRequest {
        model: "gpt-4o".into(),
        system: vec![ContentPart::text("Be brief.")],
        messages: vec![Message {
            role: Role::User,
            content: vec![
                ContentPart::text("What is this?"),
                ContentPart::Image {
                    source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBOR...".into() },
                },
            ],
            name: None,
        }],
        tools: vec![ToolDef {
            name: "get_weather".into(),
            description: None,
            parameters: json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
        }],
        tool_choice: Some(ToolChoice::Auto),
        params: Params { max_tokens: Some(256), temperature: None, top_p: None, stop: vec![] },
        response_format: None,
        stream: true,
        include_usage: true,
        native: Some(Native { dialect: Dialect::OpenAi, body: as_object(native), messages_edited: false }),
    };
    assert_eq!(req, expected);
}

#[test]
fn maps_every_role_and_part() {
    let body = json!({"model": "smart", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "4°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "09:00"}]},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in Norwegian."}]},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}], "name": "bot"},
        {"role": "assistant", "content": null, "function_call": {"name": "lookup", "arguments": "{}"}},
        {"role": "function", "name": "lookup", "content": null}
    ]});
    let req = decode_value(&body).unwrap();
    assert_eq!(req.system, vec![ContentPart::text("You are terse."), ContentPart::text("Answer in Norwegian.")]);
    let tool_result = |id: &str, text: &str| ContentPart::ToolResult {
        call_id: id.into(),
        name: None,
        content: vec![ContentPart::text(text)],
        is_error: false,
    };
    let expected = vec![
        Message {
            role: Role::User,
            content: vec![
                ContentPart::text("Look:"),
                ContentPart::Image { source: ImageSource::Url("https://example.com/cat.png".into()) },
                ContentPart::Other {
                    dialect: Dialect::OpenAi,
                    value: json!({"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}),
                },
            ],
            name: Some("ann".into()),
        },
        Message {
            role: Role::Assistant,
            content: vec![
                ContentPart::ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Oslo\"}".into(),
                },
                ContentPart::ToolCall { id: "call_2".into(), name: "get_time".into(), arguments: "{}".into() },
            ],
            name: None,
        },
        // Both tool answers share one user message.
        Message {
            role: Role::User,
            content: vec![tool_result("call_1", "4°C"), tool_result("call_2", "09:00")],
            name: None,
        },
        Message::text(Role::User, "Thanks"),
        Message { role: Role::Assistant, content: vec![ContentPart::text("I can't.")], name: Some("bot".into()) },
        Message {
            role: Role::Assistant,
            content: vec![ContentPart::ToolCall { id: "lookup".into(), name: "lookup".into(), arguments: "{}".into() }],
            name: None,
        },
        Message {
            role: Role::User,
            content: vec![ContentPart::ToolResult {
                call_id: "lookup".into(),
                name: Some("lookup".into()),
                content: vec![],
                is_error: false,
            }],
            name: None,
        },
    ];
    assert_eq!(req.messages, expected);
}

#[test]
fn maps_params_formats_and_choices() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2, "top_p": 1, "max_tokens": 64, "stop": "END", "stream": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
            "schema": {"type": "object"}}},
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather"}},
                  {"type": "custom", "custom": {"name": "grammar"}}]});
    let req = decode_value(&body).unwrap();
    assert_eq!(
        req.params,
        Params { max_tokens: Some(64), temperature: Some(0.2), top_p: Some(1.0), stop: vec!["END".into()] }
    );
    assert_eq!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object"}),
            strict: Some(true),
        })
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("get_weather".into())));
    assert_eq!(req.tools.len(), 1, "custom tools live only in native");
    assert_eq!(req.tools[0].description.as_deref(), Some("Weather"));
    assert_eq!(req.tools[0].parameters, json!({"type": "object", "properties": {}}));
    assert!(!req.stream && !req.include_usage);

    for (choice, expected) in [
        (json!("none"), Some(ToolChoice::None)),
        (json!("required"), Some(ToolChoice::Required)),
        (
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}),
            Some(ToolChoice::Required),
        ),
        (json!(null), None),
    ] {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": choice});
        assert_eq!(decode_value(&body).unwrap().tool_choice, expected);
    }
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10, "max_completion_tokens": 20, "response_format": {"type": "json_object"},
        "stop": ["a", "b"], "stream": true, "stream_options": {"include_usage": false}});
    let req = decode_value(&body).unwrap();
    assert_eq!(req.params.max_tokens, Some(20), "max_completion_tokens is preferred");
    assert_eq!(req.params.stop, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
    assert!(req.stream && !req.include_usage);
}

#[test]
fn bad_requests_name_the_param() {
    let msg = |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, content]});
    let with = |key: &str, v: Value| {
        let mut body = as_object(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        body.insert(key.into(), v);
        Value::Object(body)
    };
    let cases: Vec<(Value, Option<&str>)> = vec![
        (json!([1, 2]), None),
        (json!("text"), None),
        (json!({"messages": [{"role": "user", "content": "hi"}]}), Some("model")),
        (json!({"model": "", "messages": [{"role": "user", "content": "hi"}]}), Some("model")),
        (json!({"model": 4, "messages": [{"role": "user", "content": "hi"}]}), Some("model")),
        (json!({"model": "m"}), Some("messages")),
        (json!({"model": "m", "messages": []}), Some("messages")),
        (json!({"model": "m", "messages": {"role": "user"}}), Some("messages")),
        (msg(json!("hello")), Some("messages[1]")),
        (msg(json!({"content": "x"})), Some("messages[1].role")),
        (msg(json!({"role": "robot", "content": "x"})), Some("messages[1].role")),
        (msg(json!({"role": "user"})), Some("messages[1].content")),
        (msg(json!({"role": "user", "content": 5})), Some("messages[1].content")),
        (msg(json!({"role": "user", "content": []})), Some("messages[1].content")),
        (msg(json!({"role": "user", "content": [{"text": "x"}]})), Some("messages[1].content[0].type")),
        (msg(json!({"role": "user", "content": [{"type": "text"}]})), Some("messages[1].content[0].text")),
        (msg(json!({"role": "user", "content": [{"type": "image_url"}]})), Some("messages[1].content[0].image_url")),
        (msg(json!({"role": "user", "content": "x", "name": 3})), Some("messages[1].name")),
        (
            msg(json!({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]})),
            Some("messages[1].content[0].type"),
        ),
        (msg(json!({"role": "assistant"})), Some("messages[1].content")),
        (
            msg(
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}),
            ),
            Some("messages[1].tool_calls[0].function.arguments"),
        ),
        (msg(json!({"role": "assistant", "content": null, "tool_calls": {"id": "c"}})), Some("messages[1].tool_calls")),
        (msg(json!({"role": "tool", "content": "x"})), Some("messages[1].tool_call_id")),
        (msg(json!({"role": "tool", "tool_call_id": "c"})), Some("messages[1].content")),
        (with("temperature", json!("hot")), Some("temperature")),
        (with("top_p", json!(true)), Some("top_p")),
        (with("max_tokens", json!(-1)), Some("max_tokens")),
        (with("max_completion_tokens", json!(1.5)), Some("max_completion_tokens")),
        (with("stop", json!(3)), Some("stop")),
        (with("stop", json!(["a", 1])), Some("stop[1]")),
        (with("stream", json!("yes")), Some("stream")),
        (with("stream_options", json!({"include_usage": true})), Some("stream_options")),
        (with("tools", json!({})), Some("tools")),
        (with("tools", json!([{"type": "function"}])), Some("tools[0].function")),
        (
            with("tools", json!([{"type": "function", "function": {"description": "x"}}])),
            Some("tools[0].function.name"),
        ),
        (with("tool_choice", json!("sometimes")), Some("tool_choice")),
        (with("tool_choice", json!({"type": "function", "function": {}})), Some("tool_choice.function.name")),
        (with("response_format", json!("json")), Some("response_format")),
        (with("response_format", json!({"type": "json_schema"})), Some("response_format.json_schema")),
    ];
    for (body, param) in cases {
        let err = decode_value(&body).expect_err(&body.to_string());
        assert_eq!(err.param.as_deref(), param, "{body}: {err}");
        assert!(!err.message.is_empty());
    }
    let err = decode(b"{not json").unwrap_err();
    assert_eq!(err.param, None);
    assert!(err.message.contains("parse the JSON body"));
    let err = decode(b"").unwrap_err();
    assert_eq!(err.param, None);
}

// ---- provider side: same dialect ----

/// A caller's body full of fields the gateway does not model.
fn rich_body() -> Value {
    json!({"model": "smart",
        "messages": [{"role": "developer", "content": "Be brief."},
                     {"role": "user", "content": "Weather in Oslo?", "name": "ann"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto", "parallel_tool_calls": false,
        "logprobs": true, "top_logprobs": 3, "seed": 42, "n": 2,
        "metadata": {"team": "search"}, "vendor_extra": {"nested": [1, 2.5, "x"]},
        "temperature": 1, "max_completion_tokens": 100, "stop": "END",
        "stream": true, "stream_options": {"include_usage": false, "include_obfuscation": false}})
}

#[test]
fn same_dialect_round_trip_keeps_every_unknown_field() {
    let original = rich_body();
    let req = decode_value(&original).unwrap();

    let sent = encode(&req, "gpt-4o", true);
    let mut expected = as_object(original.clone());
    expected.insert("model".into(), json!("gpt-4o"));
    expected.insert("stream_options".into(), json!({"include_usage": true, "include_obfuscation": false}));
    assert_eq!(sent, expected);
    // Equal parameters keep their spelling: `1` stays an integer.
    assert!(sent["temperature"].is_u64());

    let sent = encode(&req, "gpt-4o", false);
    let mut expected = as_object(original);
    expected.insert("model".into(), json!("gpt-4o"));
    expected.insert("stream".into(), json!(false));
    expected.remove("stream_options");
    assert_eq!(sent, expected);
}

#[test]
fn streaming_always_asks_for_usage() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let req = decode_value(&body).unwrap();
    assert!(!req.include_usage);
    let sent = encode(&req, "gpt-4o-mini", true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent["stream"], json!(true));
}

/// Regression: "a fallback entry that overrides `model` plus other parameters must merge correctly".
#[test]
fn chain_override_of_model_temperature_and_max_tokens_lands() {
    let original = rich_body();
    let mut req = decode_value(&original).unwrap();
    // What a chain entry `{model: gpt-4o-mini, temperature: 0.3, max_tokens: 50, top_p: 0.9, stop: [STOP]}` does.
    req.params.temperature = Some(0.3);
    req.params.max_tokens = Some(50);
    req.params.top_p = Some(0.9);
    req.params.stop = vec!["STOP".into()];
    let sent = encode(&req, "gpt-4o-mini", false);
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["temperature"], json!(0.3));
    assert_eq!(sent["max_completion_tokens"], json!(50));
    assert!(!sent.contains_key("max_tokens"), "the native body used max_completion_tokens");
    assert_eq!(sent["top_p"], json!(0.9));
    assert_eq!(sent["stop"], json!(["STOP"]));
    // Nothing else moved.
    for key in ["messages", "tools", "tool_choice", "logprobs", "top_logprobs", "seed", "n", "metadata", "vendor_extra"]
    {
        assert_eq!(sent[key], original[key], "{key}");
    }

    // A body that used the older `max_tokens` keeps using it.
    let body = json!({"model": "smart", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10});
    let mut req = decode_value(&body).unwrap();
    req.params.max_tokens = Some(20);
    let sent = encode(&req, "gpt-4o-mini", false);
    assert_eq!(sent["max_tokens"], json!(20));
    assert!(!sent.contains_key("max_completion_tokens"));
    // And a body without a limit gets `max_tokens` when the chain sets one.
    let body = json!({"model": "smart", "messages": [{"role": "user", "content": "hi"}]});
    let mut req = decode_value(&body).unwrap();
    req.params.max_tokens = Some(30);
    assert_eq!(encode(&req, "x", false)["max_tokens"], json!(30));
}

#[test]
fn edited_messages_are_re_encoded_with_the_callers_system_role() {
    let mut req = decode_value(&rich_body()).unwrap();
    req.system = vec![ContentPart::text("Be brief."), ContentPart::text("Cite sources.")];
    req.messages.truncate(1);
    if let Some(native) = &mut req.native {
        native.messages_edited = true;
    }
    let sent = encode(&req, "gpt-4o", false);
    assert_eq!(
        sent["messages"],
        json!([{"role": "developer", "content": "Be brief.\n\nCite sources."},
               {"role": "user", "content": "Weather in Oslo?", "name": "ann"}])
    );
    assert_eq!(sent["seed"], json!(42));

    let body =
        json!({"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]});
    let mut req = decode_value(&body).unwrap();
    if let Some(native) = &mut req.native {
        native.messages_edited = true;
    }
    assert_eq!(encode(&req, "m", false)["messages"][0]["role"], "system");
}

// ---- provider side: from another dialect ----

fn foreign_request() -> ChatRequest {
    ChatRequest {
        model: "smart".into(),
        system: vec![ContentPart::text("Be brief.")],
        messages: vec![
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::text("Weather where this was taken?"),
                    ContentPart::Image {
                        source: ImageSource::Base64 { media_type: "image/jpeg".into(), data: "/9j/4A==".into() },
                    },
                    ContentPart::Other { dialect: Dialect::Anthropic, value: json!({"type": "document"}) },
                ],
                name: None,
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentPart::text("Checking."),
                    ContentPart::Other {
                        dialect: Dialect::Anthropic,
                        value: json!({"type": "thinking", "thinking": "hmm"}),
                    },
                    ContentPart::ToolCall {
                        id: "toolu_01".into(),
                        name: "get_weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into(),
                    },
                ],
                name: None,
            },
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::ToolResult {
                        call_id: "toolu_01".into(),
                        name: None,
                        content: vec![ContentPart::text("4°C")],
                        is_error: false,
                    },
                    ContentPart::text("And tomorrow?"),
                ],
                name: None,
            },
            Message {
                role: Role::Assistant,
                content: vec![ContentPart::ToolCall {
                    id: "toolu_02".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Oslo\",\"day\":1}".into(),
                }],
                name: None,
            },
            Message {
                role: Role::User,
                content: vec![ContentPart::ToolResult {
                    call_id: "toolu_02".into(),
                    name: Some("get_weather".into()),
                    content: vec![ContentPart::text("6°C")],
                    is_error: false,
                }],
                name: None,
            },
            Message {
                role: Role::User,
                content: vec![ContentPart::Image { source: ImageSource::Url("https://example.com/sky.png".into()) }],
                name: Some("ann".into()),
            },
        ],
        tools: vec![ToolDef {
            name: "get_weather".into(),
            description: Some("Current weather".into()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }],
        tool_choice: Some(ToolChoice::Tool("get_weather".into())),
        params: Params { max_tokens: Some(1024), temperature: Some(0.7), top_p: None, stop: vec!["\n\nHuman:".into()] },
        response_format: Some(ResponseFormat::JsonSchema {
            name: "weather".into(),
            schema: json!({"type": "object"}),
            strict: Some(true),
        }),
        stream: true,
        include_usage: false,
        native: Some(Native { dialect: Dialect::Anthropic, body: Map::new(), messages_edited: false }),
    }
}

#[test]
fn builds_from_a_foreign_canonical_request() {
    let sent = encode(&foreign_request(), "gpt-4o", true);
    let expected = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather where this was taken?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A=="}}]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "4°C"},
            {"role": "user", "content": "And tomorrow?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_02", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\",\"day\":1}"}}]},
            {"role": "tool", "tool_call_id": "toolu_02", "content": "6°C"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}}], "name": "ann"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": true}},
        "max_tokens": 1024,
        "temperature": 0.7,
        "stop": ["\n\nHuman:"],
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    assert_eq!(Value::Object(sent), expected);
}

#[test]
fn foreign_request_without_streaming_or_tools() {
    let mut req = foreign_request();
    req.tools.clear();
    req.response_format = Some(ResponseFormat::JsonObject);
    let sent = encode(&req, "llama3", false);
    assert!(!sent.contains_key("tools"));
    assert!(!sent.contains_key("tool_choice"), "tool_choice needs tools");
    assert!(!sent.contains_key("stream_options"));
    assert_eq!(sent["stream"], json!(false));
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
}

#[test]
fn decoded_request_converted_through_canonical_survives() {
    // Decoding an OpenAI body, dropping `native` (as if it came from elsewhere) and encoding gives
    // an equivalent conversation.
    let mut req = decode_value(&json!({"model": "m", "messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "R"}]}))
    .unwrap();
    req.native = None;
    let sent = encode(&req, "m", false);
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "R"}])
    );
}

proptest! {
    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&body);
    }

    #[test]
    fn decode_then_encode_never_panics_on_request_like_json(
        role in prop_oneof![Just("user"), Just("assistant"), Just("tool"), Just("function"), Just("system"), Just("x")],
        content in prop_oneof![
            Just(json!(null)), Just(json!("hi")), Just(json!([])), Just(json!([{"type": "image_url", "image_url": "data:;base64"}])),
            Just(json!([{"type": "refusal", "refusal": 1}])), Just(json!([null])), Just(json!([{"type": "zzz"}])),
        ],
        extra in prop_oneof![
            Just(json!({})), Just(json!({"tool_calls": [{"id": "a", "type": "custom", "custom": {}}]})),
            Just(json!({"tool_call_id": "a", "name": "n"})), Just(json!({"function_call": {"name": "f", "arguments": "{}"}})),
        ],
        max in prop_oneof![Just(json!(null)), Just(json!(1u64 << 40)), Just(json!(-0.0)), Just(json!(7))],
    ) {
        let mut message = as_object(extra);
        message.insert("role".into(), json!(role));
        message.insert("content".into(), content);
        let body = json!({"model": "m", "messages": [message], "max_tokens": max});
        if let Ok(mut req) = decode_value(&body) {
            let _ = encode(&req, "x", true);
            req.native = None;
            let _ = encode(&req, "x", true);
        }
    }
}
