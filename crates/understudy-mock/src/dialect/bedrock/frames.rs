//! Writes `application/vnd.amazon.eventstream` messages: a 12-byte prelude (total length,
//! headers length, CRC-32 of those 8 bytes), string headers, the payload and a CRC-32 of all
//! that. Written here from the format description, independently of the engine's codec.

use bytes::{BufMut, BytesMut};

/// CRC-32 (IEEE 802.3, the zlib polynomial, reflected), bit by bit: frames are small.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// Appends one message whose headers are all strings (type 7).
pub(crate) fn write(buf: &mut BytesMut, headers: &[(&str, &str)], payload: &[u8]) {
    let headers_len: usize = headers.iter().map(|(n, v)| 1 + n.len() + 1 + 2 + v.len()).sum();
    let total = 16 + headers_len + payload.len();
    let start = buf.len();
    // Lengths of the mock's own frames always fit in u32.
    buf.put_u32(total as u32);
    buf.put_u32(headers_len as u32);
    let prelude_crc = crc32(&buf[start..]);
    buf.put_u32(prelude_crc);
    for (name, value) in headers {
        buf.put_u8(name.len() as u8);
        buf.put_slice(name.as_bytes());
        buf.put_u8(7);
        buf.put_u16(value.len() as u16);
        buf.put_slice(value.as_bytes());
    }
    buf.put_slice(payload);
    let crc = crc32(&buf[start..]);
    buf.put_u32(crc);
}

/// An event (`:message-type: event`).
pub(crate) fn event(buf: &mut BytesMut, event_type: &str, payload: &[u8]) {
    write(
        buf,
        &[(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")],
        payload,
    );
}

/// An exception after the 200 (`:message-type: exception`).
pub(crate) fn exception(buf: &mut BytesMut, exception_type: &str, payload: &[u8]) {
    write(
        buf,
        &[(":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")],
        payload,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn empty_message() {
        // The smallest message: 16 bytes, no headers, no payload.
        let mut b = BytesMut::new();
        write(&mut b, &[], b"");
        assert_eq!(&b[..], &[0, 0, 0, 16, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]);
    }

    #[test]
    fn event_layout() {
        let mut b = BytesMut::new();
        event(&mut b, "messageStop", br#"{"stopReason":"end_turn"}"#);
        let total = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let headers = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert_eq!(total, b.len());
        assert_eq!(&b[12..13], &[11]);
        assert_eq!(&b[13..24], b":event-type");
        assert_eq!(&b[12 + headers..total - 4], br#"{"stopReason":"end_turn"}"#);
        assert_eq!(crc32(&b[..total - 4]).to_be_bytes(), [b[total - 4], b[total - 3], b[total - 2], b[total - 1]]);
    }
}
