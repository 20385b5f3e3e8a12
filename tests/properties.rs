//! Properties over many generated cases (a seeded generator, so failures reproduce):
//! - TCP reassembly yields the same byte stream whatever the order, duplication and splitting of the
//!   segments that carried it;
//! - the HTTP/2 framer and HPACK decoding never panic on arbitrary bytes, whole or in pieces;
//! - report/json.rs writes the bytes serde_json writes, for any string, float, integer and JSON
//!   tree (serde_json is the oracle).

mod util;

use h2keepalive::capture::Ts;
use h2keepalive::http2::framer::{Framer, RawFrame, Strictness};
use h2keepalive::http2::hpack::{split, BlockDecoder};
use h2keepalive::report::json;
use h2keepalive::tcp::{Chunk, Reassembler};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Debug;
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

/// `value` written by report/json.rs and by serde_json.
fn same_json<T: ?Sized + Serialize + Debug>(value: &T, case: usize) {
    let want = serde_json::to_vec(value).expect("serde_json serialises it");
    let got = json::to_vec(value).expect("serialises");
    assert!(
        got == want,
        "case {case}: {value:?}\n  got  {}\n  want {}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

/// A string mostly of the characters JSON escaping is about: controls, quotes, backslashes,
/// DEL, and characters of every UTF-8 length; sometimes long, to cross the eight-byte words.
fn tricky_string(rng: &mut Rng) -> String {
    let len = if rng.below(8) == 0 {
        rng.below(300)
    } else {
        rng.below(24)
    };
    let plain_run = rng.below(4) == 0;
    (0..len)
        .map(|_| {
            let pick = if plain_run { 99 } else { rng.below(100) };
            let c = match pick {
                0..=14 => rng.below(0x20) as u32,
                15..=22 => u32::from(b'"'),
                23..=30 => u32::from(b'\\'),
                31..=34 => 0x7f,
                35..=44 => 0x80 + rng.below(0x800 - 0x80) as u32,
                45..=52 => 0x800 + rng.below(0xd800 - 0x800) as u32,
                53..=56 => 0xe000 + rng.below(0x1_0000 - 0xe000) as u32,
                57..=60 => 0x1_0000 + rng.below(0x11_0000 - 0x1_0000) as u32,
                _ => 0x20 + rng.below(0x7f - 0x20) as u32,
            };
            char::from_u32(c).expect("no surrogates")
        })
        .collect()
}

/// A float of any bit pattern (NaNs, infinities, subnormals), or of the kinds a report has:
/// capture timestamps with microseconds, rounded durations, integers.
fn any_f64(rng: &mut Rng) -> f64 {
    match rng.below(5) {
        0 | 1 => f64::from_bits(rng.next()),
        2 => 1.6e9 + rng.below(200_000_000) as f64 + rng.below(1_000_000) as f64 / 1e6,
        3 => (rng.below(10_000_000) as f64 / 1000.0).round() / 1000.0,
        _ => rng.next() as i64 as f64 / 10f64.powi(rng.below(30) as i32),
    }
}

#[test]
fn json_writer_writes_what_serde_json_writes_for_any_string() {
    let mut rng = Rng(0x6a73_6f6e);
    for case in 0..20_000 {
        let s = tricky_string(&mut rng);
        same_json(&s, case);
        same_json(&[(s.as_str(), s.len())], case);
        same_json(
            &BTreeMap::from([(s.clone(), 1u8), (format!("{s}\u{1}"), 2)]),
            case,
        );
        if let Some(c) = s.chars().next() {
            same_json(&c, case);
        }
    }
}

#[test]
fn json_writer_writes_what_serde_json_writes_for_any_number() {
    let mut rng = Rng(0x00f1_0a75);
    for case in 0..100_000 {
        let x = any_f64(&mut rng);
        same_json(&x, case);
        same_json(&(x as f32), case);
        same_json(&f32::from_bits(rng.next() as u32), case);
        let n = rng.next();
        same_json(&[n, n >> rng.below(64)], case);
        same_json(&(n as i64 >> rng.below(64)), case);
        same_json(&((n as i128) << 64 | rng.next() as i128), case);
        same_json(&((n as u128) << 64 | rng.next() as u128), case);
    }
}

/// Floats written by report/json.rs and by serde_json, through buffers kept between cases (a
/// few million cases, so without the allocations of [`same_json`]).
struct Floats {
    want: Vec<u8>,
    got: Vec<u8>,
    cases: usize,
}

impl Floats {
    fn check(&mut self, x: f64) {
        for x in [x, -x] {
            self.want.clear();
            self.got.clear();
            serde_json::to_writer(&mut self.want, &x).expect("serde_json serialises it");
            json::to_vec_into(&mut self.got, &x).expect("serialises");
            assert!(
                self.got == self.want,
                "{x:e} ({:#018x})\n  got  {}\n  want {}",
                x.to_bits(),
                String::from_utf8_lossy(&self.got),
                String::from_utf8_lossy(&self.want)
            );
            self.cases += 1;
        }
    }
}

/// report/json.rs writes most floats from exact integer arithmetic rather than with zmij, and
/// must write what zmij writes: the report's kinds of floats at every resolution and
/// magnitude, every float of windows around the hard places (whole numbers, powers of two and
/// of ten, short decimals), floats with few significant bits (exact halves and quarters of
/// decimal steps, ties), and any bit pattern.
#[test]
fn json_writer_writes_floats_as_serde_json_does_for_report_and_adversarial_values() {
    let mut rng = Rng(0x666c_6f61_7473);
    let mut f = Floats {
        want: Vec::new(),
        got: Vec::new(),
        cases: 0,
    };
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    // Capture timestamps as the report makes them (Ts::as_secs_f64), from seconds to
    // nanoseconds, before 1970 to far ahead, and durations and round-trip times between them.
    for _ in 0..300_000 {
        let secs = (rng.next() as i64) >> (24 + rng.below(40));
        let resolution = 10i64.pow(rng.below(10) as u32);
        let nanos = rng.below(1_000_000_000) as i64 / resolution * resolution;
        let ts = Ts::from_parts(secs, nanos);
        let span = 1 << (10 + rng.below(40));
        let later = ts.add_ns(rng.below(span) as i64 / resolution * resolution);
        f.check(ts.as_secs_f64());
        f.check(round3(later.secs_since(ts)));
        f.check(((later.as_secs_f64() - ts.as_secs_f64()) * 1e6).round() / 1e3);
        f.check(rng.below(10_000) as f64 / 100.0);
    }
    // Runs of timestamps, as a connection has them: many share their seconds, which are written
    // once and then copied.
    for _ in 0..20_000 {
        let start = Ts::from_parts(rng.below(1 << 34) as i64, 0);
        let run: Vec<f64> = (0..rng.below(40))
            .map(|_| start.add_ns(rng.below(3_000_000_000) as i64).as_secs_f64())
            .collect();
        f.want.clear();
        f.got.clear();
        serde_json::to_writer(&mut f.want, &run).expect("serde_json serialises it");
        json::to_vec_into(&mut f.got, &run).expect("serialises");
        assert!(f.got == f.want, "{run:?}");
    }
    // Every float of a window: around timestamps, whole numbers, powers of two and of ten.
    let mut centres: Vec<f64> = vec![1_704_067_200.0, 1_704_067_200.001_557, 0.001, 0.1, 1.0];
    for e in -12..=54 {
        centres.push(2f64.powi(e));
        centres.push(3.0 * 2f64.powi(e));
    }
    for e in -6..=17 {
        centres.push(10f64.powi(e));
    }
    for centre in centres {
        for step in -5_000i64..=5_000 {
            f.check(f64::from_bits((centre.to_bits() as i64 + step) as u64));
        }
    }
    // Short decimals (few digits, every number of places) and their neighbours.
    for _ in 0..200_000 {
        let digits = rng.next() % 10u64.pow(1 + rng.below(16) as u32);
        let x = digits as f64 / 10f64.powi(rng.below(20) as i32);
        for step in -2i64..=2 {
            f.check(f64::from_bits((x.to_bits() as i64 + step).max(0) as u64));
        }
    }
    // Few significant bits: the decimal interval's ends and ties fall on such floats.
    for _ in 0..200_000 {
        let exponent = 1023 - 14 + rng.below(70) as u64;
        let kept = rng.below(24) as u32;
        let fraction = (rng.next() >> 12) >> (52 - kept) << (52 - kept);
        f.check(f64::from_bits(exponent << 52 | fraction));
    }
    // Any bit pattern, mostly with an exponent in and around the range done exactly.
    for _ in 0..400_000 {
        let bits = rng.next();
        let exponent = if rng.below(4) == 0 {
            bits >> 52 & 0x7ff
        } else {
            1023 - 14 + rng.below(70) as u64
        };
        f.check(f64::from_bits(exponent << 52 | bits & ((1 << 52) - 1)));
    }
    assert!(f.cases > 4_000_000, "{} cases", f.cases);
}

/// A JSON tree: the arrays, objects (string keys), numbers, strings and literals serde_json's
/// `Value` holds, nested a few levels.
fn any_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => Value::from(rng.next() as i64 >> rng.below(64)),
        3 => Value::from(rng.next() >> rng.below(64)),
        4 => serde_json::Number::from_f64(any_f64(rng)).map_or(Value::Null, Value::Number),
        5 => Value::String(tricky_string(rng)),
        6 => Value::Array(
            (0..rng.below(5))
                .map(|_| any_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(5))
                .map(|_| (tricky_string(rng), any_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

#[test]
fn json_writer_writes_what_serde_json_writes_for_any_json_tree() {
    let mut rng = Rng(0x7472_6565);
    for case in 0..5_000 {
        let value = any_value(&mut rng, 4);
        same_json(&value, case);
    }
}
