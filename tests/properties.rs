//! Properties over many generated cases (a seeded generator, so failures reproduce):
//! - TCP reassembly yields the same byte stream whatever the order, duplication and splitting of the
//!   segments that carried it;
//! - the HTTP/2 framer and HPACK decoding never panic on arbitrary bytes, whole or in pieces.

mod util;

use h2keepalive::capture::Ts;
use h2keepalive::http2::framer::{Framer, RawFrame, Strictness};
use h2keepalive::http2::hpack::{split, BlockDecoder};
use h2keepalive::tcp::{Chunk, Reassembler};
use util::Rng;

/// Runs segments (sequence number, payload) through a reassembler and returns the stream and gaps.
fn reassemble(isn: u32, segments: &[(u32, Vec<u8>)]) -> (Vec<u8>, u64) {
    let mut r = Reassembler::default();
    r.syn(isn);
    let mut out = Vec::new();
    let mut gaps = 0;
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data { bytes, .. } => out.extend_from_slice(bytes),
        Chunk::Gap { len, .. } => gaps += len,
    };
    for (seq, data) in segments {
        r.segment(Ts(0), *seq, data, data.len() as u32, &mut sink);
    }
    r.flush(Ts(0), &mut sink);
    (out, gaps)
}

#[test]
fn reassembly_is_independent_of_order_duplication_and_splitting() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..500 {
        let len = 1 + rng.below(5000);
        let stream = rng.bytes(len);
        // Near the wrap of the sequence space every few cases.
        let isn = if case % 5 == 0 {
            u32::MAX - rng.below(3000) as u32
        } else {
            rng.next() as u32
        };
        // Cut the stream into segments, then add copies: whole retransmissions and overlapping
        // re-splits, as a sender that retransmits with other segment sizes would.
        let mut segments: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut pos = 0;
        while pos < len {
            let n = (1 + rng.below(1400)).min(len - pos);
            segments.push((
                isn.wrapping_add(1).wrapping_add(pos as u32),
                stream[pos..pos + n].to_vec(),
            ));
            pos += n;
        }
        for _ in 0..rng.below(segments.len() + 1) {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(2000)).min(len);
            segments.push((
                isn.wrapping_add(1).wrapping_add(a as u32),
                stream[a..b].to_vec(),
            ));
        }
        for i in (1..segments.len()).rev() {
            let j = rng.below(i + 1);
            segments.swap(i, j);
        }
        let (out, gaps) = reassemble(isn, &segments);
        assert_eq!(gaps, 0, "case {case}");
        assert_eq!(out, stream, "case {case}: {} segments", segments.len());
    }
}

#[test]
fn reassembly_reports_exactly_the_missing_bytes() {
    let mut rng = Rng(42);
    for case in 0..300 {
        let len = 100 + rng.below(4000);
        let stream = rng.bytes(len);
        let isn = rng.next() as u32;
        let mut segments = Vec::new();
        let mut pos = 0;
        let mut missing = 0u64;
        let mut expected = Vec::new();
        while pos < len {
            let n = (1 + rng.below(700)).min(len - pos);
            // Drop some segments, but never the last (a hole needs data behind it to be seen).
            if rng.below(6) == 0 && pos + n < len {
                missing += n as u64;
            } else {
                segments.push((
                    isn.wrapping_add(1).wrapping_add(pos as u32),
                    stream[pos..pos + n].to_vec(),
                ));
                expected.extend_from_slice(&stream[pos..pos + n]);
            }
            pos += n;
        }
        for i in (1..segments.len()).rev() {
            let j = rng.below(i + 1);
            segments.swap(i, j);
        }
        let (out, gaps) = reassemble(isn, &segments);
        assert_eq!(gaps, missing, "case {case}");
        assert_eq!(out, expected, "case {case}");
    }
}

#[test]
fn framer_and_hpack_never_panic_on_arbitrary_bytes() {
    let mut rng = Rng(7);
    for case in 0..3000 {
        let len = rng.below(3000);
        let mut bytes = rng.bytes(len);
        // Bias some inputs toward plausible frame headers, so the parsers get past the first check.
        if case % 3 == 0 && bytes.len() >= 9 {
            bytes[0] = 0;
            bytes[1] = (rng.below(4)) as u8;
            bytes[3] = rng.below(11) as u8;
        }
        for strictness in [None, Some(Strictness::Known), Some(Strictness::Detect)] {
            let mut f = match strictness {
                None => Framer::new(),
                Some(s) => Framer::hunting(s),
            };
            let mut rest = &bytes[..];
            let mut frames = 0usize;
            while !rest.is_empty() {
                let n = (1 + rng.below(300)).min(rest.len());
                f.feed(Ts(0), &rest[..n], &mut |fr: RawFrame<'_>| {
                    frames += 1;
                    assert!(fr.payload.len() <= fr.head.len as usize);
                });
                if rng.below(20) == 0 {
                    f.lost(rng.below(100) as u64);
                }
                rest = &rest[n..];
            }
            let _ = f.finish();
            let _ = frames;
        }
        let _ = split(&bytes);
        let mut d = BlockDecoder::new(case % 2 == 0);
        let _ = d.decode(&bytes);
        let _ = d.decode(&bytes[..bytes.len() / 2]);
    }
}
