//! The `application/vnd.amazon.eventstream` framing: an incremental [`FrameParser`] that checks
//! both CRCs, and [`encode`] (used by tests and anyone who needs to write frames).
//!
//! ```text
//! u32 total_length | u32 headers_length | u32 prelude_crc (of bytes 0..8)
//! headers (headers_length bytes) | payload | u32 message_crc (of bytes 0..total_length-4)
//! ```
//! All integers are big-endian; the CRC is CRC-32 (the zlib polynomial). A header is
//! `u8 name_len, name, u8 type, value`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Prelude (12 bytes) plus the message CRC.
const OVERHEAD: usize = 16;
/// botocore's limits: larger frames are refused.
pub const MAX_HEADERS: usize = 128 * 1024;
pub const MAX_PAYLOAD: usize = 24 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Bytes),
    String(String),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
    /// The frame exactly as received.
    pub raw: Bytes,
}

impl Frame {
    /// A string header's value.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why bytes did not make a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// One frame is bad (message CRC, headers), but its length was trustworthy: it was skipped
    /// and the frames after it still decode.
    Frame(String),
    /// The prelude is bad (CRC or impossible lengths): frame boundaries are lost, and nothing
    /// after this point can be read.
    Framing(String),
}

impl FrameError {
    pub fn message(&self) -> &str {
        match self {
            FrameError::Frame(m) | FrameError::Framing(m) => m,
        }
    }
}

/// Splits a byte stream into frames, whatever the chunk boundaries.
#[derive(Debug, Default)]
pub struct FrameParser {
    buf: BytesMut,
    /// Framing was lost: every later byte is ignored.
    lost: bool,
}

impl FrameParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Frame, FrameError>>) {
        if self.lost {
            return;
        }
        self.buf.extend_from_slice(bytes);
        while let Some(item) = self.next_frame() {
            let lost = matches!(item, Err(FrameError::Framing(_)));
            out.push(item);
            if lost {
                self.lost = true;
                self.buf = BytesMut::new();
                return;
            }
        }
    }

    /// The input ended: bytes of an incomplete frame are reported.
    pub fn finish(&mut self, out: &mut Vec<Result<Frame, FrameError>>) {
        if !self.lost && !self.buf.is_empty() {
            let n = self.buf.len();
            self.buf = BytesMut::new();
            out.push(Err(FrameError::Frame(format!("the stream ended inside a frame ({n} bytes left over)"))));
        }
    }

    /// The next complete frame, or `None` when more bytes are needed.
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let prelude = self.buf.get(..12)?;
        let total = be_u32(prelude, 0) as usize;
        let headers_len = be_u32(prelude, 4) as usize;
        if crc32fast::hash(prelude.get(..8)?) != be_u32(prelude, 8) {
            return Some(Err(FrameError::Framing("eventstream prelude CRC mismatch".into())));
        }
        let fits = total >= OVERHEAD
            && headers_len <= MAX_HEADERS
            && headers_len <= total - OVERHEAD
            && total - OVERHEAD - headers_len <= MAX_PAYLOAD;
        if !fits {
            return Some(Err(FrameError::Framing(format!(
                "eventstream prelude with impossible lengths (total {total}, headers {headers_len})"
            ))));
        }
        if self.buf.len() < total {
            return None;
        }
        let raw = self.buf.split_to(total).freeze();
        Some(parse_frame(raw, headers_len))
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// A whole frame whose prelude checked out.
fn parse_frame(raw: Bytes, headers_len: usize) -> Result<Frame, FrameError> {
    let body_end = raw.len() - 4;
    let expected = be_u32(&raw, body_end);
    if crc32fast::hash(&raw[..body_end]) != expected {
        return Err(FrameError::Frame("eventstream message CRC mismatch".into()));
    }
    let headers = parse_headers(raw.slice(12..12 + headers_len)).map_err(FrameError::Frame)?;
    let payload = raw.slice(12 + headers_len..body_end);
    Ok(Frame { headers, payload, raw })
}

fn parse_headers(mut b: Bytes) -> Result<Vec<(String, HeaderValue)>, String> {
    let mut out: Vec<(String, HeaderValue)> = Vec::new();
    while b.has_remaining() {
        let name_len = usize::from(b.get_u8());
        let name = take(&mut b, name_len)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "a header name is not UTF-8".to_string())?;
        if name.is_empty() {
            return Err("an empty header name".into());
        }
        if !b.has_remaining() {
            return Err(format!("header {name} has no type"));
        }
        let value = match b.get_u8() {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed::<1>(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed::<2>(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed::<4>(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed::<8>(&mut b)?)),
            6 => HeaderValue::Bytes(length_prefixed(&mut b)?),
            7 => {
                let s = length_prefixed(&mut b)?;
                HeaderValue::String(String::from_utf8(s.to_vec()).map_err(|_| format!("header {name} is not UTF-8"))?)
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed::<8>(&mut b)?)),
            9 => HeaderValue::Uuid(fixed::<16>(&mut b)?),
            t => return Err(format!("header {name} has unknown type {t}")),
        };
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("duplicate header {name}"));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn take(b: &mut Bytes, n: usize) -> Result<Bytes, String> {
    if b.remaining() < n {
        return Err("a header runs past the headers section".into());
    }
    Ok(b.split_to(n))
}

fn fixed<const N: usize>(b: &mut Bytes) -> Result<[u8; N], String> {
    let bytes = take(b, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn length_prefixed(b: &mut Bytes) -> Result<Bytes, String> {
    let len = u16::from_be_bytes(fixed::<2>(b)?);
    take(b, usize::from(len))
}

/// Writes one frame. Fails on a header name over 255 bytes, a string or bytes value over
/// 65535 bytes, or sections over the size limits.
pub fn encode(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Result<Bytes, String> {
    let mut h = BytesMut::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len()).map_err(|_| format!("header name {name} is too long"))?;
        h.put_u8(name_len);
        h.put_slice(name.as_bytes());
        put_value(&mut h, value)?;
    }
    if h.len() > MAX_HEADERS || payload.len() > MAX_PAYLOAD {
        return Err("frame too large".into());
    }
    let total = OVERHEAD + h.len() + payload.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(u32::try_from(total).map_err(|_| "frame too large".to_string())?);
    out.put_u32(u32::try_from(h.len()).map_err(|_| "headers too large".to_string())?);
    let prelude_crc = crc32fast::hash(&out);
    out.put_u32(prelude_crc);
    out.put_slice(&h);
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    Ok(out.freeze())
}

fn put_value(h: &mut BytesMut, value: &HeaderValue) -> Result<(), String> {
    let prefixed = |h: &mut BytesMut, kind: u8, bytes: &[u8]| -> Result<(), String> {
        let len = u16::try_from(bytes.len()).map_err(|_| "header value too long".to_string())?;
        h.put_u8(kind);
        h.put_u16(len);
        h.put_slice(bytes);
        Ok(())
    };
    match value {
        HeaderValue::Bool(true) => h.put_u8(0),
        HeaderValue::Bool(false) => h.put_u8(1),
        HeaderValue::Byte(v) => {
            h.put_u8(2);
            h.put_i8(*v);
        }
        HeaderValue::Short(v) => {
            h.put_u8(3);
            h.put_i16(*v);
        }
        HeaderValue::Int(v) => {
            h.put_u8(4);
            h.put_i32(*v);
        }
        HeaderValue::Long(v) => {
            h.put_u8(5);
            h.put_i64(*v);
        }
        HeaderValue::Bytes(b) => prefixed(h, 6, b)?,
        HeaderValue::String(s) => prefixed(h, 7, s.as_bytes())?,
        HeaderValue::Timestamp(v) => {
            h.put_u8(8);
            h.put_i64(*v);
        }
        HeaderValue::Uuid(u) => {
            h.put_u8(9);
            h.put_slice(u);
        }
    }
    Ok(())
}

/// An event frame as Bedrock writes them (`:message-type: event`, `:event-type`, JSON).
pub fn event(event_type: &str, payload: &[u8]) -> Result<Bytes, String> {
    encode(
        &[
            (":event-type", HeaderValue::String(event_type.into())),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("event".into())),
        ],
        payload,
    )
}

/// An exception frame (`:message-type: exception`, `:exception-type`).
pub fn exception(exception_type: &str, payload: &[u8]) -> Result<Bytes, String> {
    encode(
        &[
            (":exception-type", HeaderValue::String(exception_type.into())),
            (":content-type", HeaderValue::String("application/json".into())),
            (":message-type", HeaderValue::String("exception".into())),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn all_types() -> Vec<(&'static str, HeaderValue)> {
        vec![
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("byte", HeaderValue::Byte(-7)),
            ("short", HeaderValue::Short(-300)),
            ("int", HeaderValue::Int(70_000)),
            ("long", HeaderValue::Long(-5_000_000_000)),
            ("bytes", HeaderValue::Bytes(Bytes::from_static(b"\x00\x01\xff"))),
            ("string", HeaderValue::String("héllo".into())),
            ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
            ("uuid", HeaderValue::Uuid([7; 16])),
        ]
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<Result<Frame, FrameError>> {
        let mut p = FrameParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        p.finish(&mut out);
        out
    }

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&encode(&all_types(), br#"{"a":1}"#).unwrap());
        s.extend_from_slice(&event("contentBlockDelta", br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#).unwrap());
        s.extend_from_slice(&encode(&[], b"").unwrap());
        s.extend_from_slice(&exception("throttlingException", br#"{"message":"slow down"}"#).unwrap());
        s
    }

    #[test]
    fn round_trip_every_header_type() {
        let bytes = encode(&all_types(), br#"{"a":1}"#).unwrap();
        let out = parse_all(&[&bytes]);
        assert_eq!(out.len(), 1);
        let f = out[0].as_ref().unwrap();
        let expected: Vec<(String, HeaderValue)> = all_types().into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        assert_eq!(f.headers, expected);
        assert_eq!(&f.payload[..], br#"{"a":1}"#);
        assert_eq!(f.raw, bytes);
        assert_eq!(f.header_str("string"), Some("héllo"));
        assert_eq!(f.header_str("int"), None);
    }

    #[test]
    fn known_frame_bytes() {
        // An empty frame: total 16, no headers; CRC-32 of the prelude is that of 8 bytes.
        let bytes = encode(&[], b"").unwrap();
        assert_eq!(&bytes[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..12], &0x05c2_48ebu32.to_be_bytes());
        assert_eq!(&bytes[12..], &0x7d98_c8ffu32.to_be_bytes());
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let s = stream();
        let whole = parse_all(&[&s]);
        assert_eq!(whole.len(), 4);
        assert!(whole.iter().all(Result::is_ok));
        for i in 0..=s.len() {
            let (a, b) = s.split_at(i);
            assert_eq!(parse_all(&[a, b]), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn message_crc_mismatch_skips_one_frame() {
        let good = event("messageStart", br#"{"role":"assistant"}"#).unwrap();
        let mut bad = event("contentBlockDelta", br#"{"delta":{"text":"x"}}"#).unwrap().to_vec();
        let n = bad.len();
        bad[n - 6] ^= 0x20; // a payload byte
        let mut s = good.to_vec();
        s.extend_from_slice(&bad);
        s.extend_from_slice(&good);
        let out = parse_all(&[&s]);
        assert_eq!(out.len(), 3);
        assert!(out[0].is_ok());
        assert_eq!(out[1], Err(FrameError::Frame("eventstream message CRC mismatch".into())));
        assert!(out[2].is_ok(), "the frame after a bad one still decodes");
    }

    #[test]
    fn prelude_crc_mismatch_loses_the_framing() {
        let good = event("messageStart", br#"{"role":"assistant"}"#).unwrap();
        let mut bad = good.to_vec();
        bad[3] ^= 1; // total length
        let mut s = bad;
        s.extend_from_slice(&good);
        let out = parse_all(&[&s]);
        assert_eq!(out, vec![Err(FrameError::Framing("eventstream prelude CRC mismatch".into()))]);
        // And later input is ignored.
        let mut p = FrameParser::new();
        let mut out = Vec::new();
        p.feed(&s, &mut out);
        p.feed(&good, &mut out);
        p.finish(&mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn impossible_lengths_and_bad_headers() {
        // A valid prelude CRC over a total length below the minimum.
        let mut s = vec![0, 0, 0, 8, 0, 0, 0, 0];
        let crc = crc32fast::hash(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(parse_all(&[&s])[0], Err(FrameError::Framing(_))));
        // Headers that run past their section, a duplicate, an unknown type.
        for headers in [&[3u8, b'a', b'b'][..], &[1, b'a', 0, 1, b'a', 1], &[1, b'a', 42]] {
            let mut f = BytesMut::new();
            f.put_u32(16 + headers.len() as u32);
            f.put_u32(headers.len() as u32);
            let crc = crc32fast::hash(&f);
            f.put_u32(crc);
            f.put_slice(headers);
            let crc = crc32fast::hash(&f);
            f.put_u32(crc);
            let out = parse_all(&[&f]);
            assert!(matches!(out[0], Err(FrameError::Frame(_))), "{headers:?}: {out:?}");
        }
    }

    #[test]
    fn a_trailing_partial_frame_is_reported() {
        let good = event("messageStart", b"{}").unwrap();
        let out = parse_all(&[&good[..good.len() - 1]]);
        assert!(matches!(&out[..], [Err(FrameError::Frame(m))] if m.contains("ended inside a frame")));
    }

    #[test]
    fn encode_refuses_what_cannot_be_framed() {
        let long = "x".repeat(256);
        assert!(encode(&[(&long, HeaderValue::Bool(true))], b"").is_err());
        assert!(encode(&[("a", HeaderValue::String("x".repeat(70_000)))], b"").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
            let (a, b) = bytes.split_at(split.min(bytes.len()));
            let _ = parse_all(&[a, b]);
        }

        #[test]
        fn corrupted_frames_never_panic(flip in 0usize..200, bit in 0u8..8) {
            let mut s = stream();
            let i = flip % s.len();
            s[i] ^= 1 << bit;
            let out = parse_all(&[&s]);
            prop_assert!(out.iter().any(Result::is_err));
        }
    }
}
