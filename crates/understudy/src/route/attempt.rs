//! One call to one deployment, up to the commit point: build the provider request, send it under
//! the connect / first-token / total timeouts, classify what comes back, and for streams read
//! until the first content arrives.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::time::{timeout_at, Instant};

use super::table::{Deployment, Ttft};
use crate::canonical::{ChatRequest, ChatResponse, Decoded, FinishReason, StreamEvent};
use crate::config::{PromptAdaptation, Secret};
use crate::failure::{Failure, FailureClass};
use crate::provider::Call;
use crate::resilience::health::InjectedFault;
use crate::stream::accumulate::Accumulator;
use crate::stream::{LiveStream, Timing};
use crate::validate::{self, Rules};

/// Largest error body read from a provider; enough for any real error object.
pub(crate) const MAX_ERROR_BODY: usize = 256 * 1024;
/// Largest non-streaming answer accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// An attempt that reached its commit point.
pub enum Success {
    Complete(ChatResponse),
    /// The first content has arrived; the rest is read by the relay.
    Stream(Box<LiveStream>),
}

/// Sends `req` to `dep` with `key` (the deployment's own, or a caller's). `deadline` is the
/// whole request's deadline.
pub async fn run(
    dep: &Arc<Deployment>,
    req: &ChatRequest,
    rules: &Rules,
    deadline: Instant,
    key: &Secret,
) -> Result<Success, Failure> {
    let started = Instant::now();
    let limits = &dep.limits;
    let attempt_deadline = deadline.min(started + limits.timeout);

    missing_key(key)?;
    let req = with_overrides(dep, req);
    // A fetched access token (Vertex service accounts) stands in for the configured key.
    let token = crate::provider::fetched_token(&dep.endpoint, &dep.api_key, attempt_deadline).await?;
    let call = Call {
        endpoint: &dep.endpoint,
        model: &dep.model,
        // A cloud's access token (Vertex) stands in for the key.
        api_key: token.as_ref().unwrap_or(key),
        extra_params: &dep.overrides.params,
        stream: req.stream,
    };
    let upstream = dep.adapter.build(&req, &call)?;

    // Until the first token, a stream is bounded by the first-token limit; a plain request by
    // its total limit (its headers only arrive with the whole answer).
    let ttft_limit = match &limits.ttft {
        Ttft::Fixed(d) => *d,
        Ttft::Auto(a) => dep.health.ttft_limit(started, a),
    };
    let first_deadline = if req.stream { attempt_deadline.min(started + ttft_limit) } else { attempt_deadline };
    let expired = |what: &'static str, at: Instant| {
        let detail = if at == deadline { "deadline" } else { what };
        Failure::new(FailureClass::Timeout, format!("no answer within {:?} ({detail})", at - started)).detail(detail)
    };

    if let Some(fault) = dep.health.fault() {
        if let Some(f) = injected(dep, &fault, first_deadline, req.stream).await {
            return Err(f);
        }
    }
    let send = dep.http.post(&upstream.url).headers(upstream.headers).body(upstream.body).send();
    let resp = match timeout_at(first_deadline, send).await {
        Err(_) => return Err(expired(if req.stream { "ttft" } else { "total" }, first_deadline)),
        Ok(Err(e)) => return Err(transport_failure(&e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();

    if !resp.status().is_success() {
        let body = match timeout_at(first_deadline, read_limited(resp, MAX_ERROR_BODY)).await {
            Err(_) => return Err(expired("total", first_deadline)),
            Ok(b) => b.unwrap_or_default(),
        };
        return Err(redact(dep.adapter.classify_error(status, &headers, &body), key));
    }

    let is_event_stream = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("event-stream") || ct.contains("eventstream"));

    if !req.stream || !is_event_stream {
        // A server that ignores `stream: true` and answers with JSON still answered: the relay
        // replays it as a stream.
        let body = match timeout_at(first_deadline, read_limited(resp, MAX_BODY)).await {
            Err(_) => return Err(expired(if req.stream { "ttft" } else { "total" }, first_deadline)),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(b)) => b,
        };
        let mut response = dep.adapter.decode_response(&body).map_err(|f| redact(f, key))?;
        // Some APIs (Bedrock Converse) do not name the model in the answer.
        if response.model.is_empty() {
            response.model.clone_from(&dep.model);
        }
        validate::check(&response, &req, rules)?;
        return Ok(Success::Complete(response));
    }

    let mut body = resp.bytes_stream().boxed();
    let mut decoder = dep.adapter.stream_decoder();
    let mut buffered: Vec<Decoded> = Vec::new();
    let mut out = Vec::new();
    let mut malformed = 0u32;
    let mut ended = false;
    let mut finish: Option<FinishReason> = None;
    // Rules that need the whole answer hold the stream back until it is complete and valid.
    let mut whole = rules.needs_whole_answer(&req).then(Accumulator::default);
    let mut seen_content = false;
    loop {
        if out.is_empty() && !ended {
            match timeout_at(first_deadline, body.next()).await {
                Err(_) => return Err(expired("ttft", first_deadline)),
                Ok(Some(Err(e))) => return Err(transport_failure(&e)),
                Ok(Some(Ok(chunk))) => decoder.feed(&chunk, &mut out),
                Ok(None) => {
                    decoder.finish(&mut out);
                    ended = true;
                }
            }
        }
        let complete_whole = whole.as_ref().is_some_and(|a| a.finished() && seen_content);
        if out.is_empty() && ended && complete_whole {
            // A held-back answer whose provider closed without a terminator: judge what arrived.
            if let Some(acc) = &whole {
                validate::check(&acc.response(), &req, rules)?;
            }
            let ttft = started.elapsed();
            let timing = Timing { started, ttft, deadline: attempt_deadline };
            return Ok(Success::Stream(Box::new(LiveStream::new(
                dep.clone(),
                buffered,
                Vec::new(),
                body,
                decoder,
                timing,
                malformed,
            ))));
        }
        if out.is_empty() && ended {
            return Err(match finish {
                Some(_) => Failure::new(FailureClass::InvalidResponse, "the stream ended without any content")
                    .detail("empty_content"),
                None => Failure::new(FailureClass::InvalidResponse, "the stream ended before any content")
                    .detail("truncated"),
            });
        }
        let mut items = std::mem::take(&mut out).into_iter();
        let mut committed = false;
        for item in items.by_ref() {
            let decoded = match item {
                Ok(d) => d,
                Err(_) => {
                    malformed += 1;
                    continue;
                }
            };
            for ev in &decoded.events {
                match ev {
                    StreamEvent::Error(f) => return Err(redact(f.clone(), key)),
                    StreamEvent::Finish { reason, .. } => finish = Some(reason.clone()),
                    // A terminator before any content: an empty answer.
                    StreamEvent::Done if !seen_content => {
                        return Err(Failure::new(FailureClass::InvalidResponse, "the stream ended without any content")
                            .detail("empty_content"))
                    }
                    _ => {}
                }
                // A refusal with no text is still the answer: deliver it rather than fail over.
                seen_content |=
                    ev.is_content() || matches!(ev, StreamEvent::Finish { reason: FinishReason::ContentFilter, .. });
                committed |= seen_content;
                if let Some(acc) = whole.as_mut() {
                    acc.push(ev);
                }
            }
            let done = decoded.events.iter().any(|e| matches!(e, StreamEvent::Done));
            buffered.push(decoded);
            if let Some(acc) = &whole {
                // Held back: commit only once the answer is complete and passes the rules.
                committed = false;
                if done || (ended && acc.finished()) {
                    validate::check(&acc.response(), &req, rules)?;
                    committed = true;
                    break;
                }
                continue;
            }
            if committed {
                break;
            }
        }
        if committed {
            // Frames after the first content belong to the relay, errors included.
            let ttft = started.elapsed();
            return Ok(Success::Stream(Box::new(LiveStream::new(
                dep.clone(),
                buffered,
                items.collect(),
                body,
                decoder,
                Timing { started, ttft, deadline: attempt_deadline },
                malformed,
            ))));
        }
    }
}

/// A game-day fault, applied where a real one would strike: latency before sending, then an
/// error status (classified by the provider's own adapter) or a hang until the attempt's limit.
pub(crate) async fn injected(dep: &Deployment, fault: &InjectedFault, until: Instant, stream: bool) -> Option<Failure> {
    let what = if stream { "ttft" } else { "total" };
    if let Some(ms) = fault.latency_ms {
        let wake = Instant::now() + Duration::from_millis(ms);
        if wake >= until {
            tokio::time::sleep_until(until).await;
            let msg = format!("no answer in time ({what}, injected latency)");
            return Some(Failure::new(FailureClass::Timeout, msg).detail(what));
        }
        tokio::time::sleep_until(wake).await;
    }
    let hits = rand::random::<f64>() < fault.error_rate.unwrap_or(1.0);
    if hits && fault.hang {
        tokio::time::sleep_until(until).await;
        let msg = format!("no answer in time ({what}, injected hang)");
        return Some(Failure::new(FailureClass::Timeout, msg).detail(what));
    }
    match fault.status {
        Some(status) if hits => {
            let body =
                br#"{"error":{"message":"injected by an understudy game day","type":"injected","code":"injected"}}"#;
            Some(dep.adapter.classify_error(status, &http::HeaderMap::new(), body))
        }
        _ => None,
    }
}

/// The request as this deployment should receive it: the chain entry's overrides applied.
fn with_overrides<'a>(dep: &Deployment, req: &'a ChatRequest) -> Cow<'a, ChatRequest> {
    let o = &dep.overrides;
    if o.temperature.is_none()
        && o.top_p.is_none()
        && o.max_tokens.is_none()
        && o.stop.is_none()
        && dep.prompt.is_none()
    {
        return Cow::Borrowed(req);
    }
    let mut r = req.clone();
    if let Some(t) = o.temperature {
        r.params.temperature = Some(t);
    }
    if let Some(p) = o.top_p {
        r.params.top_p = Some(p);
    }
    if let Some(m) = o.max_tokens {
        r.params.max_tokens = Some(m);
    }
    if let Some(s) = &o.stop {
        r.params.stop = s.clone();
    }
    if let Some(p) = &dep.prompt {
        adapt_prompt(&mut r, p);
    }
    Cow::Owned(r)
}

/// Applies a chain entry's prompt adaptation: the system prompt replaced, prepended or
/// appended to, and the latest user message passed through a template.
pub(crate) fn adapt_prompt(r: &mut ChatRequest, p: &PromptAdaptation) {
    use crate::canonical::{ContentPart, Role};
    let mut system: String = r
        .system
        .iter()
        .filter_map(|c| match c {
            ContentPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    if let Some(rep) = &p.system_replace {
        system.clone_from(rep);
    }
    if let Some(pre) = &p.system_prepend {
        system = if system.is_empty() { pre.clone() } else { format!("{pre}\n\n{system}") };
    }
    if let Some(post) = &p.system_append {
        system = if system.is_empty() { post.clone() } else { format!("{system}\n\n{post}") };
    }
    r.system = if system.is_empty() { vec![] } else { vec![ContentPart::text(system)] };
    if let Some(tpl) = &p.user_template {
        let last_user = r
            .messages
            .iter_mut()
            .rev()
            .find(|m| m.role == Role::User && m.content.iter().any(|c| matches!(c, ContentPart::Text { .. })));
        if let Some(m) = last_user {
            for c in m.content.iter_mut() {
                if let ContentPart::Text { text } = c {
                    *text = tpl.replace("{{content}}", text);
                    break;
                }
            }
        }
    }
    if let Some(n) = r.native.as_mut() {
        n.messages_edited = true;
    }
}

/// A key whose environment variable is unset: an auth failure, before any call.
pub(crate) fn missing_key(key: &Secret) -> Result<(), Failure> {
    if key.missing_vars().is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        FailureClass::Auth,
        format!("no API key: environment variable {} is not set", key.missing_vars().join(", ")),
    )
    .detail("missing_api_key"))
}

/// Reads a body up to `limit` bytes.
pub(crate) async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Bytes, Failure> {
    let mut stream = resp.bytes_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_failure(&e))?;
        if buf.len() + chunk.len() > limit {
            return Err(Failure::new(FailureClass::InvalidResponse, format!("response larger than {limit} bytes"))
                .detail("too_large"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Classifies a transport error (no HTTP status).
pub(crate) fn transport_failure(e: &reqwest::Error) -> Failure {
    // reqwest's messages name the URL's host but never headers, so they carry no credentials.
    let msg = error_chain(e);
    if e.is_connect() {
        let detail = if e.is_timeout() { "connect_timeout" } else { "connect" };
        Failure::new(FailureClass::Connect, msg).detail(detail)
    } else if e.is_timeout() {
        Failure::new(FailureClass::Timeout, msg).detail("total")
    } else {
        // The connection was reset or closed before or during the answer.
        Failure::new(FailureClass::Connect, msg).detail("reset")
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    // reqwest prints the full URL, which for some providers could carry a key in the query.
    if let Some(i) = s.find('?') {
        let end = s[i..].find([' ', ')']).map(|j| i + j).unwrap_or(s.len());
        s.replace_range(i..end, "?…");
    }
    s
}

/// Removes the credential used (and anything that looks like a key) from a failure's message,
/// and drops the provider's raw body if it quotes the credential.
pub(crate) fn redact(mut f: Failure, key: &Secret) -> Failure {
    let key = key.expose();
    f.message = crate::failure::redact_secrets(&f.message, Some(key));
    let quotes_key = |b: &Bytes| key.len() >= 6 && b.windows(key.len()).any(|w| w == key.as_bytes());
    if f.upstream.as_ref().is_some_and(|(_, b)| quotes_key(b)) {
        f.upstream = None;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{ContentPart, Message, Role};

    #[test]
    fn prompt_adaptation() {
        let mut r = ChatRequest {
            system: vec![ContentPart::text("Original.")],
            messages: vec![Message::text(Role::User, "first"), Message::text(Role::User, "last")],
            ..Default::default()
        };
        let p = PromptAdaptation {
            system_replace: Some("Replaced.".into()),
            system_append: Some("After.".into()),
            user_template: Some("<q>{{content}}</q>".into()),
            ..Default::default()
        };
        adapt_prompt(&mut r, &p);
        assert_eq!(r.system, vec![ContentPart::text("Replaced.\n\nAfter.")]);
        assert_eq!(r.messages[0].content, vec![ContentPart::text("first")]);
        assert_eq!(r.messages[1].content, vec![ContentPart::text("<q>last</q>")]);
    }
}
