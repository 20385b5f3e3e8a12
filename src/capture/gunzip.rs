//! gzip (RFC 1952) as a `Read`, one member after another as `gzip -d` reads them, for the
//! read-ahead thread ([`super::ahead`]). zlib's own gzip mode parses the headers and checks each
//! member's CRC-32 and length. Unlike flate2's `MultiGzDecoder`, which drops what a read had
//! decoded when that read meets damage, the bytes decoded before the damage are given first and
//! the error on the next read: a damaged capture is analysed up to the damage, not up to the last
//! read before it.

use super::ahead::Fill;
use super::window::RawInput;
use flate2::{Decompress, FlushDecompress, Status};
use std::io::{self, Read};

/// Compressed bytes read at a time.
const INPUT: usize = 256 << 10;
/// zlib's largest window (32 KiB), which gzip writers use.
const WINDOW_BITS: u8 = 15;

pub(super) struct Gunzip {
    input: RawInput,
    buf: Vec<u8>,
    /// `buf[start..end]`: read, not inflated yet.
    start: usize,
    end: usize,
    eof: bool,
    /// The member being inflated; `None` between members.
    member: Option<Decompress>,
    /// Damage met by a read that had decoded bytes before it: the next read gives it.
    failed: Option<io::Error>,
}

impl Gunzip {
    pub(super) fn new(input: RawInput) -> Gunzip {
        Gunzip {
            input,
            buf: vec![0; INPUT],
            start: 0,
            end: 0,
            eof: false,
            member: None,
            failed: None,
        }
    }
}

impl Fill for Gunzip {
    fn waiting(&self) -> bool {
        self.input.short()
    }
}

impl Read for Gunzip {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = loop {
                    match self.input.read(&mut self.buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.eof = self.end == 0;
            }
            let member = match &mut self.member {
                Some(m) => m,
                // The input ends where a member ends: the clean end.
                None if self.start == self.end => return Ok(0),
                None => self.member.insert(Decompress::new_gzip(WINDOW_BITS)),
            };
            let (in_before, out_before) = (member.total_in(), member.total_out());
            let flush = if self.eof {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let result = member.decompress(&self.buf[self.start..self.end], out, flush);
            let consumed = (member.total_in() - in_before) as usize;
            let produced = (member.total_out() - out_before) as usize;
            self.start = (self.start + consumed).min(self.end);
            let error = match result {
                Ok(Status::StreamEnd) => {
                    self.member = None;
                    None
                }
                Ok(_) if consumed == 0 && produced == 0 && self.eof => Some(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gzip stream is truncated",
                )),
                Ok(_) if consumed == 0 && produced == 0 && self.start < self.end => {
                    // zlib always moves when it has input and room for output; never spin.
                    Some(io::Error::other("the gzip decoder is stuck"))
                }
                Ok(_) => None,
                Err(e) => Some(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the gzip stream is corrupt ({e})"),
                )),
            };
            match error {
                Some(e) if produced > 0 => {
                    self.failed = Some(e);
                    return Ok(produced);
                }
                Some(e) => return Err(e),
                None if produced > 0 => return Ok(produced),
                None => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    fn gunzip(bytes: Vec<u8>) -> Gunzip {
        let raw = RawInput::new(Box::new(Cursor::new(bytes)), Arc::new(AtomicU64::new(0)));
        Gunzip::new(raw)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn members_are_read_one_after_another() {
        let (a, b) = (text(50_000), text(7));
        let mut both = gzip(&a);
        both.extend(gzip(&b));
        let mut out = Vec::new();
        gunzip(both).read_to_end(&mut out).unwrap();
        assert_eq!(out, [a, b].concat());
    }

    #[test]
    fn truncated_stream_gives_its_bytes_then_the_error() {
        let plain = text(200_000);
        let gz = gzip(&plain);
        let mut g = gunzip(gz[..gz.len() / 2].to_vec());
        let mut out = Vec::new();
        let e = g.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert!(out.len() > plain.len() / 4, "{}", out.len());
        assert_eq!(out[..], plain[..out.len()]);
    }

    #[test]
    fn damage_after_some_bytes_gives_those_bytes_first() {
        let plain = text(200_000);
        let mut gz = gzip(&plain);
        // A stored length or a code that cannot be: zlib stops there.
        let at = gz.len() / 2;
        for b in &mut gz[at..at + 64] {
            *b = 0xff;
        }
        let mut g = gunzip(gz);
        let mut out = vec![0; plain.len()];
        let mut got = 0;
        let e = loop {
            match g.read(&mut out[got..]) {
                Ok(0) => panic!("no error after {got} bytes"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(got > 0);
        assert!(e.to_string().contains("gzip"), "{e}");
    }

    #[test]
    fn not_gzip_is_an_error_not_an_end() {
        let mut out = Vec::new();
        assert!(gunzip(b"\x1f\x8bnot really".to_vec())
            .read_to_end(&mut out)
            .is_err());
        let mut g = gzip(b"ok");
        g.extend_from_slice(b"trailing garbage");
        assert!(gunzip(g).read_to_end(&mut out).is_err());
    }
}
