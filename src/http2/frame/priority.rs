use super::{FrameError, FrameHeader};

/// PRIORITY (§6.3). Deprecated by RFC 9113 but still sent (nghttp2, browsers); only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority;

impl Priority {
    pub fn parse(head: &FrameHeader) -> Result<Priority, FrameError> {
        // "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error".
        if head.len != 5 {
            return Err(FrameError::Length("PRIORITY length is not 5"));
        }
        if head.stream == 0 {
            return Err(FrameError::Stream("PRIORITY on stream 0"));
        }
        Ok(Priority)
    }
}
