//! Canonical [`ChatRequest`] -> Converse / ConverseStream body. The model id and the streaming
//! mode go in the URL, not the body.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::canonical::{ChatRequest, ContentPart, Dialect, ImageSource, Message, Role, ToolChoice};
use crate::failure::{Failure, FailureClass};
use crate::wire::anthropic::request::json_instruction;
use crate::wire::anthropic::tool_input;

/// Put before a conversation that starts with the assistant: Converse requires a user turn
/// first.
const LEADING_USER_TURN: &str = "Continue.";

/// Converse's own top-level members: a chain entry's `params` naming one of these set it
/// directly; any other key is a model-native field and goes in `additionalModelRequestFields`.
const TOP_LEVEL: [&str; 12] = [
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
];

/// Encodes the body. `params` are the chain entry's provider-native fields. Fails (as
/// `deployment_invalid`, so the route moves on) on content Converse cannot take: an image by
/// http(s) URL, or an image format other than png, jpeg, gif and webp.
pub fn encode(req: &ChatRequest, params: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages(&req.messages)?));
    let system = system(req);
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let config = inference_config(req);
    if !config.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(config));
    }
    if let Some(tools) = tool_config(req) {
        body.insert("toolConfig".into(), tools);
    }
    merge_params(&mut body, params);
    Ok(body)
}

/// Top-level Converse members replace ours; model-native fields join
/// `additionalModelRequestFields` (whose own keys, if given as an object, are merged too).
fn merge_params(body: &mut Map<String, Value>, params: &Map<String, Value>) {
    let mut extra = Map::new();
    for (k, v) in params {
        match (k.as_str(), v) {
            ("additionalModelRequestFields", Value::Object(fields)) => {
                extra.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (k, _) if TOP_LEVEL.contains(&k) => {
                body.insert(k.to_string(), v.clone());
            }
            _ => {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    if !extra.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
}

/// The system prompt's text parts, plus the JSON instruction that stands in for a
/// `response_format` (Converse has none).
fn system(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = req
        .system
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } if !text.is_empty() => Some(json!({ "text": text })),
            _ => None,
        })
        .collect();
    if let Some(instruction) = req.response_format.as_ref().and_then(json_instruction) {
        out.push(json!({ "text": instruction }));
    }
    out
}

fn inference_config(req: &ChatRequest) -> Map<String, Value> {
    let p = &req.params;
    let mut c = Map::new();
    if let Some(n) = p.max_tokens {
        c.insert("maxTokens".into(), n.into());
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
    c
}

/// Canonical messages as Converse turns: roles alternate starting with the user (consecutive
/// same-role turns merged, a placeholder user turn before a leading assistant turn), tool calls
/// in assistant turns, tool results first in their user turn, blocks Converse cannot take left
/// out.
fn messages(messages: &[Message]) -> Result<Vec<Value>, Failure> {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in messages {
        for part in &m.content {
            let Some((role, block)) = content_block(m.role, part)? else {
                continue;
            };
            match turns.last_mut() {
                Some((r, blocks)) if *r == role => blocks.push(block),
                _ => turns.push((role, vec![block])),
            }
        }
    }
    if matches!(turns.first(), Some((Role::Assistant, _))) {
        turns.insert(0, (Role::User, vec![json!({ "text": LEADING_USER_TURN })]));
    }
    Ok(turns
        .into_iter()
        .map(|(role, blocks)| match role {
            Role::User => json!({"role": "user", "content": tool_results_first(blocks)}),
            Role::Assistant => json!({"role": "assistant", "content": blocks}),
        })
        .collect())
}

fn tool_results_first(blocks: Vec<Value>) -> Vec<Value> {
    let (mut results, rest): (Vec<Value>, Vec<Value>) = blocks.into_iter().partition(|b| b.get("toolResult").is_some());
    results.extend(rest);
    results
}

/// One canonical part as a content block (a union: exactly one key) and the role of its turn.
fn content_block(role: Role, part: &ContentPart) -> Result<Option<(Role, Value)>, Failure> {
    Ok(match part {
        ContentPart::ToolCall { id, name, arguments } => {
            Some((Role::Assistant, json!({"toolUse": {"toolUseId": id, "name": name, "input": tool_input(arguments)}})))
        }
        ContentPart::ToolResult { call_id, content, is_error, .. } => {
            let mut result = json!({"toolUseId": call_id, "content": result_content(content)?});
            // Only some models accept `status`; it is sent when it carries news.
            if *is_error {
                result["status"] = Value::from("error");
            }
            Some((Role::User, json!({ "toolResult": result })))
        }
        other => plain_block(other)?.map(|b| (role, b)),
    })
}

/// Text, images and Bedrock's own blocks; `None` for what Converse cannot take.
fn plain_block(part: &ContentPart) -> Result<Option<Value>, Failure> {
    Ok(match part {
        ContentPart::Text { text } if text.is_empty() => None,
        ContentPart::Text { text } => Some(json!({ "text": text })),
        ContentPart::Image { source } => Some(image(source)?),
        ContentPart::Other { dialect: Dialect::Bedrock, value: value @ Value::Object(_) } => Some(value.clone()),
        ContentPart::Other { dialect, .. } => {
            tracing::debug!(dialect = dialect.as_str(), "dropping a content block Bedrock cannot take");
            None
        }
        ContentPart::ToolCall { .. } | ContentPart::ToolResult { .. } => None,
    })
}

fn result_content(parts: &[ContentPart]) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::new();
    for p in parts {
        out.extend(plain_block(p)?);
    }
    Ok(out)
}

/// An image block: inline bytes (base64 in JSON) or an `s3://` location; Bedrock fetches
/// nothing else.
fn image(source: &ImageSource) -> Result<Value, Failure> {
    match source {
        ImageSource::Base64 { media_type, data } => inline(media_type, data),
        ImageSource::Url(url) => {
            if let Some((media_type, data)) = parse_data_url(url) {
                return inline(media_type, data);
            }
            if url.starts_with("s3://") {
                let format = format_of(&guess_media_type(url))?;
                return Ok(json!({"image": {"format": format, "source": {"s3Location": {"uri": url}}}}));
            }
            Err(Failure::new(
                FailureClass::DeploymentInvalid,
                "Bedrock cannot fetch images by URL; send the image inline (base64)",
            )
            .detail("image_url_unsupported"))
        }
    }
}

fn inline(media_type: &str, data: &str) -> Result<Value, Failure> {
    Ok(json!({"image": {"format": format_of(media_type)?, "source": {"bytes": data}}}))
}

/// `image/png` -> `png`; Converse takes png, jpeg, gif and webp.
fn format_of(media_type: &str) -> Result<&'static str, Failure> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Ok("png"),
        "image/jpeg" | "image/jpg" => Ok("jpeg"),
        "image/gif" => Ok("gif"),
        "image/webp" => Ok("webp"),
        other => Err(Failure::new(
            FailureClass::DeploymentInvalid,
            format!("Bedrock takes png, jpeg, gif and webp images, not {other}"),
        )
        .detail("unsupported_image")),
    }
}

fn guess_media_type(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" | "gif" | "webp" => format!("image/{ext}"),
        _ => "image/jpeg".to_string(),
    }
}

/// `data:image/png;base64,AAAA` -> (`image/png`, `AAAA`).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((if media_type.is_empty() { "image/jpeg" } else { media_type }, data))
}

/// `toolConfig`: the declared tools, plus a stub for any tool the conversation already used but
/// the request no longer declares (Converse refuses `toolUse` / `toolResult` blocks without a
/// `toolConfig`). `ToolChoice::None` has no Converse equivalent: the tools are left out unless
/// the conversation needs them, and then sent without a choice.
fn tool_config(req: &ChatRequest) -> Option<Value> {
    let declared: BTreeSet<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
    let used = used_tools(&req.messages);
    let history = !used.is_empty();
    if matches!(req.tool_choice, Some(ToolChoice::None)) && !history {
        return None;
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), t.name.clone().into());
            if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
                spec.insert("description".into(), d.into());
            }
            let schema = if t.parameters.is_object() { t.parameters.clone() } else { empty_schema() };
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            json!({ "toolSpec": spec })
        })
        .collect();
    for name in used.iter().filter(|n| !declared.contains(n.as_str())) {
        tools.push(json!({"toolSpec": {"name": name, "inputSchema": {"json": empty_schema()}}}));
    }
    if tools.is_empty() {
        return None;
    }
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    let choice = match &req.tool_choice {
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Tool(name)) => Some(json!({"tool": {"name": name}})),
        Some(ToolChoice::None) | None => None,
    };
    if let Some(c) = choice {
        config.insert("toolChoice".into(), c);
    }
    Some(Value::Object(config))
}

fn empty_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// Names of the tools called in the conversation; results without a matching call count by
/// their own name when they have one.
fn used_tools(messages: &[Message]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut any_result = false;
    for p in messages.iter().flat_map(|m| &m.content) {
        match p {
            ContentPart::ToolCall { name, .. } => {
                out.insert(name.clone());
            }
            ContentPart::ToolResult { name, .. } => {
                any_result = true;
                if let Some(n) = name {
                    out.insert(n.clone());
                }
            }
            _ => {}
        }
    }
    if any_result && out.is_empty() {
        // A result whose call and name are unknown still needs some toolConfig.
        out.insert("tool".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Params, ResponseFormat, ToolDef};

    fn user(content: Vec<ContentPart>) -> Message {
        Message { role: Role::User, content, name: None }
    }

    fn assistant(content: Vec<ContentPart>) -> Message {
        Message { role: Role::Assistant, content, name: None }
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
                user(vec![ContentPart::Image { source: ImageSource::Url("data:image/jpeg;base64,/9j/".into()) }]),
                assistant(vec![
                    ContentPart::text("Checking."),
                    ContentPart::Other { dialect: Dialect::Anthropic, value: json!({"type": "thinking"}) },
                    ContentPart::ToolCall {
                        id: "tooluse_1".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Oslo"}"#.into(),
                    },
                ]),
                user(vec![
                    ContentPart::text("and hurry"),
                    ContentPart::ToolResult {
                        call_id: "tooluse_1".into(),
                        name: None,
                        content: vec![ContentPart::text(r#"{"temp_c": 4}"#)],
                        is_error: false,
                    },
                ]),
                assistant(vec![ContentPart::ToolCall {
                    id: "tooluse_2".into(),
                    name: "get_time".into(),
                    arguments: "not json".into(),
                }]),
                user(vec![ContentPart::ToolResult {
                    call_id: "tooluse_2".into(),
                    name: None,
                    content: vec![],
                    is_error: true,
                }]),
            ],
            tools: vec![
                ToolDef {
                    name: "get_weather".into(),
                    description: Some("Current weather".into()),
                    parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                },
                ToolDef { name: "get_time".into(), description: None, parameters: Value::Null },
            ],
            tool_choice: Some(ToolChoice::Auto),
            params: Params {
                max_tokens: Some(1024),
                temperature: Some(0.7),
                top_p: Some(0.9),
                stop: vec!["END".into()],
            },
            response_format: Some(ResponseFormat::JsonObject),
            stream: true,
            include_usage: false,
            native: None,
        }
    }

    #[test]
    fn full_request_encodes_exactly() {
        let mut params = Map::new();
        params.insert("top_k".into(), json!(50));
        params.insert("performanceConfig".into(), json!({"latency": "optimized"}));
        params.insert("additionalModelRequestFields".into(), json!({"anthropic_beta": ["x"]}));
        let body = encode(&full_request(), &params).unwrap();
        let expected = json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "Weather in Oslo?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBOR"}}},
                    {"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}}
                ]},
                {"role": "assistant", "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "{\"temp_c\": 4}"}]}},
                    {"text": "and hurry"}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "tooluse_2", "name": "get_time", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_2", "content": [], "status": "error"}}
                ]}
            ],
            "system": [{"text": "Be brief."}, {"text": "Respond only with a JSON object."}],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 0.7, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [
                    {"toolSpec": {"name": "get_weather", "description": "Current weather",
                                  "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
                    {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}}
                ],
                "toolChoice": {"auto": {}}
            },
            "performanceConfig": {"latency": "optimized"},
            "additionalModelRequestFields": {"top_k": 50, "anthropic_beta": ["x"]}
        });
        assert_eq!(Value::Object(body), expected);
    }

    #[test]
    fn minimal_request() {
        let req = ChatRequest { messages: vec![Message::text(Role::User, "Hi")], ..Default::default() };
        let body = encode(&req, &Map::new()).unwrap();
        assert_eq!(Value::Object(body), json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}));
    }

    #[test]
    fn tool_choices() {
        let mut req = full_request();
        let cases = [
            (ToolChoice::Required, json!({"any": {}})),
            (ToolChoice::Tool("get_time".into()), json!({"tool": {"name": "get_time"}})),
        ];
        for (choice, expected) in cases {
            req.tool_choice = Some(choice);
            assert_eq!(encode(&req, &Map::new()).unwrap()["toolConfig"]["toolChoice"], expected);
        }
        // `none` with tool history: tools stay (Converse needs them), no choice.
        req.tool_choice = Some(ToolChoice::None);
        let body = encode(&req, &Map::new()).unwrap();
        assert!(body["toolConfig"].get("toolChoice").is_none());
        assert_eq!(body["toolConfig"]["tools"].as_array().unwrap().len(), 2);
        // `none` without history: no toolConfig at all.
        req.messages = vec![Message::text(Role::User, "hi")];
        assert!(!encode(&req, &Map::new()).unwrap().contains_key("toolConfig"));
        req.tool_choice = None;
        let body = encode(&req, &Map::new()).unwrap();
        assert!(body["toolConfig"].get("toolChoice").is_none());
    }

    #[test]
    fn tools_used_but_no_longer_declared_get_a_stub() {
        let mut req = full_request();
        req.tools.clear();
        req.tool_choice = None;
        let body = encode(&req, &Map::new()).unwrap();
        let names: Vec<&str> = body["toolConfig"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["toolSpec"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["get_time", "get_weather"]);
    }

    #[test]
    fn leading_assistant_turn_gets_a_user_turn_and_roles_merge() {
        let req = ChatRequest {
            messages: vec![
                assistant(vec![ContentPart::text("Hello")]),
                assistant(vec![ContentPart::text("again")]),
                user(vec![ContentPart::text("")]),
                Message::text(Role::User, "q"),
            ],
            ..Default::default()
        };
        let body = encode(&req, &Map::new()).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "Continue."}]},
                {"role": "assistant", "content": [{"text": "Hello"}, {"text": "again"}]},
                {"role": "user", "content": [{"text": "q"}]}
            ])
        );
    }

    #[test]
    fn images_bedrock_cannot_take_fail_over() {
        let with = |source: ImageSource| ChatRequest {
            messages: vec![user(vec![ContentPart::Image { source }])],
            ..Default::default()
        };
        let f = encode(&with(ImageSource::Url("https://x.test/cat.png".into())), &Map::new()).unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("image_url_unsupported")));
        let f = encode(&with(ImageSource::Base64 { media_type: "image/heic".into(), data: "x".into() }), &Map::new())
            .unwrap_err();
        assert_eq!((f.class, f.detail), (FailureClass::DeploymentInvalid, Some("unsupported_image")));
        let body = encode(&with(ImageSource::Url("s3://bucket/a/cat.webp".into())), &Map::new()).unwrap();
        assert_eq!(
            body["messages"][0]["content"][0],
            json!({"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/a/cat.webp"}}}})
        );
    }

    #[test]
    fn bedrock_blocks_pass_through() {
        let block = json!({"document": {"format": "pdf", "name": "doc", "source": {"bytes": "JVBERi0="}}});
        let req = ChatRequest {
            messages: vec![user(vec![
                ContentPart::Other { dialect: Dialect::Bedrock, value: block.clone() },
                ContentPart::text("summarise"),
            ])],
            ..Default::default()
        };
        let body = encode(&req, &Map::new()).unwrap();
        assert_eq!(body["messages"][0]["content"][0], block);
    }

    #[test]
    fn top_level_params_replace_and_others_become_model_fields() {
        let req = ChatRequest { messages: vec![Message::text(Role::User, "Hi")], ..Default::default() };
        let mut params = Map::new();
        params.insert("inferenceConfig".into(), json!({"maxTokens": 5}));
        params.insert("guardrailConfig".into(), json!({"guardrailIdentifier": "g", "guardrailVersion": "1"}));
        params.insert("reasoning_config".into(), json!({"type": "enabled"}));
        let body = encode(&req, &params).unwrap();
        assert_eq!(body["inferenceConfig"], json!({"maxTokens": 5}));
        assert_eq!(body["guardrailConfig"]["guardrailIdentifier"], "g");
        assert_eq!(body["additionalModelRequestFields"], json!({"reasoning_config": {"type": "enabled"}}));
    }
}
