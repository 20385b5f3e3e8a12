use super::{flag, FrameError, FrameHeader};

/// CONTINUATION (§6.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Continuation<'a> {
    pub end_headers: bool,
    pub fragment: &'a [u8],
}

impl<'a> Continuation<'a> {
    pub fn parse(head: &FrameHeader, payload: &'a [u8]) -> Result<Continuation<'a>, FrameError> {
        // "If a CONTINUATION frame is received with a Stream Identifier field of 0x00, the recipient
        // MUST respond with a connection error".
        if head.stream == 0 {
            return Err(FrameError::Stream("CONTINUATION on stream 0"));
        }
        Ok(Continuation {
            end_headers: head.has(flag::END_HEADERS),
            fragment: payload,
        })
    }
}
