use super::{flag, FrameError, FrameHeader};

/// DATA (§6.1). Its payload is never kept: only its length and flags matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data {
    pub end_stream: bool,
}

impl Data {
    pub fn parse(head: &FrameHeader) -> Result<Data, FrameError> {
        // "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient MUST
        // respond with a connection error."
        if head.stream == 0 {
            return Err(FrameError::Stream("DATA on stream 0"));
        }
        if head.has(flag::PADDED) && head.len == 0 {
            return Err(FrameError::Padding);
        }
        Ok(Data {
            end_stream: head.has(flag::END_STREAM),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 5, 0, 1, 0, 0, 0, 3]);
        assert_eq!(Data::parse(&h), Ok(Data { end_stream: true }));
        let h = FrameHeader::parse(&[0, 0, 5, 0, 0, 0, 0, 0, 0]);
        assert!(Data::parse(&h).is_err());
        let h = FrameHeader::parse(&[0, 0, 0, 0, 8, 0, 0, 0, 1]);
        assert_eq!(Data::parse(&h), Err(FrameError::Padding));
    }
}
