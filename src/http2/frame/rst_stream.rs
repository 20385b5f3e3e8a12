use super::{be32, FrameError, FrameHeader};

/// RST_STREAM (§6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStream {
    pub error_code: u32,
}

impl RstStream {
    pub fn parse(head: &FrameHeader, payload: &[u8]) -> Result<RstStream, FrameError> {
        // "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection
        // error of type FRAME_SIZE_ERROR."
        if head.len != 4 || payload.len() < 4 {
            return Err(FrameError::Length("RST_STREAM length is not 4"));
        }
        // "If a RST_STREAM frame is received with a stream identifier of 0x00, the recipient MUST
        // treat this as a connection error".
        if head.stream == 0 {
            return Err(FrameError::Stream("RST_STREAM on stream 0"));
        }
        Ok(RstStream {
            error_code: be32(payload),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 4, 3, 0, 0, 0, 0, 7]);
        assert_eq!(
            RstStream::parse(&h, &[0, 0, 0, 8]),
            Ok(RstStream { error_code: 8 })
        );
        assert!(RstStream::parse(&h, &[0, 0]).is_err());
        let h = FrameHeader::parse(&[0, 0, 3, 3, 0, 0, 0, 0, 7]);
        assert!(RstStream::parse(&h, &[0, 0, 0]).is_err());
    }
}
