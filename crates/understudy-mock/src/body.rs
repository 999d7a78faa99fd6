//! Response bodies: a whole buffer, or a scripted stream of SSE bytes, delays and breakages.
//!
//! A stream is written into one buffer up front and then handed out as zero-copy slices, so a
//! streamed answer costs one allocation for its bytes and one for its step list.

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why a scripted stream ended abruptly: hyper then closes the connection without the
/// chunked-encoding terminator, which the client sees as a truncated body.
#[derive(Debug)]
pub struct StreamCut;

impl fmt::Display for StreamCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mock stream cut on purpose")
    }
}

impl std::error::Error for StreamCut {}

pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Script(Script),
}

impl MockBody {
    pub fn full(bytes: impl Into<Bytes>) -> MockBody {
        MockBody::Full(Some(bytes.into()))
    }

    pub fn empty() -> MockBody {
        MockBody::Full(None)
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = StreamCut;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, StreamCut>>> {
        match self.get_mut() {
            MockBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Script(s) => s.poll_step(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Script(_) => SizeHint::default(),
        }
    }
}

enum Step {
    Emit(Bytes),
    Sleep(Duration),
    /// End with an error after giving hyper one chance to flush what it has buffered.
    Cut,
    /// Send nothing more, keep the connection open until the client leaves.
    Stall,
}

pub(crate) struct Script {
    steps: Vec<Step>,
    pos: usize,
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    flushed: bool,
}

impl Script {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, StreamCut>>> {
        loop {
            let Some(step) = self.steps.get_mut(self.pos) else {
                return Poll::Ready(None);
            };
            match step {
                Step::Emit(bytes) => {
                    let bytes = std::mem::take(bytes);
                    self.pos += 1;
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Step::Sleep(d) => {
                    let deadline = Instant::now() + *d;
                    let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if !self.sleeping {
                        sleep.as_mut().reset(deadline);
                        self.sleeping = true;
                    }
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.sleeping = false;
                    self.pos += 1;
                }
                Step::Cut => {
                    if !self.flushed {
                        self.flushed = true;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    return Poll::Ready(Some(Err(StreamCut)));
                }
                Step::Stall => return Poll::Pending,
            }
        }
    }
}

/// Builds a [`Script`]: frames are appended to one buffer; adjacent frames merge into one write.
pub(crate) struct ScriptBuilder {
    buf: BytesMut,
    steps: Vec<RawStep>,
    open_from: usize,
}

enum RawStep {
    Emit(usize, usize),
    Sleep(Duration),
    Cut,
    Stall,
}

impl ScriptBuilder {
    pub fn new() -> ScriptBuilder {
        ScriptBuilder { buf: BytesMut::with_capacity(1024), steps: Vec::with_capacity(8), open_from: 0 }
    }

    /// The buffer to write frames into.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn close_emit(&mut self) {
        let end = self.buf.len();
        if end > self.open_from {
            self.steps.push(RawStep::Emit(self.open_from, end));
        }
        self.open_from = end;
    }

    pub fn sleep(&mut self, d: Option<Duration>) {
        if let Some(d) = d.filter(|d| !d.is_zero()) {
            self.close_emit();
            self.steps.push(RawStep::Sleep(d));
        }
    }

    pub fn cut(&mut self) {
        self.close_emit();
        self.steps.push(RawStep::Cut);
    }

    pub fn stall(&mut self) {
        self.close_emit();
        self.steps.push(RawStep::Stall);
    }

    pub fn finish(mut self) -> MockBody {
        self.close_emit();
        let all = self.buf.freeze();
        let steps = self
            .steps
            .into_iter()
            .map(|s| match s {
                RawStep::Emit(a, b) => Step::Emit(all.slice(a..b)),
                RawStep::Sleep(d) => Step::Sleep(d),
                RawStep::Cut => Step::Cut,
                RawStep::Stall => Step::Stall,
            })
            .collect();
        MockBody::Script(Script { steps, pos: 0, sleep: None, sleeping: false, flushed: false })
    }
}
