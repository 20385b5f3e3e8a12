//! One capture input read as a stream: the format is recognised by content (gzip, pcap in both byte
//! orders and both resolutions, pcapng), never by name, so `-` (standard input) works like a file.
//! Records are parsed where they lie in the reader's buffer ([`super::window`]): classic pcap
//! records here, by hand (a whole one on its own short path, it is most of the work), headers and
//! pcapng blocks by `pcap-parser`; a packet borrows that buffer until the next call. gzip
//! ([`super::gunzip`]) is decompressed on another thread ([`super::ahead`]) while records are
//! parsed on this one. A truncated or corrupt file ends with a warning that says where, after
//! everything before the damage has been delivered.

use super::ahead::{self, Ahead};
use super::gunzip::Gunzip;
use super::window::{RawInput, Source, Window};
use super::{InputWarning, LinkType, Packet, Ts};
use pcap_parser::nom;
use pcap_parser::pcap::parse_pcap_header;
use pcap_parser::pcapng::{parse_block_be, parse_block_le, Block};
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::PcapError;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes asked of each `read` of an uncompressed input: large reads keep system calls off the hot
/// path (a few hundred for a 300 MB file).
const READ_SIZE: usize = 1 << 20;
/// How gzip is read ahead: buffers of 1 MiB of decompressed bytes, 4 of them waiting at most. The
/// headroom holds the start of a record cut in two by the end of a buffer: records are at most a snapshot
/// length (256 KiB for tcpdump) and a header; longer ones (pcapng blocks with large options) are
/// still read whole, with a copy.
const GZIP_AHEAD: ahead::Sizes = ahead::Sizes {
    headroom: 256 << 10,
    chunk: 1 << 20,
    queue: 4,
};
/// The buffer sizes in use: these constants, or small ones that put many records across the ends
/// of buffers (tests).
#[derive(Clone, Copy)]
struct Buffers {
    read: usize,
    gzip: ahead::Sizes,
}

impl Buffers {
    const DEFAULT: Buffers = Buffers {
        read: READ_SIZE,
        gzip: GZIP_AHEAD,
    };
}

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

/// Per-interface facts from a pcapng Interface Description Block.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units_per_sec: u64,
    offset_secs: i64,
}

enum Format {
    Pcap {
        link: LinkType,
        nanos: bool,
        /// Records in the byte order of the file header.
        big_endian: bool,
    },
    PcapNg {
        interfaces: Vec<Interface>,
        /// Byte order of the current section.
        big_endian: bool,
    },
}

/// A packet's place in the window's data and what the record says about it.
#[derive(Clone, Copy)]
struct Located {
    start: usize,
    len: usize,
    ts: Ts,
    link: LinkType,
    orig_len: u32,
}

/// What one record was, as far as this reader cares.
enum Record {
    Packet(Located),
    Other,
    UndeclaredInterface(u32),
}

enum Parsed {
    /// A whole record, and its length in bytes.
    Record(Record, usize),
    /// At least this many more bytes are needed to parse the record.
    NeedMore(usize),
    Invalid(String),
}

enum Step {
    Packet(Located),
    Skip,
    End,
}

pub struct CaptureReader {
    name: String,
    window: Window,
    format: Format,
    /// Bytes of the current record, consumed before the next one is parsed.
    pending: usize,
    /// The packet last found, still in the window: see [`CaptureReader::advance`].
    current: Option<Located>,
    /// Last timestamp seen: Simple Packet Blocks carry none and inherit it.
    last_ts: Ts,
    /// Read through gzip: what looks like a corrupt capture may be a damaged stream.
    gzip: bool,
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
        let (raw, total_size): (Source, Option<u64>) = if name == "-" {
            (Box::new(io::stdin()), None)
        } else {
            let file = File::open(name).map_err(|e| OpenError::Io(name.to_string(), e))?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size)
        };
        Self::from_source(name, raw, total_size, Buffers::DEFAULT)
    }

    /// Reads a capture held in memory (tests, fuzzing).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<CaptureReader, OpenError> {
        let size = bytes.len() as u64;
        Self::from_source(
            name,
            Box::new(Cursor::new(bytes)),
            Some(size),
            Buffers::DEFAULT,
        )
    }

    fn from_source(
        name: &str,
        raw: Source,
        total_size: Option<u64>,
        buffers: Buffers,
    ) -> Result<CaptureReader, OpenError> {
        let io_err = |e| OpenError::Io(name.to_string(), e);
        let raw_bytes = Arc::new(AtomicU64::new(0));
        let mut raw = RawInput::new(raw, raw_bytes.clone());
        let gzip = raw.peek(2).map_err(io_err)?.starts_with(&[0x1f, 0x8b]);
        let mut window = if gzip {
            let bounded = total_size.is_some();
            let ahead = Ahead::spawn(Gunzip::new(raw), buffers.gzip, bounded).map_err(io_err)?;
            Window::ahead(ahead)
        } else {
            // A small input gets a buffer its size, not a megabyte (fuzzing reads many).
            let read_size = total_size.map_or(buffers.read, |s| {
                (s as usize).saturating_add(1).max(4096).min(buffers.read)
            });
            Window::reading(raw, read_size)
        };
        let head = fill_to(&mut window, 12).map_err(io_err)?;
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
        let head = fill_to(&mut window, header_len).map_err(io_err)?;
        if head.len() < header_len {
            return Err(not_capture(format!(
                "file ends inside its {header_len}-byte header"
            )));
        }
        let format = if format_is_ng {
            // The section header block is read as the first record, like any later one.
            if let Err(e) = pcap_parser::pcapng::parse_sectionheaderblock(head) {
                return Err(not_capture(nom_error(e)));
            }
            Format::PcapNg {
                interfaces: Vec::new(),
                big_endian: false,
            }
        } else {
            let header = match parse_pcap_header(head) {
                Ok((_, h)) => h,
                Err(e) => return Err(not_capture(nom_error(e))),
            };
            let format = Format::Pcap {
                link: LinkType::from_number(header.network.0),
                nanos: header.is_nanosecond_precision(),
                big_endian: header.is_bigendian(),
            };
            window.consume(header_len);
            format
        };
        Ok(CaptureReader {
            name: name.to_string(),
            window,
            format,
            pending: 0,
            current: None,
            last_ts: Ts(0),
            gzip,
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

    /// Key log lines from pcapng Decryption Secrets Blocks read since the last `take_secrets`.
    pub fn secrets(&self) -> &[u8] {
        &self.secrets
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
    #[inline]
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.advance() {
            self.current()
        } else {
            None
        }
    }

    /// Moves to the next packet, which [`current`](Self::current) then gives until the next call;
    /// `false` at the end of the input. The packet stays where it was read, so several readers
    /// can each hold one while they are compared ([`super::Merged`]).
    #[inline]
    pub(super) fn advance(&mut self) -> bool {
        if let Some(loc) = self.whole_pcap_record() {
            self.current = Some(loc);
            return true;
        }
        self.advance_slowly()
    }

    /// [`advance`](Self::advance) record by record, reading more as needed.
    #[inline(never)]
    fn advance_slowly(&mut self) -> bool {
        self.current = None;
        loop {
            match self.step() {
                Step::Packet(loc) => {
                    self.current = Some(loc);
                    return true;
                }
                Step::Skip => continue,
                Step::End => return false,
            }
        }
    }

    /// The common case on its own: the next record of a classic pcap, already whole in the
    /// window. Anything else (pcapng, a record to read more of, the end, damage) is left to
    /// [`step`](Self::step), which parses the same record again.
    #[inline]
    fn whole_pcap_record(&mut self) -> Option<Located> {
        let Format::Pcap {
            link,
            nanos,
            big_endian,
        } = self.format
        else {
            return None;
        };
        if self.finished {
            return None;
        }
        self.window.consume(std::mem::take(&mut self.pending));
        let Parsed::Record(Record::Packet(loc), size) =
            pcap_record(self.window.data(), link, nanos, big_endian)
        else {
            return None;
        };
        self.pending = size;
        self.packets += 1;
        self.last_ts = loc.ts;
        Some(loc)
    }

    /// The packet the last [`advance`](Self::advance) moved to.
    #[inline]
    pub(super) fn current(&self) -> Option<Packet<'_>> {
        let loc = self.current?;
        let data = self.window.data().get(loc.start..)?.get(..loc.len)?;
        Some(Packet {
            ts: loc.ts,
            link: loc.link,
            data,
            orig_len: loc.orig_len,
        })
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(InputWarning {
            file: self.name.clone(),
            message,
        });
    }

    /// Parses one record, reading more of the input first when the record is not whole yet.
    fn step(&mut self) -> Step {
        if self.finished {
            return Step::End;
        }
        if self.pending > 0 {
            self.window.consume(self.pending);
            self.pending = 0;
        }
        let data = self.window.data();
        if data.is_empty() && self.window.exhausted() {
            self.finished = true;
            return Step::End;
        }
        match parse(&mut self.format, self.last_ts, &mut self.secrets, data) {
            Parsed::Record(record, size) => {
                self.pending = size;
                match record {
                    Record::Packet(loc) => {
                        self.packets += 1;
                        self.last_ts = loc.ts;
                        Step::Packet(loc)
                    }
                    Record::Other => Step::Skip,
                    Record::UndeclaredInterface(id) => {
                        self.warn(format!("packet for undeclared interface {id} skipped"));
                        Step::Skip
                    }
                }
            }
            Parsed::NeedMore(need) => {
                if self.window.exhausted() {
                    self.truncated();
                    return Step::End;
                }
                let have = self.window.data().len();
                if have.saturating_add(need) > MAX_RECORD {
                    self.corrupt(&format!(
                        "a record larger than the {} MiB limit max_record_size",
                        MAX_RECORD >> 20
                    ));
                    return Step::End;
                }
                match self.window.refill(need) {
                    Ok(_) => Step::Skip,
                    Err(e) => {
                        self.read_failed(&e);
                        Step::End
                    }
                }
            }
            Parsed::Invalid(e) => {
                self.corrupt(&e);
                Step::End
            }
        }
    }

    fn position(&self) -> u64 {
        self.window.position()
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
        // Out of a damaged gzip stream comes garbage before the decoder notices: if the stream
        // fails soon after, that is the damage to report. Not on a pipe, which may stay open.
        if self.gzip && self.total_size.is_some() {
            if let Some(e) = self.window.failure_ahead(MAX_RECORD) {
                self.read_failed(&e);
                return;
            }
        }
        let (pos, n) = (self.position(), self.packets);
        self.warn(format!(
            "capture is corrupt at byte {pos}, after packet {n} ({why}); the rest is not read"
        ));
    }

    fn read_failed(&mut self, e: &io::Error) {
        self.finished = true;
        let (pos, n) = (self.position(), self.packets);
        self.warn(format!(
            "input stopped at byte {pos}, after packet {n}: {e}"
        ));
    }
}

/// Reads until the window holds `n` bytes or the input ends; gives what it holds.
fn fill_to(window: &mut Window, n: usize) -> io::Result<&[u8]> {
    while window.data().len() < n && window.refill(n - window.data().len())? {}
    Ok(window.data())
}

/// The `Debug` text of a parse error, cut short: it may quote the input.
fn nom_error<I: fmt::Debug>(e: nom::Err<PcapError<I>>) -> String {
    let e = match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => format!("{e:?}"),
        nom::Err::Incomplete(_) => "incomplete".to_string(),
    };
    e.chars().take(120).collect()
}

/// Parses the record at the start of `data`. Packets are given as places in `data`, so that the
/// caller's borrow of the window ends here.
fn parse(format: &mut Format, last_ts: Ts, secrets: &mut Vec<u8>, data: &[u8]) -> Parsed {
    // pcap-parser gives packets as slices of `data`; anything else would end the input (`current`).
    let at = |slice: &[u8]| {
        (slice.as_ptr() as usize)
            .checked_sub(data.as_ptr() as usize)
            .unwrap_or(usize::MAX)
    };
    let (interfaces, big_endian) = match format {
        &mut Format::Pcap {
            link,
            nanos,
            big_endian,
        } => return pcap_record(data, link, nanos, big_endian),
        Format::PcapNg {
            interfaces,
            big_endian,
        } => (interfaces, big_endian),
    };
    let block = if *big_endian {
        parse_block_be(data)
    } else {
        parse_block_le(data)
    };
    let result = block.map(|(rest, block)| {
        (
            rest,
            ng_record(block, interfaces, big_endian, last_ts, secrets, at),
        )
    });
    match result {
        Ok((rest, record)) => Parsed::Record(record, data.len() - rest.len()),
        Err(nom::Err::Incomplete(needed)) => Parsed::NeedMore(match needed {
            nom::Needed::Size(n) => n.get(),
            nom::Needed::Unknown => 1,
        }),
        Err(e) => Parsed::Invalid(nom_error(e)),
    }
}

/// A classic pcap record at the start of `data`: a 16-byte header (seconds, fraction of a second,
/// captured length, original length, in the file's byte order) and the captured bytes. Read here
/// rather than by pcap-parser's frame parser, which is reached through a function pointer and
/// gives its result through nom's types: that was about a third of the reading thread's
/// instructions per packet (callgrind). What it needs when the record is not whole is what
/// pcap-parser says (`Needed` of its streaming `take`), so the limit and the warnings are the same.
#[inline]
fn pcap_record(data: &[u8], link: LinkType, nanos: bool, big_endian: bool) -> Parsed {
    let Some(head) = data.first_chunk::<16>() else {
        return Parsed::NeedMore(16 - data.len());
    };
    let field = |i: usize| {
        let b = [head[i], head[i + 1], head[i + 2], head[i + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let caplen = field(8) as usize;
    let have = data.len() - 16;
    if have < caplen {
        return Parsed::NeedMore(caplen - have);
    }
    let frac = if nanos {
        field(4) as i64
    } else {
        field(4) as i64 * 1000
    };
    Parsed::Record(
        Record::Packet(Located {
            start: 16,
            len: caplen,
            ts: Ts::from_parts(field(0) as i64, frac),
            link,
            orig_len: field(12),
        }),
        16 + caplen,
    )
}

fn ng_record(
    block: Block<'_>,
    interfaces: &mut Vec<Interface>,
    big_endian: &mut bool,
    last_ts: Ts,
    secrets: &mut Vec<u8>,
    at: impl Fn(&[u8]) -> usize,
) -> Record {
    match block {
        Block::SectionHeader(shb) => {
            // A new section starts a new list of interfaces, and may change the byte order.
            *big_endian = shb.big_endian();
            interfaces.clear();
            Record::Other
        }
        Block::InterfaceDescription(idb) => {
            interfaces.push(Interface {
                link: LinkType::from_number(idb.linktype.0),
                units_per_sec: resolution(idb.if_tsresol),
                offset_secs: idb.if_tsoffset,
            });
            Record::Other
        }
        Block::EnhancedPacket(epb) => match interfaces.get(epb.if_id as usize) {
            Some(&iface) => {
                let raw = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                let data = epb.packet_data();
                Record::Packet(Located {
                    start: at(data),
                    len: data.len(),
                    ts: pcapng_ts(raw, iface),
                    link: iface.link,
                    orig_len: epb.origlen,
                })
            }
            None => Record::UndeclaredInterface(epb.if_id),
        },
        Block::SimplePacket(spb) => match interfaces.first() {
            Some(iface) => {
                let data = spb.packet_data();
                Record::Packet(Located {
                    start: at(data),
                    len: data.len(),
                    ts: last_ts,
                    link: iface.link,
                    orig_len: spb.origlen,
                })
            }
            None => Record::Other,
        },
        Block::DecryptionSecrets(dsb) => {
            // 0x544c534b = "TLSK": an NSS key log.
            if dsb.secrets_type.0 == 0x544c_534b {
                let n = (dsb.secrets_len as usize).min(dsb.data.len());
                secrets.extend_from_slice(&dsb.data[..n]);
                secrets.push(b'\n');
            }
            Record::Other
        }
        // Statistics, name resolution, custom and unknown blocks carry no packets.
        _ => Record::Other,
    }
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
    use std::io::Read;

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

    /// A pcap of packets of many sizes, one of them longer than the small headroom below.
    fn varied_pcap() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut v = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], 101);
        let mut packets = Vec::new();
        for i in 0..300u32 {
            let len = if i == 150 {
                5000
            } else {
                (i * 37 % 700) as usize
            };
            let p: Vec<u8> = (0..len).map(|b| (b as u32 ^ i) as u8).collect();
            v.extend(record(i, 0, &p));
            packets.push(p);
        }
        (v, packets)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    const SMALL: Buffers = Buffers {
        read: 100,
        gzip: ahead::Sizes {
            headroom: 1024,
            chunk: 300,
            queue: 2,
        },
    };

    fn read_all(r: &mut CaptureReader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            out.push(p.data.to_vec());
        }
        out
    }

    #[test]
    fn records_across_the_ends_of_buffers_read_whole() {
        let (pcap, packets) = varied_pcap();
        for bytes in [pcap.clone(), gzip(&pcap)] {
            let raw: Source = Box::new(Cursor::new(bytes));
            let mut r = CaptureReader::from_source("small", raw, None, SMALL).unwrap();
            assert_eq!(read_all(&mut r), packets);
            assert!(r.warnings().is_empty(), "{:?}", r.warnings());
            assert_eq!(r.position(), pcap.len() as u64);
        }
    }

    #[test]
    fn truncated_gzip_keeps_what_came_before_and_says_where_it_stopped() {
        let (pcap, packets) = varied_pcap();
        let gz = gzip(&pcap);
        let cut = gz[..gz.len() / 2].to_vec();
        let raw: Source = Box::new(Cursor::new(cut));
        let mut r = CaptureReader::from_source("cut.gz", raw, None, SMALL).unwrap();
        let got = read_all(&mut r);
        assert!(
            !got.is_empty() && got.len() < packets.len(),
            "{}",
            got.len()
        );
        assert_eq!(got[..], packets[..got.len()]);
        assert_eq!(r.warnings().len(), 1);
        let w = &r.warnings()[0].message;
        assert!(
            w.starts_with(&format!(
                "input stopped at byte {}, after packet {}: ",
                r.position(),
                got.len()
            )),
            "{w}"
        );
        assert!(w.contains("gzip"), "{w}");
    }

    #[test]
    fn garbage_from_a_damaged_gzip_stream_is_reported_as_gzip_damage() {
        let (pcap, packets) = varied_pcap();
        let mut gz = gzip(&pcap);
        let mid = gz.len() / 2;
        for b in &mut gz[mid..mid + 16] {
            *b ^= 0x55;
        }
        let size = Some(gz.len() as u64);
        let raw: Source = Box::new(Cursor::new(gz));
        let mut r = CaptureReader::from_source("corrupt.gz", raw, size, SMALL).unwrap();
        let got = read_all(&mut r);
        // Packets right before the damage may be garbage: only the warning is checked.
        assert!(!got.is_empty() && got.len() < packets.len());
        assert_eq!(r.warnings().len(), 1);
        let w = &r.warnings()[0].message;
        assert!(w.starts_with("input stopped at byte"), "{w}");
        assert!(w.contains("gzip"), "{w}");
    }

    /// Standard input fed by a live capture: bytes come when they come, and the pipe stays open.
    struct Pipe(std::sync::mpsc::Receiver<Vec<u8>>, Vec<u8>);

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(b) => self.1 = b,
                    Err(_) => return Ok(0),
                }
            }
            let n = self.1.len().min(buf.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_slow_pipe_gives_each_packet_as_it_arrives() {
        use std::io::Write;
        use std::sync::mpsc;
        use std::time::Duration;
        for gzipped in [false, true] {
            let (to_pipe, pipe) = mpsc::channel::<Vec<u8>>();
            let (to_test, packets) = mpsc::channel::<Vec<u8>>();
            let reader = std::thread::spawn(move || {
                let raw: Source = Box::new(Pipe(pipe, Vec::new()));
                let mut r = CaptureReader::from_source("-", raw, None, Buffers::DEFAULT).unwrap();
                while let Some(p) = r.next_packet() {
                    let _ = to_test.send(p.data.to_vec());
                }
                r.take_warnings()
            });
            // Each packet is written (and, gzipped, flushed) and must come out before the next.
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let mut send = |bytes: &[u8]| {
                if gzipped {
                    enc.write_all(bytes).unwrap();
                    enc.flush().unwrap();
                    to_pipe.send(std::mem::take(enc.get_mut())).unwrap();
                } else {
                    to_pipe.send(bytes.to_vec()).unwrap();
                }
            };
            send(&pcap_header([0xd4, 0xc3, 0xb2, 0xa1], 101));
            for i in 0..3u8 {
                send(&record(i as u32, 0, &[i; 10]));
                let got = packets.recv_timeout(Duration::from_secs(20));
                assert_eq!(got, Ok(vec![i; 10]), "gzip {gzipped}, packet {i}");
            }
            if gzipped {
                to_pipe.send(enc.finish().unwrap()).unwrap();
            }
            drop(to_pipe);
            assert!(reader.join().unwrap().is_empty());
        }
    }

    /// The hand-written record reader says what pcap-parser's frame parsers say, on records whole,
    /// cut anywhere, and with absurd lengths, in both byte orders.
    #[test]
    fn pcap_records_read_as_pcap_parser_reads_them() {
        use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be};
        let mut next = crate::testing::xorshift(0x7063_6170);
        for _ in 0..20_000 {
            let big_endian = next() % 2 == 0;
            let caplen = match next() % 4 {
                0 => next() as u32,
                _ => (next() % 80) as u32,
            };
            let mut rec = Vec::new();
            for x in [next() as u32, next() as u32, caplen, next() as u32] {
                rec.extend(if big_endian {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                });
            }
            rec.extend((0..next() % 100).map(|_| next() as u8));
            rec.truncate(next() as usize % (rec.len() + 1));
            let nanos = next() % 2 == 0;
            let theirs = if big_endian {
                parse_pcap_frame_be(&rec)
            } else {
                parse_pcap_frame(&rec)
            };
            let ours = pcap_record(&rec, LinkType::Ethernet, nanos, big_endian);
            match (theirs, ours) {
                (Ok((rest, b)), Parsed::Record(Record::Packet(loc), size)) => {
                    let frac = if nanos {
                        b.ts_usec as i64
                    } else {
                        b.ts_usec as i64 * 1000
                    };
                    assert_eq!(size, rec.len() - rest.len());
                    assert_eq!(&rec[loc.start..][..loc.len], b.data);
                    assert_eq!(loc.ts, Ts::from_parts(b.ts_sec as i64, frac));
                    assert_eq!(loc.orig_len, b.origlen);
                }
                (Err(nom::Err::Incomplete(nom::Needed::Size(n))), Parsed::NeedMore(m)) => {
                    assert_eq!(n.get(), m)
                }
                (theirs, _) => panic!("pcap-parser: {theirs:?}, {rec:02x?}"),
            }
        }
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
