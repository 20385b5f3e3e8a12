use super::{be32, FrameError, FrameHeader};

/// GOAWAY (§6.8). `debug_data` may be a prefix of what was sent: only so much is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goaway<'a> {
    pub last_stream_id: u32,
    pub error_code: u32,
    pub debug_data: &'a [u8],
}

impl<'a> Goaway<'a> {
    pub fn parse(head: &FrameHeader, payload: &'a [u8]) -> Result<Goaway<'a>, FrameError> {
        // "An endpoint MUST treat a GOAWAY frame with a stream identifier other than 0x00 as a
        // connection error of type PROTOCOL_ERROR."
        if head.stream != 0 {
            return Err(FrameError::Stream("GOAWAY on a stream"));
        }
        if head.len < 8 || payload.len() < 8 {
            return Err(FrameError::Length("GOAWAY shorter than 8 bytes"));
        }
        Ok(Goaway {
            last_stream_id: be32(payload) & 0x7fff_ffff,
            error_code: be32(&payload[4..]),
            debug_data: &payload[8..],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 22, 7, 0, 0, 0, 0, 0]);
        let mut p = vec![0x80, 0, 0, 5, 0, 0, 0, 11];
        p.extend_from_slice(b"too_many_pings");
        let g = Goaway::parse(&h, &p).unwrap();
        assert_eq!(
            (g.last_stream_id, g.error_code, g.debug_data),
            (5, 11, &b"too_many_pings"[..])
        );
        assert!(Goaway::parse(&h, &p[..7]).is_err());
    }
}
