use super::{flag, FrameError, FrameHeader};

/// PING (§6.7): its 8 opaque bytes pair a PING with its ACK and identify the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub ack: bool,
    pub opaque: [u8; 8],
}

impl Ping {
    pub fn parse(head: &FrameHeader, payload: &[u8]) -> Result<Ping, FrameError> {
        // "If a PING frame is received with a Stream Identifier field value other than 0x00, the
        // recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        if head.stream != 0 {
            return Err(FrameError::Stream("PING on a stream"));
        }
        // "Receipt of a PING frame with a length field value other than 8 MUST be treated as a
        // connection error of type FRAME_SIZE_ERROR."
        let opaque: [u8; 8] = match payload.try_into() {
            Ok(o) if head.len == 8 => o,
            _ => return Err(FrameError::Length("PING length is not 8")),
        };
        Ok(Ping {
            ack: head.has(flag::ACK),
            opaque,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 8, 6, 1, 0, 0, 0, 0]);
        let p = Ping::parse(&h, &[2, 4, 16, 16, 9, 14, 7, 7]).unwrap();
        assert!(p.ack);
        assert_eq!(p.opaque, [2, 4, 16, 16, 9, 14, 7, 7]);
        assert!(Ping::parse(&h, &[0; 7]).is_err());
        let on_stream = FrameHeader::parse(&[0, 0, 8, 6, 0, 0, 0, 0, 1]);
        assert!(Ping::parse(&on_stream, &[0; 8]).is_err());
    }
}
