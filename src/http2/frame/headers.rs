use super::{flag, unpad, FrameError, FrameHeader};

/// HEADERS (§6.2): the header block fragment, with padding and priority fields removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    pub end_stream: bool,
    pub end_headers: bool,
    pub fragment: &'a [u8],
}

impl<'a> Headers<'a> {
    pub fn parse(head: &FrameHeader, payload: &'a [u8]) -> Result<Headers<'a>, FrameError> {
        // "If a HEADERS frame is received whose Stream Identifier field is 0x00, the recipient MUST
        // respond with a connection error."
        if head.stream == 0 {
            return Err(FrameError::Stream("HEADERS on stream 0"));
        }
        let (mut start, end) = unpad(head, payload)?;
        // PRIORITY flag: "Exclusive, Stream Dependency (31), Weight (8)" precede the fragment.
        if head.has(flag::PRIORITY) {
            start += 5;
            if start > end {
                return Err(FrameError::Length(
                    "HEADERS too short for its priority fields",
                ));
            }
        }
        Ok(Headers {
            end_stream: head.has(flag::END_STREAM),
            end_headers: head.has(flag::END_HEADERS),
            fragment: &payload[start..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_with_priority() {
        let h = FrameHeader::parse(&[
            0,
            0,
            10,
            1,
            flag::PADDED | flag::PRIORITY | flag::END_HEADERS,
            0,
            0,
            0,
            1,
        ]);
        let payload = [2, 0, 0, 0, 0, 16, 0x82, 0x86, 0, 0];
        let f = Headers::parse(&h, &payload).unwrap();
        assert_eq!(f.fragment, &[0x82, 0x86]);
        assert!(f.end_headers && !f.end_stream);
        assert!(Headers::parse(&h, &[0, 0, 0]).is_err());
        let h0 = FrameHeader::parse(&[0, 0, 1, 1, 4, 0, 0, 0, 0]);
        assert!(Headers::parse(&h0, &[0x82]).is_err());
    }
}
