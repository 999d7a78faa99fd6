//! Gemini API v1beta: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` (CRLF-framed `data:` events, no `[DONE]`) and
//! `GET /v1beta/models`; `:batchEmbedContents` in [`embeddings`].

use std::borrow::Cow;
use std::fmt;

use http::header::HeaderMap;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{Invalid, Parsed};
use crate::http::query_param;
use crate::parse::{first_unknown_top_level, FirstUnknown, KeyList, Str, Words};

pub(crate) mod embeddings;
mod errors;
mod reply;

pub(crate) use errors::{auth_error, error, invalid};
pub(crate) use reply::{answer, models};

pub(super) const JSON_UTF8: &str = "application/json; charset=UTF-8";
pub(super) const CRLF: &[u8] = b"\r\n";

struct TopLevel;

impl KeyList for TopLevel {
    const KEYS: &'static [&'static str] = &[
        "contents",
        "tools",
        "toolconfig",
        "safetysettings",
        "systeminstruction",
        "generationconfig",
        "cachedcontent",
        "model",
    ];
    const NORMALISE: bool = true;
}

struct GenerationConfig;

impl KeyList for GenerationConfig {
    const KEYS: &'static [&'static str] = &[
        "stopsequences",
        "responsemimetype",
        "responseschema",
        "responsejsonschema",
        "responsemodalities",
        "candidatecount",
        "maxoutputtokens",
        "temperature",
        "topp",
        "topk",
        "seed",
        "presencepenalty",
        "frequencypenalty",
        "responselogprobs",
        "logprobs",
        "enableenhancedcivicanswers",
        "speechconfig",
        "thinkingconfig",
        "imageconfig",
        "mediaresolution",
    ];
    const NORMALISE: bool = true;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    #[serde(borrow)]
    contents: Option<Vec<Content<'a>>>,
    #[serde(alias = "system_instruction")]
    system_instruction: Option<Words>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(alias = "tool_config")]
    tool_config: Option<Value>,
    #[serde(alias = "generation_config")]
    generation_config: Option<FirstUnknown<GenerationConfig>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    parts: Option<Parts>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    #[serde(borrow, alias = "function_declarations")]
    function_declarations: Option<Vec<Named<'a>>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
}

/// A `parts` list: how many parts and how many words, without keeping them.
#[derive(Clone, Copy)]
struct Parts {
    len: usize,
    words: u32,
}

impl<'de> Deserialize<'de> for Parts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Parts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of parts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parts, A::Error> {
                let mut parts = Parts { len: 0, words: 0 };
                while let Some(Words(w)) = seq.next_element()? {
                    parts.len += 1;
                    parts.words = parts.words.saturating_add(w);
                }
                Ok(parts)
            }
        }
        d.deserialize_seq(V)
    }
}

/// Parses the body; the model and the stream flag come from the URL, set by the router.
pub(crate) fn parse(body: &[u8], lenient: bool) -> Result<Parsed<'_>, Invalid> {
    let req: GenerateRequest<'_> =
        serde_json::from_slice(body).map_err(|e| Invalid::new(format!("Invalid JSON payload received. {e}")))?;
    let invalid = if lenient { None } else { unknown_fields(body, &req) };
    let invalid = invalid.or_else(|| validate(&req));
    let prompt_words = req
        .contents
        .iter()
        .flatten()
        .filter_map(|c| c.parts)
        .fold(req.system_instruction.map_or(0, |w| w.0), |n, p| n.saturating_add(p.words));
    let tool = tool_to_call(req.tools, req.tool_config.as_ref());
    Ok(Parsed { model: None, stream: false, include_usage: false, prompt_words, tool, invalid })
}

/// The real API refuses unknown fields (a gateway leaking OpenAI fields is a translation bug).
fn unknown_fields(body: &[u8], req: &GenerateRequest<'_>) -> Option<Invalid> {
    if let Some(key) = first_unknown_top_level::<TopLevel>(body) {
        return Some(Invalid::new(format!(
            "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
        )));
    }
    let key = req.generation_config.as_ref().and_then(|g| g.key())?;
    Some(Invalid::new(format!(
        "Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': Cannot find field."
    )))
}

fn validate(req: &GenerateRequest<'_>) -> Option<Invalid> {
    let contents = req.contents.as_deref().unwrap_or(&[]);
    if contents.is_empty() {
        return Some(Invalid::new("* GenerateContentRequest.contents: contents is not specified\n"));
    }
    for (i, c) in contents.iter().enumerate() {
        if !matches!(c.role.as_deref(), Some("user" | "model")) {
            return Some(Invalid::new("Please use a valid role: user, model."));
        }
        if c.parts.is_none_or(|p| p.len == 0) {
            return Some(Invalid::new(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )));
        }
    }
    None
}

/// Mode `NONE` calls nothing; `ANY` with `allowedFunctionNames` calls the first allowed.
fn tool_to_call<'a>(tools: Option<Vec<Tool<'a>>>, config: Option<&Value>) -> Option<Str<'a>> {
    let first = tools?.into_iter().flat_map(|t| t.function_declarations.unwrap_or_default()).find_map(|n| n.name)?;
    let calling = config.and_then(|c| c.get("functionCallingConfig").or_else(|| c.get("function_calling_config")));
    if let Some(calling) = calling {
        if calling.get("mode").and_then(Value::as_str) == Some("NONE") {
            return None;
        }
        let allowed = calling.get("allowedFunctionNames").or_else(|| calling.get("allowed_function_names"));
        if let Some(name) = allowed.and_then(|a| a.get(0)).and_then(Value::as_str) {
            return Some(Str(name.to_string().into()));
        }
    }
    Some(first)
}

/// `x-goog-api-key`, else the `?key=` query parameter.
pub(crate) fn api_key<'h>(headers: &'h HeaderMap, query: Option<&'h str>) -> Option<Cow<'h, str>> {
    if let Some(key) = headers.get("x-goog-api-key") {
        return key.to_str().ok().map(Cow::Borrowed);
    }
    query_param(query, "key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_of(body: &str) -> String {
        parse(body.as_bytes(), false).unwrap().invalid.map(|i| i.message).unwrap_or_default()
    }

    #[test]
    fn extracts_words_and_tools() {
        let p = parse(
            br#"{"systemInstruction":{"parts":[{"text":"be brief"}]},
                "contents":[{"role":"user","parts":[{"text":"hello there"}]}],
                "tools":[{"functionDeclarations":[{"name":"get_weather"}]}],
                "generation_config":{"max_output_tokens":5}}"#,
            false,
        )
        .unwrap();
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.tool.as_deref(), Some("get_weather"));
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let ok = r#"{"role":"user","parts":[{"text":"x"}]}"#;
        let cases = [
            ("{}".to_string(), "contents is not specified"),
            (r#"{"contents":[]}"#.to_string(), "contents is not specified"),
            (r#"{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}"#.to_string(), "valid role: user, model"),
            (r#"{"contents":[{"parts":[{"text":"x"}]}]}"#.to_string(), "valid role: user, model"),
            (r#"{"contents":[{"role":"user","parts":[]}]}"#.to_string(), "contents[0].parts"),
            (format!(r#"{{"contents":[{ok}],"messages":[]}}"#), "Unknown name \"messages\""),
            (format!(r#"{{"contents":[{ok}],"generationConfig":{{"max_tokens":3}}}}"#), "at 'generation_config'"),
        ];
        for (body, want) in cases {
            let got = invalid_of(&body);
            assert!(got.contains(want), "{body}: {got}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes, false);
        }
    }
}
