//! OpenAI Chat Completions: `POST /v1/chat/completions` (JSON and SSE) and `GET /v1/models`;
//! embeddings in [`embeddings`].

use http::header::HeaderMap;
use serde::Deserialize;

use super::{Invalid, Parsed};
use crate::parse::{Str, Words};

pub(crate) mod embeddings;
mod errors;
mod reply;

pub(crate) use errors::{auth_error, error, invalid};
pub(crate) use reply::{answer, answer_azure, models};

const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    content: Option<Words>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallRef<'a>>>,
    #[serde(borrow)]
    tool_call_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct ToolCallRef<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    function: Option<Named<'a>>,
    #[serde(borrow)]
    custom: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

pub(crate) fn parse(body: &[u8]) -> Result<Parsed<'_>, Invalid> {
    parse_with(body, true)
}

/// An Azure classic deployment's body: the deployment in the URL chooses the model, so `model`
/// may be left out.
pub(crate) fn parse_deployment(body: &[u8]) -> Result<Parsed<'_>, Invalid> {
    parse_with(body, false)
}

fn parse_with(body: &[u8], model_required: bool) -> Result<Parsed<'_>, Invalid> {
    let req: ChatRequest<'_> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let invalid = validate(&req, model_required);
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream && req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let prompt_words = req.messages.iter().flatten().filter_map(|m| m.content).fold(0u32, |n, w| n.saturating_add(w.0));
    let tool = tool_to_call(req.tools, req.tool_choice.as_ref());
    Ok(Parsed { model: req.model, stream, include_usage, prompt_words, tool, invalid })
}

fn json_error(e: &serde_json::Error) -> Invalid {
    if e.is_data() {
        return Invalid::new(format!("Invalid request body: {e}")).code("invalid_type");
    }
    Invalid::new(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP \
         library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you \
         have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
    )
}

fn validate(req: &ChatRequest<'_>, model_required: bool) -> Option<Invalid> {
    if model_required && req.model.as_deref().is_none_or(str::is_empty) {
        return Some(Invalid::new("you must provide a model parameter"));
    }
    let Some(messages) = &req.messages else {
        return Some(
            Invalid::new("Missing required parameter: 'messages'.")
                .param("messages")
                .code("missing_required_parameter"),
        );
    };
    if messages.is_empty() {
        return Some(Invalid::new("[] is too short - 'messages'").param("messages").code("empty_array"));
    }
    if let Some(bad) = validate_roles(messages) {
        return Some(bad);
    }
    if req.stream_options.is_some() && req.stream != Some(true) {
        return Some(
            Invalid::new("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
                .param("stream_options"),
        );
    }
    None
}

/// Roles are known, and every assistant `tool_calls` id is answered by a `tool` message
/// before the next other message (a classic translation bug when tool results are merged).
fn validate_roles(messages: &[Message<'_>]) -> Option<Invalid> {
    let mut pending: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let Some(role) = m.role.as_deref() else {
            return Some(
                Invalid::new(format!("Missing required parameter: 'messages[{i}].role'."))
                    .param(format!("messages[{i}].role"))
                    .code("missing_required_parameter"),
            );
        };
        if !ROLES.contains(&role) {
            return Some(
                Invalid::new(format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', \
                     'tool', and 'developer'."
                ))
                .param(format!("messages[{i}].role"))
                .code("invalid_value"),
            );
        }
        if role == "tool" {
            let id = m.tool_call_id.as_deref().unwrap_or("");
            match pending.iter().position(|p| *p == id) {
                Some(p) => {
                    pending.swap_remove(p);
                }
                None => {
                    return Some(
                        Invalid::new(
                            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message \
                             with 'tool_calls'.",
                        )
                        .param(format!("messages.[{i}].role")),
                    )
                }
            }
            continue;
        }
        if !pending.is_empty() {
            return Some(unanswered(&pending, &format!("messages.[{i}].role")));
        }
        if role == "assistant" {
            pending = m.tool_calls.iter().flatten().filter_map(|c| c.id.as_deref()).collect();
        }
    }
    (!pending.is_empty()).then(|| unanswered(&pending, "messages"))
}

fn unanswered(ids: &[&str], param: &str) -> Invalid {
    Invalid::new(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each \
         'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.join(", ")
    ))
    .param(param)
}

/// The named tool of `tool_choice`, else the first tool; none for `"none"` or no tools.
fn tool_to_call<'a>(tools: Option<Vec<Tool<'a>>>, choice: Option<&serde_json::Value>) -> Option<Str<'a>> {
    let tools = tools.filter(|t| !t.is_empty())?;
    match choice {
        Some(serde_json::Value::String(s)) if s == "none" => return None,
        Some(serde_json::Value::Object(o)) => {
            let named = o.get("function").and_then(|f| f.get("name")).and_then(|n| n.as_str());
            if let Some(name) = named {
                return Some(Str(name.to_string().into()));
            }
        }
        _ => {}
    }
    let first = tools.into_iter().next()?;
    first.function.or(first.custom).and_then(|n| n.name)
}

pub(crate) fn api_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Parsed<'_>, Invalid> {
        parse(s.as_bytes())
    }

    #[test]
    fn extracts_model_stream_usage_and_words() {
        let p = parse_str(
            r#"{"model":"m+hang","stream":true,"stream_options":{"include_usage":true},
                "messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi there"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("m+hang"));
        assert!(p.stream && p.include_usage);
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let cases = [
            (r#"{"messages":[{"role":"user","content":"x"}]}"#, "you must provide a model parameter"),
            (r#"{"model":"m"}"#, "Missing required parameter: 'messages'."),
            (r#"{"model":"m","messages":[]}"#, "[] is too short - 'messages'"),
            (r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#, "Invalid value: 'robot'"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{}}"#, "only allowed when"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"r"}]}"#,
                "must be a response to a preceeding message",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1"}]},{"role":"user","content":"y"}]}"#,
                "did not have response messages: c1",
            ),
        ];
        for (body, want) in cases {
            let got = parse_str(body).unwrap().invalid.map(|i| i.message).unwrap_or_default();
            assert!(got.contains(want), "{body}: {got}");
        }
        let ok = r#"{"model":"m","messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1"},{"id":"c2"}]},
            {"role":"tool","tool_call_id":"c2","content":"a"},{"role":"tool","tool_call_id":"c1","content":"b"}]}"#;
        assert_eq!(parse_str(ok).unwrap().invalid, None);
    }

    #[test]
    fn broken_json_is_refused() {
        assert!(parse_str("{").unwrap_err().message.contains("could not parse the JSON body"));
        assert!(parse_str(r#"{"model":5}"#).is_err());
    }

    #[test]
    fn tool_choice_selects_the_tool() {
        let tools =
            r#""tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]"#;
        let base = r#"{"model":"m","messages":[{"role":"user","content":"x"}],"#;
        let tool_of = |body: String| parse_str(&body).unwrap().tool.map(|t| t.0.into_owned());
        assert_eq!(tool_of(format!("{base}{tools}}}")).as_deref(), Some("a"));
        assert_eq!(tool_of(format!(r#"{base}{tools},"tool_choice":"none"}}"#)), None);
        let named = format!(r#"{base}{tools},"tool_choice":{{"type":"function","function":{{"name":"b"}}}}}}"#);
        assert_eq!(tool_of(named).as_deref(), Some("b"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes);
        }
    }
}
