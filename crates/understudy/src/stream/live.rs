use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::time::{timeout_at, Instant};

use crate::canonical::{Decoded, FinishReason, StreamEvent, Usage};
use crate::failure::{Failure, FailureClass};
use crate::route::Deployment;
use crate::wire::{Malformed, StreamDecoder};

/// What the relay receives next.
#[derive(Debug)]
pub enum LiveItem {
    Frame(Decoded),
    End(StreamEnd),
}

/// How a committed stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// The answer is complete. `terminator` says whether the provider sent its own terminator
    /// (`[DONE]`, `message_stop`); when it did not but a finish reason arrived, the stream is
    /// finalised at once instead of waiting.
    Complete { terminator: bool },
    /// Cut, stalled or errored after the commit point: never presented as a success.
    Broken(Failure),
}

/// When an attempt started, how long its first content took, and when it must end.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub started: Instant,
    pub ttft: Duration,
    pub deadline: Instant,
}

/// A provider stream past its commit point.
pub struct LiveStream {
    pub deployment: Arc<Deployment>,
    pending: VecDeque<Decoded>,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: Box<dyn StreamDecoder>,
    decoded: Vec<Result<Decoded, Malformed>>,
    pub started: Instant,
    /// Time from the start of the attempt to the first content.
    pub ttft: Duration,
    deadline: Instant,
    idle: Duration,
    /// Malformed frames skipped so far.
    pub malformed: u32,
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
    /// The response id and model the provider announced.
    pub id: Option<String>,
    pub model: Option<String>,
    ended: Option<StreamEnd>,
    eof: bool,
    /// How to resume if this stream breaks (`stream_failure: continue`).
    pub continuation: Option<super::continuation::Continuation>,
    /// The deployment's health has heard how this stream ended.
    verdict_given: bool,
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        // The caller went away (or a continuation replaced this stream) before the end: no
        // verdict on the deployment's health, but it is no longer in flight.
        if !self.verdict_given {
            self.deployment.health.abandoned();
        }
    }
}

impl LiveStream {
    /// `buffered` frames were read before the commit point; `rest` were decoded with them but
    /// not yet looked at.
    pub(crate) fn new(
        deployment: Arc<Deployment>,
        buffered: Vec<Decoded>,
        rest: Vec<Result<Decoded, Malformed>>,
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        decoder: Box<dyn StreamDecoder>,
        timing: Timing,
        malformed: u32,
    ) -> LiveStream {
        let Timing { started, ttft, deadline } = timing;
        let idle = deployment.limits.idle_timeout;
        let mut s = LiveStream {
            deployment,
            pending: VecDeque::new(),
            body,
            decoder,
            decoded: Vec::new(),
            started,
            ttft,
            deadline,
            idle,
            malformed,
            usage: None,
            finish: None,
            id: None,
            model: None,
            ended: None,
            eof: false,
            continuation: None,
            verdict_given: false,
        };
        for d in buffered {
            s.observe(&d);
            s.pending.push_back(d);
        }
        s.decoded = rest;
        s.take_decoded();
        s
    }

    /// A complete answer replayed as a stream (a server that answered a stream request in one
    /// piece): every frame is already here.
    pub(crate) fn replayed(deployment: Arc<Deployment>, frames: Vec<Decoded>) -> LiveStream {
        let now = Instant::now();
        let deadline = now + deployment.limits.timeout;
        let decoder = deployment.adapter.stream_decoder();
        let timing = Timing { started: now, ttft: Duration::ZERO, deadline };
        let mut s =
            LiveStream::new(deployment, frames, Vec::new(), Box::pin(futures::stream::empty()), decoder, timing, 0);
        // Its attempt already reported a complete answer.
        s.verdict_given = true;
        s
    }

    /// Records what a frame says about the answer; stops at the terminator or an error.
    fn observe(&mut self, d: &Decoded) {
        for ev in &d.events {
            match ev {
                StreamEvent::Start { id, model } => {
                    if self.id.is_none() {
                        self.id.clone_from(id);
                    }
                    if self.model.is_none() {
                        self.model.clone_from(model);
                    }
                }
                StreamEvent::Usage(u) => self.usage = Some(*u),
                StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
                StreamEvent::Done if self.ended.is_none() => {
                    self.ended = Some(StreamEnd::Complete { terminator: true });
                }
                StreamEvent::Error(f) if self.ended.is_none() => {
                    self.ended = Some(StreamEnd::Broken(
                        Failure::new(FailureClass::StreamBroken, format!("provider error mid-stream: {f}"))
                            .detail("provider_error"),
                    ));
                }
                _ => {}
            }
        }
    }

    /// The next frame, or how the stream ended (returned once; `None` afterwards).
    pub async fn next(&mut self) -> Option<LiveItem> {
        let item = self.next_inner().await;
        if let Some(LiveItem::End(end)) = &item {
            if !std::mem::replace(&mut self.verdict_given, true) {
                let now = Instant::now();
                match end {
                    StreamEnd::Complete { .. } => {
                        self.deployment.health.success(now, None, Some(now.saturating_duration_since(self.started)))
                    }
                    // A stream that breaks after its commit point counts against the deployment.
                    StreamEnd::Broken(f) => {
                        let l = &self.deployment.limits;
                        self.deployment.health.failure(now, f, l.disable_for, l.rate_limit_cooldown);
                    }
                }
            }
        }
        item
    }

    async fn next_inner(&mut self) -> Option<LiveItem> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                // Frames after an error are not forwarded; the terminator frame itself is.
                let is_error = d.events.iter().any(|e| matches!(e, StreamEvent::Error(_)));
                if !is_error {
                    return Some(LiveItem::Frame(d));
                }
                self.pending.clear();
                continue;
            }
            if let Some(end) = self.ended.take() {
                self.eof = true;
                self.pending.clear();
                return Some(LiveItem::End(end));
            }
            if self.eof {
                return None;
            }
            self.fill().await;
        }
    }

    /// Reads more of the body into `pending`, or decides how the stream ended.
    async fn fill(&mut self) {
        let idle_at = (Instant::now() + self.idle).min(self.deadline);
        let next = timeout_at(idle_at, self.body.next()).await;
        match next {
            Err(_) => {
                let detail = if idle_at == self.deadline { "total" } else { "idle" };
                self.ended = Some(StreamEnd::Broken(
                    Failure::new(FailureClass::StreamBroken, format!("the stream stalled ({detail} timeout)"))
                        .detail(detail),
                ));
            }
            Ok(Some(Err(e))) => {
                let msg = crate::route::attempt::transport_failure(&e).message;
                self.ended = Some(StreamEnd::Broken(
                    Failure::new(FailureClass::StreamBroken, format!("connection lost mid-stream: {msg}"))
                        .detail("connection_lost"),
                ));
            }
            Ok(Some(Ok(chunk))) => self.decoder.feed(&chunk, &mut self.decoded),
            Ok(None) => {
                self.decoder.finish(&mut self.decoded);
                self.take_decoded();
                if self.ended.is_none() {
                    self.ended = Some(match self.finish {
                        Some(_) => StreamEnd::Complete { terminator: false },
                        None => StreamEnd::Broken(
                            Failure::new(FailureClass::StreamBroken, "the stream ended before the answer was complete")
                                .detail("truncated"),
                        ),
                    });
                }
                return;
            }
        }
        self.take_decoded();
    }

    fn take_decoded(&mut self) {
        let items: Vec<_> = self.decoded.drain(..).collect();
        for item in items {
            match item {
                Ok(d) => {
                    if self.ended.is_some() {
                        // Nothing after the terminator or an error counts.
                        continue;
                    }
                    self.observe(&d);
                    self.pending.push_back(d);
                }
                Err(_) => {
                    self.malformed += 1;
                    metrics::counter!(crate::report::metrics::MALFORMED, "deployment" => self.deployment.id.clone())
                        .increment(1);
                }
            }
        }
    }
}
