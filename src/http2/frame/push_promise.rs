use super::{be32, flag, unpad, FrameError, FrameHeader};

/// PUSH_PROMISE (§6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushPromise<'a> {
    pub promised_stream: u32,
    pub end_headers: bool,
    pub fragment: &'a [u8],
}

impl<'a> PushPromise<'a> {
    pub fn parse(head: &FrameHeader, payload: &'a [u8]) -> Result<PushPromise<'a>, FrameError> {
        // "If the Stream Identifier field specifies the value 0x00, a recipient MUST respond with a
        // connection error".
        if head.stream == 0 {
            return Err(FrameError::Stream("PUSH_PROMISE on stream 0"));
        }
        let (start, end) = unpad(head, payload)?;
        if end < start + 4 {
            return Err(FrameError::Length(
                "PUSH_PROMISE too short for its promised stream id",
            ));
        }
        Ok(PushPromise {
            promised_stream: be32(&payload[start..]) & 0x7fff_ffff,
            end_headers: head.has(flag::END_HEADERS),
            fragment: &payload[start + 4..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 6, 5, 4, 0, 0, 0, 1]);
        let f = PushPromise::parse(&h, &[0x80, 0, 0, 2, 0x82, 0x87]).unwrap();
        assert_eq!((f.promised_stream, f.fragment), (2, &[0x82, 0x87][..]));
        assert!(PushPromise::parse(&h, &[0, 0]).is_err());
    }
}
