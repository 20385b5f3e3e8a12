//! Per-direction TCP reassembly: segments in, an in-order byte stream out, with holes reported as
//! gaps rather than papered over.
//!
//! Overlap policy (named, as reassemblers must choose one): **first copy wins**. Bytes already
//! delivered or already buffered are never replaced by a later copy; a retransmission that carries
//! new bytes past the old end contributes only those. This is what Wireshark's default reassembly
//! and most endpoints do, and it makes the output independent of duplicate segments.
//!
//! Segments are placed on an absolute stream offset computed from the wrapping distance to the
//! next expected sequence number, so sequence wrap-around needs no special case.

use crate::capture::Ts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Limit `max_out_of_order_bytes`: bytes buffered past a hole, per direction. When exceeded, the
/// hole is declared lost (a gap) and buffered data is delivered.
pub const MAX_OUT_OF_ORDER_BYTES: usize = 4 << 20;
/// Limit `max_out_of_order_segments`: segments buffered past a hole, per direction.
pub const MAX_OUT_OF_ORDER_SEGMENTS: usize = 4096;
/// Segments further than this from the next expected byte are not part of this stream.
const MAX_SEQ_DISTANCE: i64 = 1 << 30;

/// What reassembly hands on, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Contiguous bytes, available when the packet at `ts` arrived.
    Data { ts: Ts, bytes: &'a [u8] },
    /// `len` bytes of the stream that the capture does not have (lost, or cut by the snapshot
    /// length); whoever parses the stream must resynchronise after it.
    Gap { ts: Ts, len: u64 },
}

/// Counts reassembly keeps for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Segments whose payload had been seen before, in whole or in part.
    pub retransmissions: u64,
    /// Holes declared lost.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Times limit `max_out_of_order_bytes` forced a hole to be declared lost.
    pub limit_hits: u64,
    /// Times limit `max_out_of_order_segments` forced a hole to be declared lost.
    pub segment_limit_hits: u64,
    /// Segments dropped as too far from the stream to belong to it.
    pub out_of_window: u64,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    bytes: Vec<u8>,
    /// Bytes the segment carried beyond those captured (snapshot length).
    missing: u32,
    ts: Ts,
}

impl Pending {
    fn len(&self) -> u64 {
        self.bytes.len() as u64 + self.missing as u64
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct Reassembler {
    /// Sequence number of the byte at `next_off`, once known.
    next_seq: Option<u32>,
    /// Absolute offset of the next byte to deliver.
    next_off: u64,
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    pub stats: Stats,
}

impl Reassembler {
    /// The SYN fixes the initial sequence number: data starts one past it.
    pub fn syn(&mut self, isn: u32) {
        if self.next_seq.is_none() {
            self.next_seq = Some(isn.wrapping_add(1));
        }
    }

    /// Whether out-of-order data is waiting for a hole to be filled.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether any data or SYN has fixed this direction's sequence space.
    pub fn started(&self) -> bool {
        self.next_seq.is_some()
    }

    pub fn next_seq(&self) -> Option<u32> {
        self.next_seq
    }

    /// Offset of `seq` relative to the next expected byte.
    fn distance(&self, seq: u32) -> Option<i64> {
        let next = self.next_seq?;
        Some(seq.wrapping_sub(next) as i32 as i64)
    }

    /// A segment with `present` captured payload bytes out of `len` that it carried.
    pub fn segment<'a>(
        &mut self,
        ts: Ts,
        seq: u32,
        present: &'a [u8],
        len: u32,
        out: &mut impl FnMut(Chunk<'_>),
    ) {
        if len == 0 {
            return;
        }
        if self.next_seq.is_none() {
            self.next_seq = Some(seq);
        }
        let d = match self.distance(seq) {
            Some(d) => d,
            None => return,
        };
        // A one-byte (or empty) segment just below the next byte is a TCP keepalive probe, not data.
        if d == -1 && len <= 1 {
            return;
        }
        if d.abs() > MAX_SEQ_DISTANCE {
            self.stats.out_of_window += 1;
            return;
        }
        let start = self.next_off as i64 + d;
        let end = start + len as i64;
        if end <= self.next_off as i64 {
            self.stats.retransmissions += 1;
            return;
        }
        if start < self.next_off as i64 {
            // First copy wins: keep only what lies past the delivered bytes.
            self.stats.retransmissions += 1;
            let skip = (self.next_off as i64 - start) as usize;
            let present = present.get(skip..).unwrap_or(&[]);
            let missing = (len as usize - skip).saturating_sub(present.len()) as u32;
            self.deliver(ts, present, missing, out);
            self.drain(ts, out);
            return;
        }
        if start == self.next_off as i64 {
            let missing = (len as usize).saturating_sub(present.len()) as u32;
            let present = &present[..present.len().min(len as usize)];
            self.deliver(ts, present, missing, out);
            self.drain(ts, out);
            return;
        }
        let start = start as u64;
        // Out of order: buffer unless an earlier copy already covers this offset.
        if let Some(existing) = self.pending.get(&start) {
            self.stats.retransmissions += 1;
            if existing.len() >= len as u64 {
                return;
            }
        }
        let take = present.len().min(len as usize);
        let seg = Pending {
            bytes: present[..take].to_vec(),
            missing: len - take as u32,
            ts,
        };
        self.pending_bytes += seg.bytes.len();
        if let Some(old) = self.pending.insert(start, seg) {
            self.pending_bytes -= old.bytes.len();
        }
        if self.pending_bytes > MAX_OUT_OF_ORDER_BYTES {
            self.stats.limit_hits += 1;
            self.skip_hole(ts, out);
        } else if self.pending.len() > MAX_OUT_OF_ORDER_SEGMENTS {
            self.stats.segment_limit_hits += 1;
            self.skip_hole(ts, out);
        }
    }

    /// The peer acknowledged up to `ack`: if that lies past a hole that later data already sits
    /// behind, the hole's bytes were sent and received but not captured.
    pub fn peer_ack(&mut self, ts: Ts, ack: u32, out: &mut impl FnMut(Chunk<'_>)) {
        let first = match self.pending.keys().next() {
            Some(&first) => first,
            None => return,
        };
        if let Some(d) = self.distance(ack) {
            if d > 0 && d <= MAX_SEQ_DISTANCE && self.next_off + d as u64 >= first {
                self.skip_hole(ts, out);
            }
        }
    }

    /// End of the stream (FIN, RST, end of capture): whatever is buffered is delivered, with the
    /// holes before it as gaps.
    pub fn flush(&mut self, ts: Ts, out: &mut impl FnMut(Chunk<'_>)) {
        while !self.pending.is_empty() {
            self.skip_hole(ts, out);
        }
    }

    /// Declares the bytes up to the first buffered segment lost and delivers what follows.
    fn skip_hole(&mut self, ts: Ts, out: &mut impl FnMut(Chunk<'_>)) {
        if let Some(&first) = self.pending.keys().next() {
            if first > self.next_off {
                let len = first - self.next_off;
                self.gap(ts, len, out);
            }
            self.drain(ts, out);
        }
    }

    fn gap(&mut self, ts: Ts, len: u64, out: &mut impl FnMut(Chunk<'_>)) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        self.advance(len);
        out(Chunk::Gap { ts, len });
    }

    fn advance(&mut self, len: u64) {
        self.next_off += len;
        self.next_seq = self.next_seq.map(|s| s.wrapping_add(len as u32));
    }

    fn deliver(&mut self, ts: Ts, bytes: &[u8], missing: u32, out: &mut impl FnMut(Chunk<'_>)) {
        if !bytes.is_empty() {
            self.advance(bytes.len() as u64);
            out(Chunk::Data { ts, bytes });
        }
        if missing > 0 {
            self.stats.gaps += 1;
            self.stats.gap_bytes += missing as u64;
            self.advance(missing as u64);
            out(Chunk::Gap {
                ts,
                len: missing as u64,
            });
        }
    }

    /// Delivers buffered segments that have become contiguous. They are delivered at `ts`, the time
    /// of the packet that completed them.
    #[inline]
    fn drain(&mut self, ts: Ts, out: &mut impl FnMut(Chunk<'_>)) {
        // Nearly always nothing is buffered: that test stays in line, the rest is a call.
        if !self.pending.is_empty() {
            self.drain_pending(ts, out);
        }
    }

    fn drain_pending(&mut self, ts: Ts, out: &mut impl FnMut(Chunk<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.next_off {
                break;
            }
            let seg = entry.remove();
            self.pending_bytes -= seg.bytes.len();
            let end = start + seg.len();
            if end <= self.next_off {
                continue;
            }
            let skip = (self.next_off - start) as usize;
            let bytes = seg.bytes.get(skip..).unwrap_or(&[]);
            let missing = (end - self.next_off) as usize - bytes.len();
            let ts = ts.max(seg.ts);
            self.deliver(ts, bytes, missing as u32, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs segments through a reassembler and renders the output: bytes as text, gaps as `[n]`.
    fn run(isn: Option<u32>, segs: &[(u32, &[u8])]) -> (String, Stats) {
        let mut r = Reassembler::default();
        if let Some(isn) = isn {
            r.syn(isn);
        }
        let mut out = String::new();
        let mut sink = |c: Chunk<'_>| match c {
            Chunk::Data { bytes, .. } => out.push_str(std::str::from_utf8(bytes).unwrap()),
            Chunk::Gap { len, .. } => out.push_str(&format!("[{len}]")),
        };
        for (seq, data) in segs {
            r.segment(Ts(0), *seq, data, data.len() as u32, &mut sink);
        }
        r.flush(Ts(0), &mut sink);
        (out, r.stats)
    }

    #[test]
    fn in_order_and_out_of_order_give_the_same_stream() {
        assert_eq!(run(Some(99), &[(100, b"abc"), (103, b"def")]).0, "abcdef");
        assert_eq!(run(Some(99), &[(103, b"def"), (100, b"abc")]).0, "abcdef");
        assert_eq!(
            run(Some(99), &[(106, b"ghi"), (103, b"def"), (100, b"abc")]).0,
            "abcdefghi"
        );
    }

    #[test]
    fn retransmissions_are_counted_once_and_first_copy_wins() {
        let (s, st) = run(Some(99), &[(100, b"abc"), (100, b"abc"), (103, b"def")]);
        assert_eq!((s.as_str(), st.retransmissions), ("abcdef", 1));
        // A retransmission that overlaps and extends: only the new tail counts.
        let (s, st) = run(Some(99), &[(100, b"abc"), (101, b"XYZw")]);
        assert_eq!((s.as_str(), st.retransmissions), ("abcZw", 1));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let isn = u32::MAX - 1;
        assert_eq!(run(Some(isn), &[(u32::MAX, b"ab"), (1, b"cd")]).0, "abcd");
    }

    #[test]
    fn holes_become_gaps_at_flush() {
        let (s, st) = run(Some(99), &[(100, b"abc"), (110, b"xyz")]);
        assert_eq!(s, "abc[7]xyz");
        assert_eq!((st.gaps, st.gap_bytes), (1, 7));
    }

    #[test]
    fn ack_past_a_hole_declares_it_lost() {
        let mut r = Reassembler::default();
        r.syn(0);
        let mut got = Vec::new();
        let mut sink = |c: Chunk<'_>| got.push(format!("{c:?}"));
        r.segment(Ts(1), 1, b"ab", 2, &mut sink);
        r.segment(Ts(2), 10, b"zz", 2, &mut sink);
        r.peer_ack(Ts(3), 12, &mut sink);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[1].contains("Gap") && got[1].contains("len: 7"),
            "{got:?}"
        );
    }

    #[test]
    fn snaplen_cut_segment_is_data_then_gap() {
        let mut r = Reassembler::default();
        let mut got = Vec::new();
        r.segment(Ts(0), 5, b"ab", 6, &mut |c: Chunk<'_>| {
            got.push(format!("{c:?}"))
        });
        assert_eq!(got.len(), 2);
        assert!(got[1].contains("len: 4"));
    }

    #[test]
    fn garbage_sequence_numbers_are_ignored() {
        let (s, st) = run(
            Some(99),
            &[(100, b"abc"), (100 + (1 << 31), b"zzz"), (103, b"d")],
        );
        assert_eq!((s.as_str(), st.out_of_window), ("abcd", 1));
    }

    #[test]
    fn keepalive_probe_is_not_data() {
        let (s, st) = run(Some(99), &[(100, b"abc"), (102, b"c"), (103, b"d")]);
        assert_eq!((s.as_str(), st.retransmissions), ("abcd", 0));
        let (s, st) = run(Some(99), &[(100, b"abc"), (102, b"\0")]);
        assert_eq!((s.as_str(), st.retransmissions), ("abc", 0));
    }

    #[test]
    fn limit_on_buffered_bytes_forces_a_gap() {
        let mut r = Reassembler::default();
        r.syn(0);
        let big = vec![b'x'; 1 << 16];
        let mut gaps = 0;
        let mut seq = 1 + 1000;
        for _ in 0..(MAX_OUT_OF_ORDER_BYTES / big.len() + 2) {
            r.segment(Ts(0), seq, &big, big.len() as u32, &mut |c: Chunk<'_>| {
                if matches!(c, Chunk::Gap { .. }) {
                    gaps += 1
                }
            });
            seq = seq.wrapping_add(big.len() as u32);
        }
        assert_eq!(gaps, 1);
        assert_eq!(r.stats.limit_hits, 1);
        assert!(r.pending_bytes < MAX_OUT_OF_ORDER_BYTES);
    }

    #[test]
    fn limit_on_buffered_segments_forces_a_gap_and_is_told_apart() {
        let mut r = Reassembler::default();
        r.syn(0);
        let mut gaps = 0;
        // One-byte segments with a hole before each: none ever becomes contiguous.
        for i in 0..(MAX_OUT_OF_ORDER_SEGMENTS as u32 + 1) {
            r.segment(Ts(0), 2 + 2 * i, b"x", 1, &mut |c: Chunk<'_>| {
                if matches!(c, Chunk::Gap { .. }) {
                    gaps += 1
                }
            });
        }
        assert_eq!((r.stats.segment_limit_hits, r.stats.limit_hits), (1, 0));
        assert_eq!(gaps, 1);
        assert!(r.pending.len() <= MAX_OUT_OF_ORDER_SEGMENTS);
    }
}
