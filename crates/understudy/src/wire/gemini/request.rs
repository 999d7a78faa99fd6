//! Canonical [`ChatRequest`] -> Gemini `generateContent` body (REST camelCase).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::canonical::{ChatRequest, ContentPart, Dialect, ImageSource, Message, ResponseFormat, Role, ToolChoice};

/// Google's documented placeholder for a `thoughtSignature` the client does not have. Gemini 3
/// models reject a replayed `functionCall` without a signature, and a conversation that comes from
/// another dialect (or through the canonical model, which has no signatures) never has one.
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// Encodes the request body. The model and the streaming mode go in the URL; `model` only decides
/// whether replayed function calls need a placeholder thought signature.
pub fn encode(req: &ChatRequest, model: &str, _stream: bool) -> Map<String, Value> {
    let mut body = Map::new();
    let system: Vec<Value> = req.system.iter().filter_map(plain_part).collect();
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let mut contents = contents(&req.messages);
    if needs_signature_placeholder(model) {
        add_signature_placeholders(&mut contents);
    }
    body.insert("contents".into(), Value::Array(contents));
    if !req.tools.is_empty() {
        body.insert("tools".into(), tools(req));
        // Gemini rejects a function calling config without function declarations.
        if let Some(choice) = &req.tool_choice {
            body.insert("toolConfig".into(), tool_config(choice));
        }
    }
    let config = generation_config(req);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    body
}

/// The conversation as `contents`: roles `user` / `model` on every turn, consecutive turns of the
/// same role merged (Gemini expects alternation), turns left without parts dropped.
fn contents(messages: &[Message]) -> Vec<Value> {
    // Tool results name their function; a result without a name borrows its call's.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in messages {
        let mut parts = Vec::new();
        for p in &m.content {
            if let ContentPart::ToolCall { id, name, .. } = p {
                call_names.insert(id, name);
            }
            parts.extend(part(p, &call_names));
        }
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((role, prev)) if *role == m.role => prev.extend(parts),
            _ => out.push((m.role, parts)),
        }
    }
    out.into_iter().map(|(role, parts)| json!({"role": role_name(role), "parts": parts})).collect()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "model",
    }
}

/// One canonical part as a Gemini part; `None` for what Gemini cannot take (empty text, blocks
/// of another dialect).
fn part(p: &ContentPart, call_names: &HashMap<&str, &str>) -> Option<Value> {
    match p {
        ContentPart::ToolCall { name, arguments, .. } => Some(json!({
            "functionCall": {"name": name, "args": arguments_object(arguments)}
        })),
        ContentPart::ToolResult { call_id, name, content, is_error } => {
            let name = name.as_deref().or_else(|| call_names.get(call_id.as_str()).copied()).unwrap_or(call_id);
            Some(json!({
                "functionResponse": {"name": name, "response": result_object(content, *is_error)}
            }))
        }
        other => plain_part(other),
    }
}

/// Text, images and Gemini's own blocks: the parts that need no conversation context.
fn plain_part(p: &ContentPart) -> Option<Value> {
    match p {
        ContentPart::Text { text } if !text.is_empty() => Some(json!({ "text": text })),
        ContentPart::Image { source } => Some(image(source)),
        ContentPart::Other { dialect: Dialect::Gemini, value: value @ Value::Object(_) } => Some(value.clone()),
        _ => None,
    }
}

fn image(source: &ImageSource) -> Value {
    match source {
        ImageSource::Base64 { media_type, data } => inline_data(media_type, data),
        ImageSource::Url(url) => match parse_data_url(url) {
            Some((media_type, data)) => inline_data(media_type, data),
            None => json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}),
        },
    }
}

fn inline_data(media_type: &str, data: &str) -> Value {
    json!({"inlineData": {"mimeType": media_type, "data": data}})
}

/// `data:image/png;base64,AAAA` -> (`image/png`, `AAAA`), in case a front left one as a URL:
/// Gemini cannot fetch it.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((if media_type.is_empty() { "image/jpeg" } else { media_type }, data))
}

/// The image type from the URL's extension; JPEG when it says nothing.
fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        _ => "image/jpeg",
    }
}

/// Gemini wants `args` as an object; arguments that are not a JSON object become `{}`.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// Gemini wants `response` as an object: a JSON object result is sent as is, anything else is
/// wrapped, under `error` for a failed call (the key the API documents for error details).
fn result_object(content: &[ContentPart], is_error: bool) -> Value {
    let text = content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ if is_error => json!({ "error": text }),
        _ => json!({ "result": text }),
    }
}

/// Whether replayed calls need [`SKIP_THOUGHT_SIGNATURE`]: every model but the 1.x and 2.x
/// Gemini families, which predate thought signatures.
fn needs_signature_placeholder(model: &str) -> bool {
    let m = model.strip_prefix("models/").unwrap_or(model);
    !(m.starts_with("gemini-1") || m.starts_with("gemini-2"))
}

/// Gives the first `functionCall` of each model turn a placeholder signature (Gemini checks the
/// first call of a step; parallel calls after it carry none).
fn add_signature_placeholders(contents: &mut [Value]) {
    for content in contents.iter_mut().filter(|c| c["role"] == "model") {
        let Some(parts) = content.get_mut("parts").and_then(Value::as_array_mut) else {
            continue;
        };
        let first_call = parts.iter_mut().filter_map(Value::as_object_mut).find(|p| p.contains_key("functionCall"));
        if let Some(p) = first_call {
            p.entry("thoughtSignature").or_insert_with(|| SKIP_THOUGHT_SIGNATURE.into());
        }
    }
}

/// Tool definitions as plain JSON Schema (`parametersJsonSchema`), not the OpenAPI subset.
fn tools(req: &ChatRequest) -> Value {
    let decls: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut d = Map::new();
            d.insert("name".into(), t.name.clone().into());
            if let Some(desc) = &t.description {
                d.insert("description".into(), desc.clone().into());
            }
            if !t.parameters.is_null() {
                d.insert("parametersJsonSchema".into(), t.parameters.clone());
            }
            Value::Object(d)
        })
        .collect();
    json!([{ "functionDeclarations": decls }])
}

fn tool_config(choice: &ToolChoice) -> Value {
    let config = match choice {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    };
    json!({ "functionCallingConfig": config })
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let p = &req.params;
    let mut c = Map::new();
    if let Some(n) = p.max_tokens {
        c.insert("maxOutputTokens".into(), n.into());
    }
    if let Some(t) = p.temperature {
        c.insert("temperature".into(), t.into());
    }
    if let Some(t) = p.top_p {
        c.insert("topP".into(), t.into());
    }
    if !p.stop.is_empty() {
        c.insert("stopSequences".into(), p.stop.clone().into());
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            c.insert("responseMimeType".into(), "application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            c.insert("responseMimeType".into(), "application/json".into());
            c.insert("responseJsonSchema".into(), schema.clone());
        }
        Some(ResponseFormat::Text) | None => {}
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Params, ToolDef};

    fn user(content: Vec<ContentPart>) -> Message {
        Message { role: Role::User, content, name: None }
    }

    fn assistant(content: Vec<ContentPart>) -> Message {
        Message { role: Role::Assistant, content, name: None }
    }

    fn result(call_id: &str, name: Option<&str>, text: &str, is_error: bool) -> ContentPart {
        ContentPart::ToolResult {
            call_id: call_id.into(),
            name: name.map(Into::into),
            content: vec![ContentPart::text(text)],
            is_error,
        }
    }

    fn full_request() -> ChatRequest {
        ChatRequest {
            model: "smart".into(),
            system: vec![ContentPart::text("Be brief."), ContentPart::text("")],
            messages: vec![
                user(vec![
                    ContentPart::text("Weather in Oslo?"),
                    ContentPart::Image {
                        source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBOR".into() },
                    },
                ]),
                user(vec![
                    ContentPart::Image { source: ImageSource::Url("https://x.test/a/cat.WEBP?size=2".into()) },
                    ContentPart::Image { source: ImageSource::Url("https://x.test/photo".into()) },
                ]),
                assistant(vec![
                    ContentPart::text("Checking."),
                    ContentPart::Other {
                        dialect: Dialect::Anthropic,
                        value: json!({"type": "thinking", "thinking": "hmm"}),
                    },
                    ContentPart::ToolCall {
                        id: "call_a".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Oslo"}"#.into(),
                    },
                ]),
                assistant(vec![ContentPart::ToolCall {
                    id: "call_b".into(),
                    name: "get_time".into(),
                    arguments: "not json".into(),
                }]),
                user(vec![result("call_a", None, r#"{"temp_c": 4}"#, false)]),
                user(vec![result("call_b", Some("get_time"), "12:00", false)]),
                user(vec![result("call_z", None, "boom", true)]),
                assistant(vec![ContentPart::text("4°C at noon.")]),
            ],
            tools: vec![
                ToolDef {
                    name: "get_weather".into(),
                    description: Some("Current weather".into()),
                    parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
                },
                ToolDef { name: "get_time".into(), description: None, parameters: Value::Null },
            ],
            tool_choice: Some(ToolChoice::Auto),
            params: Params {
                max_tokens: Some(1024),
                temperature: Some(0.5),
                top_p: Some(0.95),
                stop: vec!["END".into()],
            },
            response_format: Some(ResponseFormat::JsonSchema {
                name: "answer".into(),
                schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                strict: Some(true),
            }),
            stream: true,
            include_usage: true,
            native: None,
        }
    }

    #[test]
    fn full_request_encodes_exactly() {
        let body = encode(&full_request(), "gemini-2.5-flash", true);
        let expected = json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "Weather in Oslo?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                    {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/a/cat.WEBP?size=2"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/photo"}}
                ]},
                {"role": "model", "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                    {"functionCall": {"name": "get_time", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 4}}},
                    {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                    {"functionResponse": {"name": "call_z", "response": {"error": "boom"}}}
                ]},
                {"role": "model", "parts": [{"text": "4°C at noon."}]}
            ],
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "description": "Current weather",
                 "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "get_time"}
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {
                "maxOutputTokens": 1024, "temperature": 0.5, "topP": 0.95, "stopSequences": ["END"],
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "string"}}}
            }
        });
        assert_eq!(Value::Object(body), expected);
    }

    #[test]
    fn tool_choice_variants() {
        let mut req = full_request();
        let cases = [
            (ToolChoice::None, json!({"mode": "NONE"})),
            (ToolChoice::Required, json!({"mode": "ANY"})),
            (ToolChoice::Tool("get_time".into()), json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]})),
        ];
        for (choice, expected) in cases {
            req.tool_choice = Some(choice);
            let body = encode(&req, "gemini-2.5-flash", false);
            assert_eq!(body["toolConfig"], json!({ "functionCallingConfig": expected }));
        }
        req.tool_choice = None;
        assert!(!encode(&req, "gemini-2.5-flash", false).contains_key("toolConfig"));
        // No declarations: no config either.
        req.tools.clear();
        req.tool_choice = Some(ToolChoice::Required);
        let body = encode(&req, "gemini-2.5-flash", false);
        assert!(!body.contains_key("tools"));
        assert!(!body.contains_key("toolConfig"));
    }

    #[test]
    fn minimal_request_omits_empty_objects() {
        let req = ChatRequest { messages: vec![Message::text(Role::User, "Hi")], ..Default::default() };
        let body = encode(&req, "gemini-2.5-flash", false);
        assert_eq!(Value::Object(body), json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}));
    }

    #[test]
    fn json_object_format() {
        let req = ChatRequest {
            messages: vec![Message::text(Role::User, "Hi")],
            response_format: Some(ResponseFormat::JsonObject),
            ..Default::default()
        };
        let body = encode(&req, "gemini-2.5-flash", false);
        assert_eq!(body["generationConfig"], json!({"responseMimeType": "application/json"}));
    }

    #[test]
    fn newer_models_get_a_placeholder_thought_signature_on_the_first_call_of_a_turn() {
        let body = encode(&full_request(), "gemini-3-pro-preview", false);
        let model_turn = &body["contents"][1]["parts"];
        assert_eq!(model_turn[1]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE);
        assert!(model_turn[2].get("thoughtSignature").is_none());
        assert!(model_turn[0].get("thoughtSignature").is_none());
        let old = encode(&full_request(), "models/gemini-2.0-flash", false);
        assert!(old["contents"][1]["parts"][1].get("thoughtSignature").is_none());
    }

    #[test]
    fn gemini_blocks_pass_through_and_data_urls_become_inline() {
        let req = ChatRequest {
            messages: vec![user(vec![
                ContentPart::Other {
                    dialect: Dialect::Gemini,
                    value: json!({"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/f.pdf"}}),
                },
                ContentPart::Image { source: ImageSource::Url("data:image/gif;base64,R0lG".into()) },
            ])],
            ..Default::default()
        };
        let body = encode(&req, "gemini-2.5-flash", false);
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/f.pdf"}},
                {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}}
            ])
        );
    }

    #[test]
    fn turns_left_empty_are_dropped_before_merging() {
        let req = ChatRequest {
            messages: vec![
                Message::text(Role::User, "a"),
                assistant(vec![ContentPart::text("")]),
                Message::text(Role::User, "b"),
            ],
            ..Default::default()
        };
        let body = encode(&req, "gemini-2.5-flash", false);
        assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]));
    }
}
