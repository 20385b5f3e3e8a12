//! One capture input read as a stream: the format is recognised by content (gzip, pcap in both byte
//! orders and both resolutions, pcapng), never by name, so `-` (standard input) works like a file.
//! Records are parsed by `pcap-parser` straight out of its buffer; a packet borrows that buffer until
//! the next call. A truncated or corrupt file ends with a warning that says where, after everything
//! before the damage has been delivered.

use super::{InputWarning, LinkType, Packet, Ts};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The reader's buffer: large reads keep system calls off the hot path.
const INITIAL_BUFFER: usize = 1 << 20;
/// Limit `max_record_size`: no pcap record or pcapng block is allowed to be larger than this. Real
/// snapshot lengths stop at 256 KiB; anything near this limit is corruption.
const MAX_RECORD: usize = 64 << 20;

#[derive(Debug)]
pub enum OpenError {
    Io(String, io::Error),
    NotACapture(String, String),
    Empty(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(name, e) => write!(f, "{name}: cannot read: {e}"),
            OpenError::NotACapture(name, why) => {
                write!(f, "{name}: not a pcap or pcapng capture ({why})")
            }
            OpenError::Empty(name) => write!(f, "{name}: empty input, not a capture"),
        }
    }
}

/// A `Read` that counts the raw (still compressed) bytes it delivered, for progress reporting.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Source = Box<dyn Read + Send>;

/// Per-interface facts from a pcapng Interface Description Block.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units_per_sec: u64,
    offset_secs: i64,
}

enum Format {
    Pcap { link: LinkType, nanos: bool },
    PcapNg { interfaces: Vec<Interface> },
}

/// Where a packet's bytes lie inside the parser's buffer; see [`CaptureReader::next_packet`].
struct Located {
    start: usize,
    len: usize,
    ts: Ts,
    link: LinkType,
    orig_len: u32,
}

enum Step {
    Packet(Located),
    Skip,
    End,
}

pub struct CaptureReader {
    name: String,
    inner: Box<dyn PcapReaderIterator + Send>,
    format: Format,
    /// Bytes of the previous record still to be consumed before the next is parsed.
    pending: usize,
    /// Last timestamp seen: Simple Packet Blocks carry none and inherit it.
    last_ts: Ts,
    buffer_size: usize,
    raw_bytes: Arc<AtomicU64>,
    total_size: Option<u64>,
    packets: u64,
    warnings: Vec<InputWarning>,
    /// TLS key log lines found in pcapng Decryption Secrets Blocks.
    secrets: Vec<u8>,
    finished: bool,
}

impl CaptureReader {
    /// Opens a file, or standard input for `-`.
    pub fn open(name: &str) -> Result<CaptureReader, OpenError> {
        let count = Arc::new(AtomicU64::new(0));
        let (raw, total_size): (Source, Option<u64>) = if name == "-" {
            (
                Box::new(Counting {
                    inner: io::stdin(),
                    count: count.clone(),
                }),
                None,
            )
        } else {
            let file = File::open(name).map_err(|e| OpenError::Io(name.to_string(), e))?;
            let size = file.metadata().ok().map(|m| m.len());
            (
                Box::new(Counting {
                    inner: file,
                    count: count.clone(),
                }),
                size,
            )
        };
        Self::from_source(name, raw, count, total_size)
    }

    /// Reads a capture held in memory (tests, fuzzing).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<CaptureReader, OpenError> {
        let count = Arc::new(AtomicU64::new(0));
        let size = bytes.len() as u64;
        let raw: Source = Box::new(Counting {
            inner: Cursor::new(bytes),
            count: count.clone(),
        });
        Self::from_source(name, raw, count, Some(size))
    }

    fn from_source(
        name: &str,
        raw: Source,
        raw_bytes: Arc<AtomicU64>,
        total_size: Option<u64>,
    ) -> Result<CaptureReader, OpenError> {
        let io_err = |e| OpenError::Io(name.to_string(), e);
        let (prefix, raw) = peek(raw, 2).map_err(io_err)?;
        let source: Source = if prefix.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(raw))
        } else {
            raw
        };
        let (head, source) = peek(source, 12).map_err(io_err)?;
        if head.is_empty() {
            return Err(OpenError::Empty(name.to_string()));
        }
        let magic: [u8; 4] = match head.get(..4).and_then(|m| m.try_into().ok()) {
            Some(m) => m,
            None => {
                return Err(OpenError::NotACapture(
                    name.to_string(),
                    "shorter than a capture header".into(),
                ))
            }
        };
        let not_capture = |why: String| OpenError::NotACapture(name.to_string(), why);
        // The first record (pcap file header, pcapng section header) must be whole in the parser's
        // first read, so exactly that much is read ahead: reading more would stall a pipe.
        let (format_is_ng, header_len) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d] => (false, 24),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let len_bytes: [u8; 4] = match head.get(4..8).and_then(|b| b.try_into().ok()) {
                    Some(b) => b,
                    None => return Err(not_capture("truncated pcapng section header".into())),
                };
                let little = head.get(8..12) == Some(&[0x4d, 0x3c, 0x2b, 0x1a][..]);
                let len = if little {
                    u32::from_le_bytes(len_bytes)
                } else {
                    u32::from_be_bytes(len_bytes)
                };
                if (len as usize) < 28 || len as usize > MAX_RECORD {
                    return Err(not_capture(format!(
                        "pcapng section header of impossible length {len}"
                    )));
                }
                (true, len as usize)
            }
            other => {
                return Err(not_capture(format!(
                    "starts with {:02x} {:02x} {:02x} {:02x}",
                    other[0], other[1], other[2], other[3]
                )))
            }
        };
        let (head, source) = peek(source, header_len).map_err(io_err)?;
        if head.len() < header_len {
            return Err(not_capture(format!(
                "file ends inside its {header_len}-byte header"
            )));
        }
        let parse_err = |e: PcapError<&'static [u8]>| not_capture(format!("{e:?}"));
        let (inner, format): (Box<dyn PcapReaderIterator + Send>, Format) = if format_is_ng {
            let r = PcapNGReader::new(INITIAL_BUFFER, source).map_err(parse_err)?;
            (
                Box::new(r),
                Format::PcapNg {
                    interfaces: Vec::new(),
                },
            )
        } else {
            let r = LegacyPcapReader::new(INITIAL_BUFFER, source).map_err(parse_err)?;
            // Link type and resolution arrive with the LegacyHeader block.
            (
                Box::new(r),
                Format::Pcap {
                    link: LinkType::Ethernet,
                    nanos: false,
                },
            )
        };
        Ok(CaptureReader {
            name: name.to_string(),
            inner,
            format,
            pending: 0,
            last_ts: Ts(0),
            buffer_size: INITIAL_BUFFER,
            raw_bytes,
            total_size,
            packets: 0,
            warnings: Vec::new(),
            secrets: Vec::new(),
            finished: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Raw input bytes consumed so far and the input's size when known (for a progress bar).
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.raw_bytes.load(Ordering::Relaxed), self.total_size)
    }

    pub fn warnings(&self) -> &[InputWarning] {
        &self.warnings
    }

    pub fn take_warnings(&mut self) -> Vec<InputWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// Key log lines from pcapng Decryption Secrets Blocks read since the last call.
    pub fn take_secrets(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.secrets)
    }

    /// Whether Decryption Secrets Blocks were read since the last `take_secrets`.
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The next packet, or `None` at the end of the input (or at damage, with a warning).
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        loop {
            match self.step() {
                Step::Packet(loc) => {
                    let data = self.inner.data().get(loc.start..loc.start + loc.len)?;
                    return Some(Packet {
                        ts: loc.ts,
                        link: loc.link,
                        data,
                        orig_len: loc.orig_len,
                    });
                }
                Step::Skip => continue,
                Step::End => return None,
            }
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(InputWarning {
            file: self.name.clone(),
            message,
        });
    }

    /// Parses one record. A packet is returned as a location in the buffer rather than a slice, so
    /// that the borrow of the parser ends here and the caller can take the slice afterwards.
    fn step(&mut self) -> Step {
        if self.finished {
            return Step::End;
        }
        if self.pending > 0 {
            self.inner.consume(self.pending);
            self.pending = 0;
        }
        let buffer_start = self.inner.data().as_ptr() as usize;
        let result = self.inner.next();
        match result {
            Ok((offset, block)) => {
                self.pending = offset;
                let located = match block {
                    PcapBlockOwned::LegacyHeader(hdr) => {
                        self.format = Format::Pcap {
                            link: LinkType::from_number(hdr.network.0),
                            nanos: hdr.is_nanosecond_precision(),
                        };
                        None
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let (link, nanos) = match self.format {
                            Format::Pcap { link, nanos } => (link, nanos),
                            Format::PcapNg { .. } => (LinkType::Other(-1), false),
                        };
                        let frac = if nanos {
                            b.ts_usec as i64
                        } else {
                            b.ts_usec as i64 * 1000
                        };
                        let ts = Ts::from_parts(b.ts_sec as i64, frac);
                        let len = b.data.len().min(b.caplen as usize);
                        Some((b.data.as_ptr() as usize, len, ts, link, b.origlen))
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        // A new section starts a new list of interfaces.
                        self.format = Format::PcapNg {
                            interfaces: Vec::new(),
                        };
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let units_per_sec = resolution(idb.if_tsresol);
                        if let Format::PcapNg { interfaces } = &mut self.format {
                            interfaces.push(Interface {
                                link: LinkType::from_number(idb.linktype.0),
                                units_per_sec,
                                offset_secs: idb.if_tsoffset,
                            });
                        }
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let iface = match &self.format {
                            Format::PcapNg { interfaces } => {
                                interfaces.get(epb.if_id as usize).copied()
                            }
                            Format::Pcap { .. } => None,
                        };
                        match iface {
                            Some(iface) => {
                                let raw = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                                let ts = pcapng_ts(raw, iface);
                                let data = epb.packet_data();
                                Some((
                                    data.as_ptr() as usize,
                                    data.len(),
                                    ts,
                                    iface.link,
                                    epb.origlen,
                                ))
                            }
                            None => {
                                let id = epb.if_id;
                                self.warn(format!("packet for undeclared interface {id} skipped"));
                                None
                            }
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let iface = match &self.format {
                            Format::PcapNg { interfaces } => interfaces.first().copied(),
                            Format::Pcap { .. } => None,
                        };
                        match iface {
                            Some(iface) => {
                                let data = spb.packet_data();
                                Some((
                                    data.as_ptr() as usize,
                                    data.len(),
                                    self.last_ts,
                                    iface.link,
                                    spb.origlen,
                                ))
                            }
                            None => None,
                        }
                    }
                    PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                        // 0x544c534b = "TLSK": an NSS key log.
                        if dsb.secrets_type.0 == 0x544c_534b {
                            let n = (dsb.secrets_len as usize).min(dsb.data.len());
                            self.secrets.extend_from_slice(&dsb.data[..n]);
                            self.secrets.push(b'\n');
                        }
                        None
                    }
                    // Statistics, name resolution, custom and unknown blocks carry no packets.
                    PcapBlockOwned::NG(_) => None,
                };
                match located {
                    Some((ptr, len, ts, link, orig_len)) => {
                        self.packets += 1;
                        self.last_ts = ts;
                        Step::Packet(Located {
                            start: ptr - buffer_start,
                            len,
                            ts,
                            link,
                            orig_len,
                        })
                    }
                    None => Step::Skip,
                }
            }
            Err(PcapError::Eof) => {
                self.finished = true;
                Step::End
            }
            Err(PcapError::Incomplete(_)) => {
                if self.inner.reader_exhausted() {
                    self.truncated();
                    return Step::End;
                }
                if let Err(e) = self.inner.refill() {
                    let e = format!("{e:?}");
                    self.read_failed(&e);
                    return Step::End;
                }
                Step::Skip
            }
            Err(PcapError::BufferTooSmall) => {
                if self.buffer_size >= MAX_RECORD {
                    self.corrupt(&format!(
                        "a record larger than the {} MiB limit max_record_size",
                        MAX_RECORD >> 20
                    ));
                    return Step::End;
                }
                self.buffer_size *= 2;
                self.inner.grow(self.buffer_size);
                if let Err(e) = self.inner.refill() {
                    let e = format!("{e:?}");
                    self.read_failed(&e);
                    return Step::End;
                }
                Step::Skip
            }
            Err(PcapError::UnexpectedEof) => {
                self.truncated();
                Step::End
            }
            Err(PcapError::ReadError) => {
                self.read_failed("read error");
                Step::End
            }
            Err(e) => {
                let e = format!("{e:?}");
                let e: String = e.chars().take(120).collect();
                self.corrupt(&e);
                Step::End
            }
        }
    }

    fn position(&self) -> u64 {
        self.inner.consumed() as u64
    }

    fn truncated(&mut self) {
        self.finished = true;
        let (pos, n) = (self.position(), self.packets);
        self.warn(format!(
            "capture is truncated: it ends inside a record at byte {pos}, after packet {n}"
        ));
    }

    fn corrupt(&mut self, why: &str) {
        self.finished = true;
        let (pos, n) = (self.position(), self.packets);
        self.warn(format!(
            "capture is corrupt at byte {pos}, after packet {n} ({why}); the rest is not read"
        ));
    }

    fn read_failed(&mut self, why: &str) {
        self.finished = true;
        let (pos, n) = (self.position(), self.packets);
        self.warn(format!(
            "input stopped at byte {pos}, after packet {n}: {why} (a gzip stream that is truncated or corrupt?)"
        ));
    }
}

/// Reads until `want` bytes are buffered or the input ends, and gives back a copy of those bytes
/// with the whole input, those bytes included, so that the first read returns exactly them.
fn peek(mut source: Source, want: usize) -> io::Result<(Vec<u8>, Source)> {
    let mut prefix = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match source.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    prefix.truncate(filled);
    let copy = prefix.clone();
    Ok((copy, Box::new(Cursor::new(prefix).chain(source))))
}

/// pcapng `if_tsresol`: a power of 10 or (high bit set) of 2, in units per second. An impossible
/// value falls back to the default (microseconds) rather than failing the file.
fn resolution(tsresol: u8) -> u64 {
    let exp = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp).unwrap_or(1_000_000)
    } else {
        1u64.checked_shl(exp)
            .filter(|_| exp < 64)
            .unwrap_or(1_000_000)
    }
}

fn pcapng_ts(raw: u64, iface: Interface) -> Ts {
    let units = iface.units_per_sec.max(1);
    let secs = (raw / units) as i64;
    let frac = (raw % units) as u128;
    let nanos = (frac * 1_000_000_000 / units as u128) as i64;
    Ts::from_parts(secs.saturating_add(iface.offset_secs), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_header(magic: [u8; 4], link: u32) -> Vec<u8> {
        let mut v = magic.to_vec();
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&link.to_le_bytes());
        v
    }

    fn record(sec: u32, frac: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [sec, frac, data.len() as u32, data.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_microsecond_and_nanosecond_pcap() {
        let mut us = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], 101);
        us.extend(record(10, 5, b"abc"));
        let mut r = CaptureReader::from_bytes("us", us).unwrap();
        let p = r.next_packet().unwrap();
        assert_eq!(
            (p.ts, p.link, p.data),
            (Ts(10_000_005_000), LinkType::Raw, &b"abc"[..])
        );
        assert!(r.next_packet().is_none());
        assert!(r.warnings().is_empty());

        let mut ns = pcap_header([0x4d, 0x3c, 0xb2, 0xa1], 1);
        ns.extend(record(10, 5, b"x"));
        let mut r = CaptureReader::from_bytes("ns", ns).unwrap();
        assert_eq!(r.next_packet().unwrap().ts, Ts(10_000_000_005));
    }

    #[test]
    fn truncated_record_is_a_warning_after_the_good_packets() {
        let mut v = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], 101);
        v.extend(record(1, 0, b"good"));
        let mut bad = record(2, 0, b"cut short");
        bad.truncate(20);
        v.extend(bad);
        let mut r = CaptureReader::from_bytes("t", v).unwrap();
        assert_eq!(r.next_packet().unwrap().data, b"good");
        assert!(r.next_packet().is_none());
        assert_eq!(r.warnings().len(), 1);
        assert!(
            r.warnings()[0].message.contains("truncated"),
            "{:?}",
            r.warnings()
        );
    }

    #[test]
    fn rejects_what_is_not_a_capture() {
        assert!(matches!(
            CaptureReader::from_bytes("x", b"GET / HTTP/1.1\r\n".to_vec()),
            Err(OpenError::NotACapture(..))
        ));
        assert!(matches!(
            CaptureReader::from_bytes("x", vec![]),
            Err(OpenError::Empty(_))
        ));
        assert!(matches!(
            CaptureReader::from_bytes("x", vec![0xd4, 0xc3]),
            Err(OpenError::NotACapture(..))
        ));
    }

    #[test]
    fn gzip_is_recognised_by_content() {
        use std::io::Write;
        let mut v = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], 101);
        v.extend(record(3, 0, b"zipped"));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&v).unwrap();
        let mut r = CaptureReader::from_bytes("capture.pcap", enc.finish().unwrap()).unwrap();
        assert_eq!(r.next_packet().unwrap().data, b"zipped");
    }

    /// A pcapng block: type, body, padded to 32 bits, with both length fields.
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (12 + body.len()) as u32;
        let mut v = kind.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&body);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    fn idb(link: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut b = link.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        if let Some(r) = tsresol {
            b.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0]); // if_tsresol, padded
            b.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        }
        block(1, &b)
    }

    fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        block(6, &b)
    }

    #[test]
    fn pcapng_interfaces_resolutions_spb_and_unknown_blocks() {
        let mut shb = 0x1a2b3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut v = block(0x0a0d0d0a, &shb);
        v.extend(idb(1, None)); // Ethernet, microseconds
        v.extend(idb(276, Some(9))); // SLL2, nanoseconds
        v.extend(epb(0, 5_000_001, b"eth")); // 5.000001 s
        v.extend(block(0x0bad_cafe, b"unknown block"));
        v.extend(epb(1, 7_000_000_002, b"sll2")); // 7.000000002 s
        let mut spb = 4u32.to_le_bytes().to_vec();
        spb.extend_from_slice(b"simple");
        v.extend(block(3, &spb));
        let mut r = CaptureReader::from_bytes("ng", v).unwrap();
        let p = r.next_packet().unwrap();
        assert_eq!(
            (p.ts, p.link, p.data),
            (Ts(5_000_001_000), LinkType::Ethernet, &b"eth"[..])
        );
        let p = r.next_packet().unwrap();
        assert_eq!(
            (p.ts, p.link, p.data),
            (Ts(7_000_000_002), LinkType::LinuxSll2, &b"sll2"[..])
        );
        // A Simple Packet Block: interface 0, original length 4, no timestamp of its own.
        let p = r.next_packet().unwrap();
        assert_eq!(
            (p.ts, p.link, p.data),
            (Ts(7_000_000_002), LinkType::Ethernet, &b"simp"[..])
        );
        assert!(r.next_packet().is_none());
        assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    }

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(resolution(6), 1_000_000);
        assert_eq!(resolution(9), 1_000_000_000);
        assert_eq!(resolution(0x80 | 10), 1024);
        assert_eq!(resolution(0x80 | 127), 1_000_000);
        assert_eq!(resolution(99), 1_000_000);
        let iface = Interface {
            link: LinkType::Ethernet,
            units_per_sec: 1024,
            offset_secs: 0,
        };
        assert_eq!(pcapng_ts(2048 + 512, iface), Ts(2_500_000_000));
    }
}
