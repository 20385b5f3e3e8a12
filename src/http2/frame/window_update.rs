use super::{be32, FrameError, FrameHeader};

/// WINDOW_UPDATE (§6.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    pub increment: u32,
}

impl WindowUpdate {
    pub fn parse(head: &FrameHeader, payload: &[u8]) -> Result<WindowUpdate, FrameError> {
        // "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a connection
        // error of type FRAME_SIZE_ERROR."
        if head.len != 4 || payload.len() < 4 {
            return Err(FrameError::Length("WINDOW_UPDATE length is not 4"));
        }
        let increment = be32(payload) & 0x7fff_ffff;
        // "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window
        // increment of 0 as a stream error".
        if increment == 0 {
            return Err(FrameError::Length("WINDOW_UPDATE increment of 0"));
        }
        Ok(WindowUpdate { increment })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let h = FrameHeader::parse(&[0, 0, 4, 8, 0, 0, 0, 0, 0]);
        assert_eq!(
            WindowUpdate::parse(&h, &[0, 0, 0x10, 0]),
            Ok(WindowUpdate { increment: 4096 })
        );
        assert!(WindowUpdate::parse(&h, &[0, 0, 0, 0]).is_err());
    }
}
