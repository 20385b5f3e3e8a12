//! Property: no pair of byte streams panics HTTP/2 recognition, framing, connection semantics or HPACK.
//! The input drives one [`Session`] as TCP reassembly would: the first byte says whether the
//! connection's start is in the capture and whether `--decode-as` applies; then records of a header
//! byte (bit 0: direction, bit 1: a gap rather than bytes), a u16 length and, for data, the bytes.
#![no_main]

use h2keepalive::capture::Ts;
use h2keepalive::http2::Session;
use h2keepalive::tcp::{Chunk, Dir};
use h2keepalive::timeline::Timeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let mut session = Session::new(cfg & 1 == 1, cfg & 2 == 2);
    let a = "198.18.0.2:40000".parse().unwrap();
    let b = "198.18.1.2:50051".parse().unwrap();
    let mut ts = Ts(1_700_000_000_000_000_000);
    let mut tl = Timeline::new(a, b, ts);
    while rest.len() >= 3 {
        let head = rest[0];
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        rest = &rest[3..];
        let dir = if head & 1 == 0 { Dir::AtoB } else { Dir::BtoA };
        ts = ts.add_ns(1_000_000);
        tl.packet(ts, dir, len as u32);
        if head & 2 != 0 {
            session.chunk(
                dir,
                Chunk::Gap {
                    ts,
                    len: len as u64,
                },
                &mut tl,
            );
        } else {
            let n = len.min(rest.len());
            let (bytes, more) = rest.split_at(n);
            rest = more;
            session.chunk(dir, Chunk::Data { ts, bytes }, &mut tl);
        }
        if !session.wants_bytes() {
            break;
        }
    }
    session.finish(ts, &mut tl);
    tl.finish();
});
