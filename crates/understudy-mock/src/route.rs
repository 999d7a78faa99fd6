//! One request's path: classify the endpoint, read the body, count and record it, pick the
//! fault, misbehave at the transport level, check auth and input, then error or answer.

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use rand::Rng;
use serde_json::json;

use crate::answer::{Answer, AnswerSpec, StreamFaults};
use crate::control;
use crate::dialect::{self, AuthFailure, ErrorSpec, Invalid, Parsed};
use crate::fault::{ErrorKind, Fault};
use crate::http::{self as h, json_response, percent_decode, redacted_path, Resp};
use crate::parse::Str;
use crate::server::Conn;
use crate::state::{Dialect, RawRecord, State};

/// Request bodies above this are refused (the real APIs' limits are lower still).
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum BedrockOp {
    Converse { stream: bool },
    Invoke,
}

enum Endpoint<'a> {
    Chat(Dialect),
    /// Gemini names the model in the path: `/v1beta/models/{model}:{method}`.
    Gemini {
        model: Cow<'a, str>,
        stream: bool,
    },
    /// Azure OpenAI: a classic deployment path (`deployment` set) or the v1 API.
    Azure {
        deployment: Option<Cow<'a, str>>,
        embeddings: bool,
    },
    /// A classic Azure path without `api-version`.
    AzureNoVersion,
    /// Vertex AI: `{publisher}` Google (Gemini's format) or Anthropic (Claude's).
    Vertex {
        dialect: Dialect,
        model: Cow<'a, str>,
        stream: bool,
        /// `projects/{p}/locations/{l}/publishers/{pub}/models/{m}`, for error messages.
        resource: &'a str,
    },
    Token,
    /// OpenAI `/v1/embeddings`, or Gemini `/v1beta/models/{model}:batchEmbedContents`.
    Embeddings {
        dialect: Dialect,
        model: Option<Cow<'a, str>>,
    },
    /// Bedrock names the model in the path: `/model/{modelId}/{operation}`.
    Bedrock {
        model: Cow<'a, str>,
        op: BedrockOp,
    },
    Models(Dialect),
    Control,
    NotFound,
}

fn classify(parts: &Parts) -> Endpoint<'_> {
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::POST, "/v1/chat/completions") => Endpoint::Chat(Dialect::OpenAi),
        (&Method::POST, "/v1/messages") => Endpoint::Chat(Dialect::Anthropic),
        (&Method::POST, "/v1/embeddings") => Endpoint::Embeddings { dialect: Dialect::OpenAi, model: None },
        // Both OpenAI and Anthropic list models here; Anthropic clients send their headers.
        (&Method::GET, "/v1/models") => {
            let anthropic = parts.headers.contains_key("anthropic-version") || parts.headers.contains_key("x-api-key");
            Endpoint::Models(if anthropic { Dialect::Anthropic } else { Dialect::OpenAi })
        }
        (&Method::GET, "/v1beta/models") => Endpoint::Models(Dialect::Gemini),
        (&Method::POST, p) if p.starts_with("/v1beta/models/") => {
            gemini_endpoint(p.strip_prefix("/v1beta/models/").unwrap_or(""))
        }
        (&Method::POST, "/token") => Endpoint::Token,
        (&Method::POST, p) if p.starts_with("/model/") => bedrock_endpoint(p.strip_prefix("/model/").unwrap_or("")),
        (&Method::POST, p) if p.starts_with("/openai/") => azure_endpoint(p, parts.uri.query()),
        (&Method::POST, p) if p.starts_with("/v1/projects/") || p.starts_with("/v1beta1/projects/") => {
            vertex_endpoint(p)
        }
        (_, p) if p == "/_mock" || p.starts_with("/_mock/") => Endpoint::Control,
        _ => Endpoint::NotFound,
    }
}

fn gemini_endpoint(rest: &str) -> Endpoint<'_> {
    let Some((model, method)) = rest.rsplit_once(':') else {
        return Endpoint::NotFound;
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        "batchEmbedContents" => {
            return Endpoint::Embeddings { dialect: Dialect::Gemini, model: Some(percent_decode(model)) }
        }
        _ => return Endpoint::NotFound,
    };
    Endpoint::Gemini { model: percent_decode(model), stream }
}

/// `{modelId}/converse`, `/converse-stream` or `/invoke`; the model id is one percent-encoded
/// segment (an ARN's `/` arrives as `%2F`).
fn bedrock_endpoint(rest: &str) -> Endpoint<'_> {
    let Some((model, op)) = rest.split_once('/') else {
        return Endpoint::NotFound;
    };
    let op = match op {
        "converse" => BedrockOp::Converse { stream: false },
        "converse-stream" => BedrockOp::Converse { stream: true },
        "invoke" => BedrockOp::Invoke,
        _ => return Endpoint::NotFound,
    };
    Endpoint::Bedrock { model: percent_decode(model), op }
}

/// `/openai/deployments/{d}/{op}?api-version=…` or `/openai/v1/{op}`.
fn azure_endpoint<'a>(path: &'a str, query: Option<&str>) -> Endpoint<'a> {
    let op = |rest: &str| match rest {
        "chat/completions" => Some(false),
        "embeddings" => Some(true),
        _ => None,
    };
    if let Some(rest) = path.strip_prefix("/openai/v1/") {
        return match op(rest) {
            Some(embeddings) => Endpoint::Azure { deployment: None, embeddings },
            None => Endpoint::NotFound,
        };
    }
    let Some((deployment, rest)) = path.strip_prefix("/openai/deployments/").and_then(|r| r.split_once('/')) else {
        return Endpoint::NotFound;
    };
    match op(rest) {
        Some(_) if h::query_param(query, "api-version").is_none_or(|v| v.is_empty()) => Endpoint::AzureNoVersion,
        Some(embeddings) => Endpoint::Azure { deployment: Some(percent_decode(deployment)), embeddings },
        None => Endpoint::NotFound,
    }
}

/// `/v1/projects/{p}/locations/{l}/publishers/{google|anthropic}/models/{m}:{method}`.
fn vertex_endpoint(path: &str) -> Endpoint<'_> {
    let resource = path.trim_start_matches('/').split_once('/').map_or("", |(_, r)| r);
    let segments: Vec<&str> = resource.split('/').collect();
    let ["projects", _, "locations", _, "publishers", publisher, "models", model_method] = segments.as_slice() else {
        return Endpoint::NotFound;
    };
    let Some((model, method)) = model_method.rsplit_once(':') else {
        return Endpoint::NotFound;
    };
    let (dialect, stream) = match (*publisher, method) {
        ("google", "generateContent") => (Dialect::Gemini, false),
        ("google", "streamGenerateContent") => (Dialect::Gemini, true),
        ("anthropic", "rawPredict") => (Dialect::Anthropic, false),
        ("anthropic", "streamRawPredict") => (Dialect::Anthropic, true),
        _ => return Endpoint::NotFound,
    };
    let resource = resource.rsplit_once(':').map_or(resource, |(r, _)| r);
    Endpoint::Vertex { dialect, model: percent_decode(model), stream, resource }
}

/// Which API served a chat request: the provider's own, or a cloud's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host<'a> {
    Direct,
    Azure,
    Vertex { resource: &'a str },
}

/// A chat request's format and where it came in. `path_model` / `path_stream` come from the
/// URL where the API puts them there (Gemini, Vertex, Azure deployments).
#[derive(Clone, Copy)]
struct Target<'a> {
    dialect: Dialect,
    host: Host<'a>,
    path_model: Option<&'a str>,
    path_stream: Option<bool>,
}

impl<'a> Target<'a> {
    fn direct(dialect: Dialect) -> Target<'a> {
        Target { dialect, host: Host::Direct, path_model: None, path_stream: None }
    }
}

pub(crate) async fn handle(req: Request<Incoming>, conn: Arc<Conn>) -> Resp {
    let (parts, body) = req.into_parts();
    match classify(&parts) {
        Endpoint::Control => control::handle(&parts, body, &conn.state).await,
        Endpoint::NotFound => not_found(&parts),
        Endpoint::AzureNoVersion => dialect::azure::missing_api_version(),
        Endpoint::Models(dialect) => models(&parts, dialect, &conn).await,
        Endpoint::Embeddings { dialect, model } => match read_body(body).await {
            Ok(bytes) => embeddings(&parts, &bytes, dialect, model.as_deref(), &conn).await,
            Err(resp) => resp,
        },
        Endpoint::Bedrock { model, op: BedrockOp::Converse { stream } } => match read_body(body).await {
            Ok(bytes) => {
                let target =
                    Target { path_model: Some(&model), path_stream: Some(stream), ..Target::direct(Dialect::Bedrock) };
                chat(&parts, &bytes, target, &conn).await
            }
            Err(resp) => resp,
        },
        Endpoint::Bedrock { model, op: BedrockOp::Invoke } => match read_body(body).await {
            Ok(bytes) => invoke(&parts, &bytes, &model, &conn).await,
            Err(resp) => resp,
        },
        Endpoint::Token => match read_body(body).await {
            Ok(bytes) => crate::token::handle(&parts, &bytes, &conn.state),
            Err(resp) => resp,
        },
        Endpoint::Chat(dialect) => match read_body(body).await {
            Ok(bytes) => chat(&parts, &bytes, Target::direct(dialect), &conn).await,
            Err(resp) => resp,
        },
        Endpoint::Gemini { model, stream } => match read_body(body).await {
            Ok(bytes) => {
                let target =
                    Target { path_model: Some(&model), path_stream: Some(stream), ..Target::direct(Dialect::Gemini) };
                chat(&parts, &bytes, target, &conn).await
            }
            Err(resp) => resp,
        },
        Endpoint::Azure { deployment, embeddings } => match read_body(body).await {
            Ok(bytes) if embeddings => azure_embeddings(&parts, &bytes, deployment.as_deref(), &conn).await,
            Ok(bytes) => {
                let target = Target {
                    dialect: Dialect::OpenAi,
                    host: Host::Azure,
                    path_model: deployment.as_deref(),
                    path_stream: None,
                };
                chat(&parts, &bytes, target, &conn).await
            }
            Err(resp) => resp,
        },
        Endpoint::Vertex { dialect, model, stream, resource } => match read_body(body).await {
            Ok(bytes) => {
                let target = Target {
                    dialect,
                    host: Host::Vertex { resource },
                    path_model: Some(&model),
                    path_stream: Some(stream),
                };
                chat(&parts, &bytes, target, &conn).await
            }
            Err(resp) => resp,
        },
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, Resp> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": {"message": "request body too large or unreadable", "type": "invalid_request_error"}}),
        )),
    }
}

fn not_found(parts: &Parts) -> Resp {
    let message = format!("Invalid URL ({} {})", parts.method, parts.uri.path());
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

/// The fault for a request: a shared run-time rule, or one parsed from the model name.
enum Chosen {
    Shared(Arc<Fault>),
    Owned(Fault),
}

impl Deref for Chosen {
    type Target = Fault;
    fn deref(&self) -> &Fault {
        match self {
            Chosen::Shared(f) => f,
            Chosen::Owned(f) => f,
        }
    }
}

/// Run-time rule for the base model, else `*`, else the model-name suffix, else the default.
/// A suffix that does not parse is reported even when a rule overrides it.
fn choose(state: &State, base: Option<&str>, suffix: Option<&str>) -> (Chosen, Option<String>) {
    let parsed = suffix.filter(|s| !s.is_empty()).map(Fault::parse);
    let (from_suffix, error) = match parsed {
        Some(Ok(f)) => (Some(f), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let chosen = match (state.runtime_fault(base), from_suffix) {
        (Some(rule), _) => Chosen::Shared(rule),
        (None, Some(f)) => Chosen::Owned(f),
        (None, None) => Chosen::Shared(state.default_fault.clone()),
    };
    (chosen, error)
}

/// Whether the failure part of the fault applies to this request.
fn roll(fault: &Fault) -> bool {
    let rate = fault.effective_error_rate();
    if rate >= 1.0 {
        true
    } else if rate <= 0.0 {
        false
    } else {
        rand::rng().random::<f64>() < rate
    }
}

/// Reset, hang, then latency (+ jitter), all before any response header.
async fn transport(fault: &Fault, failing: bool, conn: &Conn) {
    if failing && fault.reset {
        conn.reset();
        std::future::pending::<()>().await;
    }
    if failing && fault.hang {
        // Hyper drops this future when the client closes the connection.
        std::future::pending::<()>().await;
    }
    let mut delay = fault.latency.unwrap_or_default();
    if let Some(jitter) = fault.latency_jitter.filter(|j| !j.is_zero()) {
        let nanos = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
        delay += Duration::from_nanos(rand::rng().random_range(0..=nanos));
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

fn record(state: &State, parts: &Parts, dialect: Dialect, raw_model: Option<&str>, base: Option<&str>, body: Bytes) {
    if !state.recording() {
        return;
    }
    state.record(RawRecord {
        dialect,
        method: parts.method.clone(),
        path: redacted_path(parts.uri.path(), parts.uri.query()),
        model: base.unwrap_or("").to_string(),
        raw_model: raw_model.unwrap_or("").to_string(),
        headers: parts.headers.clone(),
        body,
    });
}

/// The caller's credential and whether `host` accepts it.
fn check_auth<'h>(
    target: &Target<'_>,
    parts: &'h Parts,
    state: &State,
) -> (Option<Cow<'h, str>>, Result<(), AuthFailure>) {
    let headers = &parts.headers;
    match target.host {
        Host::Direct => dialect::check_auth(target.dialect, headers, parts.uri.query(), &state.config.api_keys),
        Host::Azure => dialect::azure::check_auth(headers, &state.config.api_keys),
        Host::Vertex { .. } => dialect::vertex::check_auth(headers, state),
    }
}

/// The host's answer to refused credentials.
fn auth_refusal(target: &Target<'_>, failure: AuthFailure, spec: &ErrorSpec<'_>, parts: &Parts, state: &State) -> Resp {
    match target.host {
        Host::Direct => dialect::auth_error(target.dialect, failure, spec),
        Host::Azure => dialect::azure::auth_error(failure, spec),
        Host::Vertex { .. } => dialect::vertex::auth_error(failure, &parts.headers, state),
    }
}

async fn chat(parts: &Parts, body: &Bytes, target: Target<'_>, conn: &Conn) -> Resp {
    let state = &conn.state;
    let dialect = target.dialect;
    let mut parsed = match (dialect, target.host) {
        (Dialect::Anthropic, Host::Vertex { .. }) => dialect::anthropic::parse_vertex(body, state.config.lenient),
        (Dialect::OpenAi, Host::Azure) if target.path_model.is_some() => dialect::openai::parse_deployment(body),
        _ => dialect::parse(dialect, body, state.config.lenient),
    };
    if let (Ok(p), Dialect::Gemini, Some(true)) = (&mut parsed, dialect, target.path_stream) {
        // Without alt=sse the real API streams one JSON array; the mock only speaks SSE, so it
        // refuses loudly rather than answer in a framing the caller did not ask for.
        if h::query_param(parts.uri.query(), "alt").as_deref() != Some("sse") {
            p.invalid = Some(Invalid::new("mock: streamGenerateContent is only supported with ?alt=sse"));
        }
    }
    if let Ok(p) = &mut parsed {
        if let Some(model) = target.path_model {
            p.model = Some(Str(Cow::Borrowed(model)));
        }
        if let Some(stream) = target.path_stream {
            p.stream = stream;
        }
    }
    let raw_model = match (target.path_model, &parsed) {
        (Some(model), _) => Some(model),
        (None, Ok(p)) => p.model.as_deref(),
        (None, Err(_)) => None,
    };
    let (base, suffix) = match raw_model.map(Fault::split_model) {
        Some((base, suffix)) => (Some(base), suffix),
        None => (None, None),
    };
    state.count(dialect, base);
    record(state, parts, dialect, raw_model, base, body.clone());

    let (fault, suffix_error) = choose(state, base, suffix);
    let failing = roll(&fault);
    transport(&fault, failing, conn).await;

    let request_id = state.next_id();
    if dialect == Dialect::Bedrock {
        if let Some(resp) = dialect::bedrock::authenticate(parts, body, &state.config, request_id) {
            return resp;
        }
    }
    let (key, verdict) = check_auth(&target, parts, state);
    let spec = ErrorSpec {
        kind: fault.error,
        status: fault.status,
        retry_after: fault.retry_after.as_deref(),
        model: base.unwrap_or(""),
        api_key: key.as_deref(),
        request_id,
    };
    if let Err(failure) = verdict {
        return auth_refusal(&target, failure, &spec, parts, state);
    }
    let parsed = match &parsed {
        Ok(p) => p,
        Err(invalid) => return dialect::invalid(dialect, invalid, request_id),
    };
    if let Some(e) = suffix_error {
        return dialect::invalid(dialect, &Invalid::new(format!("mock: bad fault suffix: {e}")), request_id);
    }
    if let Some(invalid) = &parsed.invalid {
        return dialect::invalid(dialect, invalid, request_id);
    }
    // Gemini refuses a flagged prompt with a 200 and no candidates, Bedrock with a 200 whose
    // guardrail intervened: not with an HTTP error.
    let blocked_200 = matches!(dialect, Dialect::Gemini | Dialect::Bedrock)
        && fault.error == Some(ErrorKind::ContentPolicy)
        && fault.status.is_none();
    if failing && !blocked_200 && (fault.error.is_some() || fault.status.is_some()) {
        return match target.host {
            Host::Direct => dialect::error(dialect, &spec),
            Host::Azure => with_status(dialect::azure::error(&spec), &spec),
            Host::Vertex { resource } => with_status(dialect::vertex::error(dialect, &spec, resource), &spec),
        };
    }
    respond(dialect, target.host == Host::Azure, parsed, &fault, failing, blocked_200 && failing, request_id, state)
}

/// Embeddings: the same order as chat (count, record, fault, transport misbehaviour, auth,
/// validation, injected error), then a deterministic vector per input. `empty` answers with no
/// vectors at all.
async fn embeddings(parts: &Parts, body: &Bytes, dialect: Dialect, path_model: Option<&str>, conn: &Conn) -> Resp {
    let state = &conn.state;
    let parsed = dialect::parse_embeddings(dialect, body, path_model, state.config.lenient);
    let raw_model = match (path_model, &parsed) {
        (Some(m), _) => Some(m),
        (None, Ok(p)) => p.model.as_deref(),
        (None, Err(_)) => None,
    };
    let (base, suffix) = match raw_model.map(Fault::split_model) {
        Some((base, suffix)) => (Some(base), suffix),
        None => (None, None),
    };
    state.count(dialect, base);
    record(state, parts, dialect, raw_model, base, body.clone());

    let (fault, suffix_error) = choose(state, base, suffix);
    let failing = roll(&fault);
    transport(&fault, failing, conn).await;

    let request_id = state.next_id();
    let (key, verdict) = dialect::check_auth(dialect, &parts.headers, parts.uri.query(), &state.config.api_keys);
    let spec = ErrorSpec {
        kind: fault.error,
        status: fault.status,
        retry_after: fault.retry_after.as_deref(),
        model: base.unwrap_or(""),
        api_key: key.as_deref(),
        request_id,
    };
    if let Err(failure) = verdict {
        return dialect::auth_error(dialect, failure, &spec);
    }
    let parsed = match &parsed {
        Ok(p) => p,
        Err(invalid) => return dialect::invalid(dialect, invalid, request_id),
    };
    if let Some(e) = suffix_error {
        return dialect::invalid(dialect, &Invalid::new(format!("mock: bad fault suffix: {e}")), request_id);
    }
    if let Some(invalid) = &parsed.invalid {
        return dialect::invalid(dialect, invalid, request_id);
    }
    if failing && (fault.error.is_some() || fault.status.is_some()) {
        return dialect::error(dialect, &spec);
    }
    dialect::embeddings(dialect, parsed, base.unwrap_or(""), failing && fault.empty, request_id)
}

/// Bedrock InvokeModel for embeddings models: the same fault, auth and error path as a chat
/// request, then a deterministic vector per input.
async fn invoke(parts: &Parts, body: &Bytes, raw_model: &str, conn: &Conn) -> Resp {
    let state = &conn.state;
    let (base, suffix) = Fault::split_model(raw_model);
    state.count(Dialect::Bedrock, Some(base));
    record(state, parts, Dialect::Bedrock, Some(raw_model), Some(base), body.clone());
    let (fault, suffix_error) = choose(state, Some(base), suffix);
    let failing = roll(&fault);
    transport(&fault, failing, conn).await;
    let request_id = state.next_id();
    if let Some(resp) = dialect::bedrock::authenticate(parts, body, &state.config, request_id) {
        return resp;
    }
    if let Some(e) = suffix_error {
        return dialect::bedrock::invalid(&Invalid::new(format!("mock: bad fault suffix: {e}")), request_id);
    }
    if failing && (fault.error.is_some() || fault.status.is_some()) {
        let spec = ErrorSpec {
            kind: fault.error,
            status: fault.status,
            retry_after: fault.retry_after.as_deref(),
            model: base,
            api_key: None,
            request_id,
        };
        return dialect::error(Dialect::Bedrock, &spec);
    }
    dialect::bedrock::embeddings(base, body, request_id)
}

/// A raw `status` fault overrides the rendered error's status, as in the direct dialects.
fn with_status(mut resp: Resp, spec: &ErrorSpec<'_>) -> Resp {
    if let (Some(status), Some(_)) = (spec.status.and_then(|s| StatusCode::from_u16(s).ok()), spec.kind) {
        *resp.status_mut() = status;
    }
    resp
}

/// Azure's embeddings: the deployment (classic) or `model` (v1) selects faults, as for chat.
async fn azure_embeddings(parts: &Parts, body: &Bytes, deployment: Option<&str>, conn: &Conn) -> Resp {
    let state = &conn.state;
    let parsed = dialect::azure::parse_embeddings(body);
    let raw_model = deployment.map(str::to_string).or_else(|| parsed.as_ref().ok().and_then(|p| p.model.clone()));
    let (base, suffix) = match raw_model.as_deref().map(Fault::split_model) {
        Some((base, suffix)) => (Some(base), suffix),
        None => (None, None),
    };
    state.count(Dialect::OpenAi, base);
    record(state, parts, Dialect::OpenAi, raw_model.as_deref(), base, body.clone());
    let (fault, suffix_error) = choose(state, base, suffix);
    let failing = roll(&fault);
    transport(&fault, failing, conn).await;
    let request_id = state.next_id();
    let (key, verdict) = dialect::azure::check_auth(&parts.headers, &state.config.api_keys);
    let spec = ErrorSpec {
        kind: fault.error,
        status: fault.status,
        retry_after: fault.retry_after.as_deref(),
        model: base.unwrap_or(""),
        api_key: key.as_deref(),
        request_id,
    };
    if let Err(failure) = verdict {
        return dialect::azure::auth_error(failure, &spec);
    }
    let req = match parsed {
        Ok(req) => req,
        Err(invalid) => return dialect::azure::invalid(&invalid, request_id),
    };
    if let Some(e) = suffix_error {
        return dialect::azure::invalid(&Invalid::new(format!("mock: bad fault suffix: {e}")), request_id);
    }
    if base.is_none_or(str::is_empty) {
        return dialect::azure::invalid(&Invalid::new("you must provide a model parameter"), request_id);
    }
    if failing && (fault.error.is_some() || fault.status.is_some()) {
        return with_status(dialect::azure::error(&spec), &spec);
    }
    dialect::azure::embeddings_answer(&req, base.unwrap_or(""))
}

#[allow(clippy::too_many_arguments)]
fn respond(
    dialect: Dialect,
    azure: bool,
    parsed: &Parsed<'_>,
    fault: &Fault,
    failing: bool,
    blocked: bool,
    id: u64,
    state: &State,
) -> Resp {
    let raw = parsed.model.as_deref().unwrap_or("");
    let answer = Answer::build(AnswerSpec {
        base: Fault::split_model(raw).0,
        config_text: state.config.text.as_deref(),
        fault,
        failing,
        prompt_words: parsed.prompt_words,
        tool: parsed.tool.as_deref(),
        id,
        blocked: blocked.then_some("PROHIBITED_CONTENT"),
    });
    let faults = StreamFaults::new(fault, failing);
    if azure {
        return dialect::openai::answer_azure(&answer, parsed, &faults);
    }
    dialect::answer(dialect, &answer, parsed, &faults)
}

/// Model listings obey the `*` rule and the default fault, so health probes see outages.
async fn models(parts: &Parts, dialect: Dialect, conn: &Conn) -> Resp {
    let state = &conn.state;
    state.count(dialect, None);
    record(state, parts, dialect, None, None, Bytes::new());
    let (fault, _) = choose(state, None, None);
    let failing = roll(&fault);
    transport(&fault, failing, conn).await;
    let request_id = state.next_id();
    let (key, verdict) = dialect::check_auth(dialect, &parts.headers, parts.uri.query(), &state.config.api_keys);
    let spec = ErrorSpec {
        kind: fault.error,
        status: fault.status,
        retry_after: fault.retry_after.as_deref(),
        model: "",
        api_key: key.as_deref(),
        request_id,
    };
    if let Err(failure) = verdict {
        return dialect::auth_error(dialect, failure, &spec);
    }
    if failing && (fault.error.is_some() || fault.status.is_some()) {
        return dialect::error(dialect, &spec);
    }
    dialect::models(dialect, &state.config.models, request_id)
}
