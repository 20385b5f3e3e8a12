//! Property: no pair of byte streams panics HTTP/2 recognition, framing, connection semantics or HPACK.
//! The input drives one [`Session`] as TCP reassembly would (layout in `streams.rs`): the first
//! byte says whether the connection's start is in the capture and whether `--decode-as` applies.
#![no_main]

use h2keepalive::capture::Ts;
use h2keepalive::http2::Session;
use h2keepalive::timeline::Timeline;
use libfuzzer_sys::fuzz_target;

#[path = "streams.rs"]
mod streams;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let mut session = Session::new(cfg & 1 == 1, cfg & 2 == 2);
    let a = "198.18.0.2:40000".parse().unwrap();
    let b = "198.18.1.2:50051".parse().unwrap();
    let start = Ts(1_700_000_000_000_000_000);
    let mut tl = Timeline::new(a, b, start);
    let ts = streams::each_chunk(rest, &mut tl, start, |dir, chunk, tl| {
        session.chunk(dir, chunk, tl);
        session.wants_bytes()
    });
    session.finish(ts, &mut tl);
    tl.finish();
});
