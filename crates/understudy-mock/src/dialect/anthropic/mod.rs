//! Anthropic Messages: `POST /v1/messages` (JSON and SSE) and `GET /v1/models` (when the
//! request carries Anthropic headers).

use std::fmt;

use http::header::HeaderMap;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Invalid, Parsed};
use crate::parse::{count_words, first_unknown_top_level, KeyList, Str, Words};

mod errors;
mod reply;

pub(crate) use errors::{auth_error, error, invalid};
pub(crate) use reply::{answer, models};

struct TopLevel;

impl KeyList for TopLevel {
    const KEYS: &'static [&'static str] = &[
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
        "inference_geo",
    ];
    const NORMALISE: bool = false;
}

/// Vertex AI's Claude body: the model is in the URL, the API version in the body.
struct VertexTopLevel;

impl KeyList for VertexTopLevel {
    const KEYS: &'static [&'static str] = &[
        "anthropic_version",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
    ];
    const NORMALISE: bool = false;
}

/// The only `anthropic_version` Vertex documents.
const VERTEX_VERSION: &str = "vertex-2023-10-16";

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    max_tokens: Option<u64>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    system: Option<Words>,
    stream: Option<bool>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<serde_json::Value>,
    #[serde(borrow)]
    anthropic_version: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    #[serde(borrow)]
    content: Option<Content<'a>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
}

/// Message content: a string, or blocks (whose tool ids we check).
enum Content<'a> {
    Text(Words),
    Blocks(Vec<Block<'a>>),
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Str<'a>>,
    text: Option<Words>,
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    tool_use_id: Option<Str<'a>>,
    content: Option<Words>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content blocks")
            }
            fn visit_str<E>(self, v: &str) -> Result<Content<'a>, E> {
                Ok(Content::Text(Words(count_words(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(64));
                while let Some(b) = seq.next_element()? {
                    blocks.push(b);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Content<'_> {
    fn words(&self) -> u32 {
        match self {
            Content::Text(w) => w.0,
            Content::Blocks(bs) => bs.iter().fold(0u32, |n, b| {
                n.saturating_add(b.text.map_or(0, |w| w.0)).saturating_add(b.content.map_or(0, |w| w.0))
            }),
        }
    }

    fn blocks_of<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Block<'s>> + 's {
        let blocks: &[Block<'_>] = match self {
            Content::Blocks(bs) => bs,
            Content::Text(_) => &[],
        };
        blocks.iter().filter(move |b| b.kind.as_deref() == Some(kind))
    }
}

pub(crate) fn parse(body: &[u8], lenient: bool) -> Result<Parsed<'_>, Invalid> {
    let req: MessagesRequest<'_> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let unknown = if lenient { None } else { first_unknown_top_level::<TopLevel>(body) };
    let invalid = match unknown {
        Some(key) => Some(Invalid::new(format!("{key}: Extra inputs are not permitted"))),
        None if req.model.as_deref().is_none_or(str::is_empty) => Some(Invalid::new("model: Field required")),
        None => validate(&req),
    };
    Ok(parsed(req, invalid))
}

/// A Claude body for Vertex's `rawPredict`: no `model` (it is in the URL, set by the router) and
/// `anthropic_version: "vertex-2023-10-16"`.
pub(crate) fn parse_vertex(body: &[u8], lenient: bool) -> Result<Parsed<'_>, Invalid> {
    let req: MessagesRequest<'_> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    // `model` is refused even when lenient: on Vertex it belongs in the URL.
    let unknown = first_unknown_top_level::<VertexTopLevel>(body).filter(|k| !lenient || k.as_str() == "model");
    let invalid = match (unknown, req.anthropic_version.as_deref()) {
        (Some(key), _) => Some(Invalid::new(format!("{key}: Extra inputs are not permitted"))),
        (None, None) => Some(Invalid::new("anthropic_version: Field required")),
        (None, Some(v)) if v != VERTEX_VERSION => {
            Some(Invalid::new(format!("anthropic_version: Input should be '{VERTEX_VERSION}'")))
        }
        (None, Some(_)) => validate(&req),
    };
    Ok(parsed(req, invalid))
}

fn parsed(req: MessagesRequest<'_>, invalid: Option<Invalid>) -> Parsed<'_> {
    let prompt_words = req
        .messages
        .iter()
        .flatten()
        .filter_map(|m| m.content.as_ref())
        .fold(req.system.map_or(0, |w| w.0), |n, c| n.saturating_add(c.words()));
    let tool = tool_to_call(req.tools, req.tool_choice.as_ref());
    Parsed { model: req.model, stream: req.stream.unwrap_or(false), include_usage: false, prompt_words, tool, invalid }
}

fn json_error(e: &serde_json::Error) -> Invalid {
    if e.is_data() {
        return Invalid::new(format!("Invalid request body: {e}"));
    }
    Invalid::new(format!("There was an error parsing the body: {e}"))
}

fn validate(req: &MessagesRequest<'_>) -> Option<Invalid> {
    if req.max_tokens.is_none() {
        return Some(Invalid::new("max_tokens: Field required"));
    }
    let Some(messages) = &req.messages else {
        return Some(Invalid::new("messages: Field required"));
    };
    if messages.is_empty() {
        return Some(Invalid::new("messages: at least one message is required"));
    }
    validate_turns(messages).or_else(|| validate_tool_results(messages)).or_else(|| validate_prefill(req, messages))
}

/// Claude 4.6 models and later refuse an assistant prefill (a conversation ending with an
/// assistant turn), with the real API's message.
fn validate_prefill(req: &MessagesRequest<'_>, messages: &[Message<'_>]) -> Option<Invalid> {
    let model = req.model.as_deref().unwrap_or("");
    let refuses = ["4-6", "4-7", "opus-5", "sonnet-5", "haiku-5"].iter().any(|v| model.contains(v));
    let ends_with_assistant = messages.last().and_then(|m| m.role.as_deref()) == Some("assistant");
    (refuses && ends_with_assistant).then(|| {
        Invalid::new(
            "This model does not support assistant message prefill. The conversation must end with a user message.",
        )
    })
}

/// Roles are user/assistant (no system role), start with user and alternate.
fn validate_turns(messages: &[Message<'_>]) -> Option<Invalid> {
    let mut previous: Option<&str> = None;
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role.as_deref() {
            None => return Some(Invalid::new(format!("messages.{i}.role: Field required"))),
            Some("system") => {
                return Some(Invalid::new(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, \
                     not \"system\" as an input message role.",
                ))
            }
            Some(r @ ("user" | "assistant")) => r,
            Some(_) => return Some(Invalid::new(format!("messages.{i}.role: Input should be 'user' or 'assistant'"))),
        };
        if m.content.is_none() {
            return Some(Invalid::new(format!("messages.{i}.content: Field required")));
        }
        match previous {
            None if role != "user" => {
                return Some(Invalid::new("messages: first message must use the \"user\" role"));
            }
            Some(p) if p == role => {
                return Some(Invalid::new(format!(
                    "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" \
                     roles in a row"
                )));
            }
            _ => {}
        }
        previous = Some(role);
    }
    None
}

/// Every `tool_result` answers a `tool_use` of the previous message, and every `tool_use`
/// is answered in the next message.
fn validate_tool_results(messages: &[Message<'_>]) -> Option<Invalid> {
    let empty = Content::Blocks(Vec::new());
    for (i, m) in messages.iter().enumerate() {
        let here = m.content.as_ref().unwrap_or(&empty);
        let before = i.checked_sub(1).and_then(|p| messages.get(p)).and_then(|p| p.content.as_ref()).unwrap_or(&empty);
        for (j, b) in here.blocks_of("tool_result").enumerate() {
            let id = b.tool_use_id.as_deref().unwrap_or("");
            if !before.blocks_of("tool_use").any(|u| u.id.as_deref() == Some(id)) {
                return Some(Invalid::new(format!(
                    "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each \
                     `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )));
            }
        }
        let Some(next) = messages.get(i + 1).and_then(|n| n.content.as_ref()) else {
            continue;
        };
        let missing: Vec<&str> = here
            .blocks_of("tool_use")
            .filter_map(|u| u.id.as_deref())
            .filter(|id| !next.blocks_of("tool_result").any(|r| r.tool_use_id.as_deref() == Some(*id)))
            .collect();
        if !missing.is_empty() {
            return Some(Invalid::new(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each \
                 `tool_use` block must have a corresponding `tool_result` block in the next message.",
                missing.join(", ")
            )));
        }
    }
    None
}

/// `tool_choice` `{"type":"tool","name"}` picks a tool, `{"type":"none"}` none, else the first.
fn tool_to_call<'a>(tools: Option<Vec<Tool<'a>>>, choice: Option<&serde_json::Value>) -> Option<Str<'a>> {
    let tools = tools.filter(|t| !t.is_empty())?;
    if let Some(choice) = choice {
        match choice.get("type").and_then(|t| t.as_str()) {
            Some("none") => return None,
            Some("tool") => {
                if let Some(name) = choice.get("name").and_then(|n| n.as_str()) {
                    return Some(Str(name.to_string().into()));
                }
            }
            _ => {}
        }
    }
    tools.into_iter().next().and_then(|t| t.name)
}

/// `x-api-key`, or an OAuth `Authorization: Bearer` token.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key") {
        return key.to_str().ok();
    }
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_of(body: &str) -> String {
        parse(body.as_bytes(), false).unwrap().invalid.map(|i| i.message).unwrap_or_default()
    }

    #[test]
    fn extracts_fields() {
        let p = parse(
            br#"{"model":"claude+hang","max_tokens":10,"system":"be brief","stream":true,
                "messages":[{"role":"user","content":[{"type":"text","text":"hello there"}]}],
                "tools":[{"name":"get_weather","input_schema":{}}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("claude+hang"));
        assert!(p.stream);
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.tool.as_deref(), Some("get_weather"));
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let u = r#"{"role":"user","content":"hi"}"#;
        let a = r#"{"role":"assistant","content":"yo"}"#;
        let cases = [
            (format!(r#"{{"max_tokens":1,"messages":[{u}]}}"#), "model: Field required"),
            (format!(r#"{{"model":"m","messages":[{u}]}}"#), "max_tokens: Field required"),
            (r#"{"model":"m","max_tokens":1}"#.to_string(), "messages: Field required"),
            (format!(r#"{{"model":"m","max_tokens":1,"messages":[{a}]}}"#), "first message must use the \"user\" role"),
            (format!(r#"{{"model":"m","max_tokens":1,"messages":[{u},{u}]}}"#), "roles must alternate"),
            (
                format!(r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"system","content":"x"}},{u}]}}"#),
                "Unexpected role \"system\"",
            ),
            (format!(r#"{{"model":"m","max_tokens":1,"messages":[{u}],"n":2}}"#), "n: Extra inputs are not permitted"),
            (
                format!(
                    r#"{{"model":"m","max_tokens":1,"messages":[{u},{a},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t9","content":"x"}}]}}]}}"#
                ),
                "unexpected `tool_use_id`",
            ),
            (
                format!(
                    r#"{{"model":"m","max_tokens":1,"messages":[{u},{{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"f","input":{{}}}}]}},{u}]}}"#
                ),
                "`tool_use` ids were found without `tool_result`",
            ),
        ];
        for (body, want) in cases {
            let got = invalid_of(&body);
            assert!(got.contains(want), "{body}: {got}");
        }
        let ok = format!(
            r#"{{"model":"m","max_tokens":1,"messages":[{u},{{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"f","input":{{}}}}]}},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"4C"}}]}}]}}"#
        );
        assert_eq!(invalid_of(&ok), "");
        assert!(parse(br#"{"model":"m","max_tokens":1,"messages":[],"n":2}"#, true).unwrap().invalid.is_some());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes, false);
        }
    }
}
