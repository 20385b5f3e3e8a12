use super::{be32, flag, FrameError, FrameHeader};

pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const MAX_FRAME_SIZE: u16 = 0x5;

/// SETTINGS (§6.5): the parameters, in order (they identify implementations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub ack: bool,
    pub params: Vec<(u16, u32)>,
}

/// Limit `max_settings_params`: parameters kept from one SETTINGS frame.
const MAX_PARAMS: usize = 64;

impl Settings {
    pub fn parse(head: &FrameHeader, payload: &[u8]) -> Result<Settings, FrameError> {
        // "If an endpoint receives a SETTINGS frame whose Stream Identifier field is anything other
        // than 0x00, the endpoint MUST respond with a connection error".
        if head.stream != 0 {
            return Err(FrameError::Stream("SETTINGS on a stream"));
        }
        let ack = head.has(flag::ACK);
        // "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than 0
        // MUST be treated as a connection error".
        if ack && head.len != 0 {
            return Err(FrameError::Length("SETTINGS ACK with a payload"));
        }
        // "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a
        // connection error of type FRAME_SIZE_ERROR."
        if head.len % 6 != 0 {
            return Err(FrameError::Length("SETTINGS length is not a multiple of 6"));
        }
        let params = payload
            .chunks_exact(6)
            .take(MAX_PARAMS)
            .map(|c| (u16::from_be_bytes([c[0], c[1]]), be32(&c[2..])))
            .collect();
        Ok(Settings { ack, params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 12, 4, 0, 0, 0, 0, 0]);
        let p = [0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff];
        assert_eq!(
            Settings::parse(&h, &p).unwrap().params,
            vec![(3, 100), (4, 65535)]
        );
        let ack = FrameHeader::parse(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
        assert!(Settings::parse(&ack, &[]).unwrap().ack);
        let bad = FrameHeader::parse(&[0, 0, 6, 4, 1, 0, 0, 0, 0]);
        assert!(Settings::parse(&bad, &p[..6]).is_err());
        let odd = FrameHeader::parse(&[0, 0, 5, 4, 0, 0, 0, 0, 0]);
        assert!(Settings::parse(&odd, &p[..5]).is_err());
    }
}
