//! Writes a committed stream in the caller's dialect. A caller of the provider's own dialect
//! gets the provider's frames unchanged (fields the gateway does not model survive); any other
//! caller gets the canonical events re-encoded. A broken stream always ends with an in-band
//! error and never with a terminator.

use bytes::{Bytes, BytesMut};
use futures::Stream;

use super::continuation::Mode;
use super::{LiveItem, LiveStream, StreamEnd};
use crate::canonical::{Dialect, StreamEvent, Usage};
use crate::failure::Failure;
use crate::wire::{self, ErrorBody, StreamEncoder, StreamInit};

/// How a relayed stream ended, for reporting.
#[derive(Debug, Clone)]
pub struct RelayOutcome {
    pub deployment: String,
    pub usage: Option<Usage>,
    /// `None` when the stream completed; the failure when it broke.
    pub broken: Option<Failure>,
    /// The client went away before the end.
    pub client_closed: bool,
    pub malformed: u32,
    pub ttft: std::time::Duration,
    pub elapsed: std::time::Duration,
    /// The deployment that resumed a broken stream (`stream_failure: continue`), and how.
    pub continued_by: Option<(String, Mode)>,
    /// The answer text delivered.
    pub answer: String,
}

pub type OnEnd = Box<dyn FnOnce(RelayOutcome) + Send>;

struct Relay {
    live: LiveStream,
    front: Dialect,
    passthrough: bool,
    include_usage: bool,
    encoder: Option<Box<dyn StreamEncoder>>,
    done: bool,
    on_end: Option<OnEnd>,
    /// Text delivered so far, and whether a tool call was: what a continuation needs.
    delivered: String,
    delivered_tool_call: bool,
    continued_by: Option<(String, Mode)>,
    /// The stream before a continuation, for reporting the original deployment.
    first_deployment: String,
}

/// The caller's SSE body. `on_end` runs once when the stream ends or the client goes away.
pub fn sse_body(
    live: LiveStream,
    front: Dialect,
    include_usage: bool,
    on_end: OnEnd,
) -> impl Stream<Item = Bytes> + Send {
    // A stream that may be continued on another model is re-encoded from the start, so that the
    // spliced part continues the same message consistently.
    let passthrough = live.deployment.adapter.dialect() == front && live.continuation.is_none();
    let first_deployment = live.deployment.id.clone();
    let relay = Relay {
        live,
        front,
        passthrough,
        include_usage,
        encoder: None,
        done: false,
        on_end: Some(on_end),
        delivered: String::new(),
        delivered_tool_call: false,
        continued_by: None,
        first_deployment,
    };
    futures::stream::unfold(relay, |mut r| async move { r.next().await.map(|b| (b, r)) })
}

impl Relay {
    fn encoder(&mut self) -> &mut Box<dyn StreamEncoder> {
        let live = &self.live;
        let front = self.front;
        let include_usage = self.include_usage;
        self.encoder.get_or_insert_with(|| {
            let init = StreamInit {
                id: live.id.clone().unwrap_or_else(|| format!("understudy-{}", uuid::Uuid::new_v4().simple())),
                model: live.model.clone().unwrap_or_else(|| live.deployment.model.clone()),
                created: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                include_usage,
                input_tokens: live.usage.map(|u| u.input_tokens),
            };
            wire::front::stream_encoder(front, init)
        })
    }

    async fn next(&mut self) -> Option<Bytes> {
        while !self.done {
            let item = self.live.next().await?;
            let mut out = BytesMut::new();
            match item {
                LiveItem::Frame(d) => {
                    if self.passthrough {
                        // The gateway always asks OpenAI for usage; hide the usage chunk from a
                        // caller who did not.
                        let usage_only = matches!(d.events.as_slice(), [StreamEvent::Usage(_)]);
                        let hidden = usage_only && !self.include_usage && self.front == Dialect::OpenAi;
                        for ev in &d.events {
                            if let StreamEvent::Text { index: 0, text } = ev {
                                self.delivered.push_str(text);
                            }
                        }
                        if !hidden && !d.raw.is_empty() {
                            out.extend_from_slice(&d.raw);
                        }
                    } else {
                        let continued = self.continued_by.is_some();
                        for ev in &d.events {
                            match ev {
                                // The message has already started; a continuation's own start is not news.
                                StreamEvent::Start { .. } if continued => continue,
                                StreamEvent::Text { index: 0, text } => self.delivered.push_str(text),
                                StreamEvent::ToolCall { .. } => self.delivered_tool_call = true,
                                _ => {}
                            }
                            self.encoder().event(ev, &mut out);
                        }
                    }
                }
                LiveItem::End(StreamEnd::Broken(f)) if self.can_continue() => {
                    if self.resume(&f, &mut out).await {
                        if !out.is_empty() {
                            return Some(out.freeze());
                        }
                        continue;
                    }
                    self.done = true;
                    self.broken(f, &mut out);
                }
                LiveItem::End(end) => {
                    self.done = true;
                    let broken = match end {
                        StreamEnd::Complete { terminator } => {
                            if !self.passthrough {
                                let usage = self.live.usage;
                                self.encoder().finish(usage, &mut out);
                            } else if !terminator {
                                out.extend_from_slice(wire::front::stream_terminator(self.front));
                            }
                            None
                        }
                        StreamEnd::Broken(f) => {
                            self.broken(f, &mut out);
                            None
                        }
                    };
                    if self.on_end.is_some() {
                        self.report(broken, false);
                    }
                }
            }
            if !out.is_empty() {
                return Some(out.freeze());
            }
        }
        None
    }

    fn can_continue(&self) -> bool {
        self.live.continuation.as_ref().is_some_and(|c| c.eligible(self.delivered_tool_call))
    }

    /// Resumes a broken stream on the next candidates; false when none answered.
    async fn resume(&mut self, f: &Failure, out: &mut BytesMut) -> bool {
        let Some(cont) = self.live.continuation.take() else { return false };
        let Some((live, mode, who)) = cont.resume(&self.delivered).await else { return false };
        if mode == Mode::Restarted {
            let msg = format!("the answer broke ({}) and restarts from the beginning on {who}", f.class);
            let (id, model) = (self.live.id.clone().unwrap_or_default(), self.live.model.clone().unwrap_or_default());
            out.extend_from_slice(&wire::front::restart_notice(self.front, &id, &model, &msg));
        }
        tracing::info!(target: "understudy::stream", from = %self.live.deployment.id, to = %who, ?mode, "stream continued");
        self.continued_by = Some((who, mode));
        self.live = *live;
        true
    }

    /// Ends a broken stream with an in-band error and no terminator.
    fn broken(&mut self, f: Failure, out: &mut BytesMut) {
        let err = ErrorBody::new(502, "stream_broken", format!("the answer was cut off: {}", f.message))
            .code(f.detail.unwrap_or("stream_broken"));
        self.encoder().error(&err, out);
        self.report(Some(f), false);
    }

    fn report(&mut self, broken: Option<Failure>, client_closed: bool) {
        if let Some(f) = self.on_end.take() {
            f(RelayOutcome {
                deployment: self.first_deployment.clone(),
                continued_by: self.continued_by.clone(),
                answer: std::mem::take(&mut self.delivered),
                usage: self.live.usage,
                broken,
                client_closed,
                malformed: self.live.malformed,
                ttft: self.live.ttft,
                elapsed: self.live.started.elapsed(),
            });
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The client went away mid-stream: the upstream connection closes with us.
        self.report(None, true);
    }
}

/// A complete answer as the caller's SSE body, in one piece.
pub fn replay_body(resp: &crate::canonical::ChatResponse, front: Dialect, include_usage: bool) -> Bytes {
    let init = StreamInit {
        id: resp.id.clone(),
        model: resp.model.clone(),
        created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        include_usage,
        input_tokens: Some(resp.usage.input_tokens),
    };
    let mut enc = wire::front::stream_encoder(front, init);
    let mut out = BytesMut::new();
    for ev in super::replay::events(resp) {
        enc.event(&ev, &mut out);
    }
    enc.finish(Some(resp.usage), &mut out);
    out.freeze()
}
