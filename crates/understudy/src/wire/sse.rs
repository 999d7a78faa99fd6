//! Server-sent events: an incremental parser that keeps each frame's raw bytes, and a writer.

use bytes::{Bytes, BytesMut};

use super::Malformed;

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseFrame {
    /// The `event:` field, when present.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The frame as received, including its terminating blank line.
    pub raw: Bytes,
}

/// Largest frame accepted; a provider that sends more without a blank line is broken.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Incremental SSE parser. Accepts `\n`, `\r\n` and `\r` line endings, ignores comments and
/// unknown fields, and emits a frame at each blank line that follows at least one field.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Unconsumed bytes; always starts at the beginning of the current frame.
    buf: BytesMut,
    /// Start of the current (incomplete) line within `buf`.
    line: usize,
    event: Option<String>,
    data: Option<String>,
    /// Inside a frame that exceeded [`MAX_FRAME`]: skip until its blank line.
    overflowed: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<SseFrame, Malformed>>) {
        self.buf.extend_from_slice(bytes);
        while let Some((end, next)) = find_line_end(&self.buf, self.line) {
            if end == self.line {
                // Blank line: the frame is complete.
                let raw = self.buf.split_to(next).freeze();
                self.line = 0;
                if std::mem::take(&mut self.overflowed) {
                    continue;
                }
                if self.data.is_some() || self.event.is_some() {
                    out.push(Ok(SseFrame {
                        event: self.event.take(),
                        data: self.data.take().unwrap_or_default(),
                        raw,
                    }));
                }
                continue;
            }
            if !self.overflowed {
                self.field(self.line, end);
            }
            self.line = next;
            if self.overflowed {
                // Keep memory bounded while skipping: forget the lines already read.
                let _ = self.buf.split_to(next);
                self.line = 0;
            }
        }
        if !self.overflowed && self.buf.len() > MAX_FRAME {
            out.push(Err(Malformed(format!("frame larger than {MAX_FRAME} bytes"))));
            self.overflowed = true;
            self.event = None;
            self.data = None;
            let keep = self.buf.len() - self.line;
            let _ = self.buf.split_to(self.buf.len() - keep);
            self.line = 0;
        }
        if self.overflowed && self.buf.len() > MAX_FRAME {
            self.buf.clear();
            self.line = 0;
        }
    }

    /// Bytes held while waiting for the end of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Flushes a final frame that was not followed by a blank line.
    pub fn finish(&mut self, out: &mut Vec<Result<SseFrame, Malformed>>) {
        if !self.overflowed {
            if self.buf.len() > self.line {
                let mut end = self.buf.len();
                if self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                self.field(self.line, end);
            }
            if self.data.is_some() || self.event.is_some() {
                let raw = self.buf.split().freeze();
                out.push(Ok(SseFrame { event: self.event.take(), data: self.data.take().unwrap_or_default(), raw }));
            }
        }
        *self = Self::default();
    }

    fn field(&mut self, start: usize, end: usize) {
        let line = &self.buf[start..end];
        if line.first() == Some(&b':') {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(&value);
                }
                None => self.data = Some(value.into_owned()),
            },
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
    }
}

/// Finds the end of the line starting at or before `from`: returns (end of content, start of next line).
fn find_line_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let i = buf[from..].iter().position(|&b| b == b'\n' || b == b'\r')? + from;
    if buf[i] == b'\r' {
        // A lone `\r` at the very end may be the first half of `\r\n`: wait for more.
        if i + 1 == buf.len() {
            return None;
        }
        if buf[i + 1] == b'\n' {
            return Some((i, i + 2));
        }
    }
    Some((i, i + 1))
}

/// Writes one SSE event.
pub fn write_event(out: &mut BytesMut, event: Option<&str>, data: &str) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\n");
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Result<SseFrame, Malformed>> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn frames_split_anywhere_parse_the_same() {
        let input = b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: line1\r\ndata: line2\r\n\r\ndata: [DONE]\n\n";
        let whole = parse_all(&[input]);
        assert_eq!(whole.len(), 3);
        for split in 1..input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(parse_all(&[a, b]), whole, "split at {split}");
        }
        let f = whole[0].as_ref().unwrap();
        assert_eq!(f.event.as_deref(), Some("a"));
        assert_eq!(f.data, "{\"x\":1}");
        assert_eq!(&f.raw[..], b"event: a\ndata: {\"x\":1}\n\n");
        assert_eq!(whole[1].as_ref().unwrap().data, "line1\nline2");
        assert_eq!(whole[2].as_ref().unwrap().data, "[DONE]");
    }

    #[test]
    fn trailing_frame_without_blank_line_is_flushed() {
        let out = parse_all(&[b"data: tail"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().data, "tail");
    }

    #[test]
    fn writer_round_trips() {
        let mut out = BytesMut::new();
        write_event(&mut out, Some("message_stop"), "{\"a\":\n1}");
        let frames = parse_all(&[&out]);
        let f = frames[0].as_ref().unwrap();
        assert_eq!(f.event.as_deref(), Some("message_stop"));
        assert_eq!(f.data, "{\"a\":\n1}");
    }
}
