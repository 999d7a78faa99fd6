//! The wire formats (OpenAI, Anthropic, Gemini, Bedrock), and the two clouds that serve them
//! under their own paths and auth (Azure OpenAI, Vertex AI). Each module owns its request checks,
//! answers, streams and errors, written from the providers' references, not from the engine's
//! adapters.

pub(crate) mod anthropic;
pub(crate) mod azure;
pub(crate) mod bedrock;
pub(crate) mod gemini;
pub(crate) mod openai;
pub(crate) mod vertex;

use std::fmt;

use bytes::{BufMut, BytesMut};
use http::header::HeaderMap;
use http::StatusCode;
use serde::{Serialize, Serializer};

use crate::answer::{Answer, StreamFaults};
use crate::fault::ErrorKind;
use crate::http::{set_header, Resp};
use crate::parse::Str;
use crate::state::Dialect;
use crate::vectors::Seed;

/// A request that the real API would refuse with 400 (the body is the provider's own shape).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl Invalid {
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid { message: message.into(), param: None, code: None }
    }

    pub fn param(mut self, param: impl Into<String>) -> Invalid {
        self.param = Some(param.into());
        self
    }

    pub fn code(mut self, code: &'static str) -> Invalid {
        self.code = Some(code);
        self
    }
}

/// What the dialects extract from a chat request.
#[derive(Debug, Default)]
pub(crate) struct Parsed<'a> {
    /// The model as requested (with any fault suffix).
    pub model: Option<Str<'a>>,
    pub stream: bool,
    pub include_usage: bool,
    pub prompt_words: u32,
    /// The tool to call if the fault asks for a tool call.
    pub tool: Option<Str<'a>>,
    /// The first validation failure, reported after auth (as the real APIs order them).
    pub invalid: Option<Invalid>,
}

/// What the dialects extract from an embeddings request.
#[derive(Debug, Default)]
pub(crate) struct EmbedParsed {
    /// The model as requested (with any fault suffix); Gemini's comes from the path.
    pub model: Option<String>,
    /// One per input, in order.
    pub seeds: Vec<Seed>,
    pub dimensions: Option<usize>,
    /// OpenAI `encoding_format: "base64"`.
    pub base64: bool,
    pub prompt_words: u32,
    /// The first validation failure, reported after auth (as the real APIs order them).
    pub invalid: Option<Invalid>,
}

/// An injected error to render.
pub(crate) struct ErrorSpec<'a> {
    pub kind: Option<ErrorKind>,
    pub status: Option<u16>,
    pub retry_after: Option<&'a str>,
    /// Base model name.
    pub model: &'a str,
    pub api_key: Option<&'a str>,
    pub request_id: u64,
}

/// Why the credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    /// A key the server's `api_keys` does not list.
    Invalid,
    /// Anthropic only: no `anthropic-version` header.
    MissingVersion,
}

pub(crate) fn parse<'a>(dialect: Dialect, body: &'a [u8], lenient: bool) -> Result<Parsed<'a>, Invalid> {
    match dialect {
        Dialect::OpenAi => openai::parse(body),
        Dialect::Anthropic => anthropic::parse(body, lenient),
        Dialect::Gemini => gemini::parse(body, lenient),
        Dialect::Bedrock => bedrock::parse(body, lenient),
    }
}

/// Parses an embeddings request (OpenAI `/v1/embeddings`, Gemini `:batchEmbedContents` whose
/// model is in the path). Anthropic has no embeddings endpoint.
pub(crate) fn parse_embeddings(
    dialect: Dialect,
    body: &[u8],
    path_model: Option<&str>,
    lenient: bool,
) -> Result<EmbedParsed, Invalid> {
    match dialect {
        Dialect::Gemini => gemini::embeddings::parse(body, path_model.unwrap_or(""), lenient),
        // Bedrock embeddings go through `invoke`, never here.
        Dialect::OpenAi | Dialect::Anthropic | Dialect::Bedrock => openai::embeddings::parse(body),
    }
}

/// Vectors for every input (none when `empty`, a bad answer for gateways to catch).
pub(crate) fn embeddings(dialect: Dialect, parsed: &EmbedParsed, base: &str, empty: bool, request_id: u64) -> Resp {
    match dialect {
        Dialect::Gemini => gemini::embeddings::answer(parsed, empty),
        Dialect::OpenAi | Dialect::Anthropic | Dialect::Bedrock => {
            openai::embeddings::answer(parsed, base, empty, request_id)
        }
    }
}

/// The caller's key, or why it is refused.
pub(crate) fn check_auth<'h>(
    dialect: Dialect,
    headers: &'h HeaderMap,
    query: Option<&'h str>,
    keys: &[String],
) -> (Option<std::borrow::Cow<'h, str>>, Result<(), AuthFailure>) {
    let key = match dialect {
        Dialect::OpenAi => openai::api_key(headers).map(Into::into),
        Dialect::Anthropic => anthropic::api_key(headers).map(Into::into),
        Dialect::Gemini => gemini::api_key(headers, query),
        // Checked by `bedrock::authenticate`, which needs the whole request.
        Dialect::Bedrock => return (None, Ok(())),
    };
    let verdict = match key.as_deref() {
        None | Some("") => Err(AuthFailure::Missing),
        Some(k) if !keys.is_empty() && !keys.iter().any(|x| x == k) => Err(AuthFailure::Invalid),
        Some(_) if dialect == Dialect::Anthropic && !headers.contains_key("anthropic-version") => {
            Err(AuthFailure::MissingVersion)
        }
        Some(_) => Ok(()),
    };
    (key, verdict)
}

pub(crate) fn auth_error(dialect: Dialect, failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    match dialect {
        Dialect::OpenAi => openai::auth_error(failure, spec),
        Dialect::Anthropic => anthropic::auth_error(failure, spec),
        Dialect::Gemini => gemini::auth_error(failure, spec),
        Dialect::Bedrock => bedrock::auth_error(failure, spec),
    }
}

pub(crate) fn invalid(dialect: Dialect, invalid: &Invalid, request_id: u64) -> Resp {
    match dialect {
        Dialect::OpenAi => openai::invalid(invalid, request_id),
        Dialect::Anthropic => anthropic::invalid(invalid, request_id),
        Dialect::Gemini => gemini::invalid(invalid),
        Dialect::Bedrock => bedrock::invalid(invalid, request_id),
    }
}

/// An injected error, with `Retry-After` verbatim when the fault sets it.
pub(crate) fn error(dialect: Dialect, spec: &ErrorSpec<'_>) -> Resp {
    let mut resp = match dialect {
        Dialect::OpenAi => openai::error(spec),
        Dialect::Anthropic => anthropic::error(spec),
        Dialect::Gemini => gemini::error(spec),
        Dialect::Bedrock => bedrock::error(spec),
    };
    if let Some(status) = spec.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        *resp.status_mut() = status;
    }
    if let Some(ra) = spec.retry_after {
        set_header(&mut resp, "retry-after", ra.to_string());
    }
    resp
}

pub(crate) fn answer(dialect: Dialect, answer: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    match dialect {
        Dialect::OpenAi => openai::answer(answer, parsed, faults),
        Dialect::Anthropic => anthropic::answer(answer, parsed, faults),
        Dialect::Gemini => gemini::answer(answer, parsed, faults),
        Dialect::Bedrock => bedrock::answer(answer, parsed, faults),
    }
}

pub(crate) fn models(dialect: Dialect, models: &[String], request_id: u64) -> Resp {
    match dialect {
        Dialect::OpenAi => openai::models(models, request_id),
        Dialect::Anthropic => anthropic::models(models, request_id),
        Dialect::Gemini => gemini::models(models),
        // Bedrock Runtime lists no models (the listing is another service).
        Dialect::Bedrock => bedrock::aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Bedrock Runtime has no model listing",
            request_id,
        ),
    }
}

/// The HTML page a CDN in front of the API returns for 502/504 (not JSON: gateways must cope).
pub(crate) fn cdn_page(status: StatusCode) -> String {
    let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n\
         <hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    )
}

/// A value that is left out, `null`, or present (OpenAI's `"usage":null` convention).
pub(crate) enum Tri<T> {
    Skip,
    Null,
    Val(T),
}

impl<T> Tri<T> {
    pub fn is_skip(&self) -> bool {
        matches!(self, Tri::Skip)
    }
}

impl<T: Serialize> Serialize for Tri<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tri::Val(v) => v.serialize(s),
            Tri::Skip | Tri::Null => s.serialize_none(),
        }
    }
}

/// An id such as `chatcmpl-mock000000000000000000000007`, serialised without allocating.
#[derive(Clone, Copy)]
pub(crate) struct Id(pub &'static str, pub u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}mock{:020x}", self.0, self.1)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Writes one SSE frame: optional `event:` line, `data:` JSON, blank line.
pub(crate) fn sse(buf: &mut BytesMut, event: Option<&str>, value: &impl Serialize, eol: &[u8]) {
    if let Some(event) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(event.as_bytes());
        buf.put_slice(eol);
    }
    buf.put_slice(b"data: ");
    crate::http::write_json(buf, value);
    buf.put_slice(eol);
    buf.put_slice(eol);
}

/// `sk-abc…wxyz` style masking used in "Incorrect API key" messages.
pub(crate) fn mask_key(key: Option<&str>) -> String {
    match key {
        Some(k) if k.len() > 8 => match (k.get(..3), k.get(k.len() - 4..)) {
            (Some(head), Some(tail)) => format!("{head}{}{tail}", "*".repeat(k.len() - 7)),
            _ => "sk-****".to_string(),
        },
        _ => "sk-****".to_string(),
    }
}
