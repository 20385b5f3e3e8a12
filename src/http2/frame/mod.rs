//! HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte header, and one file per frame kind with
//! `parse(head, payload) -> Result<Self, FrameError>`. A frame that breaks a rule becomes an
//! anomaly on the timeline and is still counted; parsing of the connection goes on.

mod continuation;
mod data;
mod goaway;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
pub mod settings;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use goaway::Goaway;
pub use headers::Headers;
pub use ping::Ping;
pub use priority::Priority;
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::Settings;
pub use window_update::WindowUpdate;

use serde::{Deserialize, Serialize};
use std::fmt;

pub const HEADER_LEN: usize = 9;
/// RFC 9113 §6.5.2: the initial SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;

pub mod kind {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// RFC 9113 §7 error codes.
const ERROR_NAMES: [&str; 14] = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
];

/// The RFC 9113 name of an error code, or `UNKNOWN_0x..`.
pub fn error_name(code: u32) -> String {
    match ERROR_NAMES.get(code as usize) {
        Some(n) => n.to_string(),
        None => format!("UNKNOWN_0x{code:x}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// Stream identifier with the reserved bit cleared.
    pub stream: u32,
    /// The reserved bit was set (§4.1: "MUST remain unset when sending").
    pub reserved: bool,
}

impl FrameHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> FrameHeader {
        let raw_stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
        FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: raw_stream & 0x7fff_ffff,
            reserved: raw_stream & 0x8000_0000 != 0,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether this header could start a real frame, judged strictly: a known type, only the flags
    /// that type defines, the reserved bit clear, the stream id and length rules of §6 met, and a
    /// length within `max_len`. Used to find frame boundaries where the stream's start is unknown.
    pub fn plausible(&self, max_len: u32) -> bool {
        use kind::*;
        if self.reserved || self.len > max_len {
            return false;
        }
        let (allowed_flags, stream_zero, len_ok) = match self.kind {
            DATA => (flag::END_STREAM | flag::PADDED, false, true),
            HEADERS => (
                flag::END_STREAM | flag::END_HEADERS | flag::PADDED | flag::PRIORITY,
                false,
                true,
            ),
            PRIORITY => (0, false, self.len == 5),
            RST_STREAM => (0, false, self.len == 4),
            SETTINGS => (
                flag::ACK,
                true,
                self.len % 6 == 0 && (!self.has(flag::ACK) || self.len == 0),
            ),
            PUSH_PROMISE => (flag::END_HEADERS | flag::PADDED, false, self.len >= 4),
            PING => (flag::ACK, true, self.len == 8),
            GOAWAY => (0, true, self.len >= 8),
            WINDOW_UPDATE => (0, self.stream == 0, self.len == 4),
            CONTINUATION => (flag::END_HEADERS, false, true),
            _ => return false,
        };
        self.flags & !allowed_flags == 0 && (self.stream == 0) == stream_zero && len_ok
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The payload length breaks the frame kind's rule.
    Length(&'static str),
    /// The stream identifier breaks the frame kind's rule.
    Stream(&'static str),
    /// Padding longer than the payload.
    Padding,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Length(why) | FrameError::Stream(why) => f.write_str(why),
            FrameError::Padding => f.write_str("padding exceeds the payload"),
        }
    }
}

/// Strips padding (§6.1, §6.2, §6.6): "Pad Length: An 8-bit field containing the length of the frame
/// padding in units of octets." and "If the length of the padding is the length of the frame payload
/// or greater, the recipient MUST treat this as a connection error".
fn unpad(head: &FrameHeader, payload: &[u8]) -> Result<(usize, usize), FrameError> {
    if !head.has(flag::PADDED) {
        return Ok((0, payload.len()));
    }
    let pad = *payload.first().ok_or(FrameError::Padding)? as usize;
    if pad >= payload.len() {
        return Err(FrameError::Padding);
    }
    Ok((1, payload.len() - pad))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let h = FrameHeader::parse(&[0, 0, 8, 6, 1, 0x80, 0, 0, 0]);
        assert_eq!(
            (h.len, h.kind, h.flags, h.stream, h.reserved),
            (8, 6, 1, 0, true)
        );
        assert!(!h.plausible(16384), "reserved bit set");
        let h = FrameHeader::parse(&[0, 0, 8, 6, 1, 0, 0, 0, 0]);
        assert!(h.plausible(16384));
        let h = FrameHeader::parse(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
        assert_eq!(h.len, (1 << 24) - 1);
        assert!(!h.plausible(16384));
    }

    #[test]
    fn plausibility_rules() {
        let p = |b: [u8; 9]| FrameHeader::parse(&b).plausible(DEFAULT_MAX_FRAME_SIZE);
        assert!(p([0, 0, 0, 4, 0, 0, 0, 0, 0]), "empty SETTINGS");
        assert!(!p([0, 0, 0, 4, 0, 0, 0, 0, 1]), "SETTINGS on a stream");
        assert!(
            !p([0, 0, 7, 4, 0, 0, 0, 0, 0]),
            "SETTINGS not a multiple of 6"
        );
        assert!(!p([0, 0, 9, 6, 0, 0, 0, 0, 0]), "PING of 9 bytes");
        assert!(!p([0, 0, 4, 0, 0, 0, 0, 0, 0]), "DATA on stream 0");
        assert!(!p([0, 0, 4, 0, 0x40, 0, 0, 0, 1]), "undefined flag");
        assert!(!p([0, 0, 4, 10, 0, 0, 0, 0, 1]), "unknown type");
        assert!(!p(*b"GET / HTT"), "HTTP/1");
        assert!(!p([0x17, 3, 3, 0, 0x20, 0, 0, 0, 0]), "TLS record");
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(11), "ENHANCE_YOUR_CALM");
        assert_eq!(error_name(13), "HTTP_1_1_REQUIRED");
        assert_eq!(error_name(0x1f), "UNKNOWN_0x1f");
    }

    #[test]
    fn padding() {
        let h = FrameHeader::parse(&[0, 0, 4, 0, flag::PADDED, 0, 0, 0, 1]);
        assert_eq!(unpad(&h, &[2, b'a', 0, 0]), Ok((1, 2)));
        assert_eq!(unpad(&h, &[4, b'a', 0, 0]), Err(FrameError::Padding));
        assert_eq!(unpad(&h, &[]), Err(FrameError::Padding));
    }
}
