//! The input layout of the `http2` and `tls` targets: two byte streams as TCP reassembly hands
//! them on. The first byte is a configuration byte for the target; then records of a header byte
//! (bit 0: direction, bit 1: a gap rather than bytes), a u16 length and, for data, the bytes.

use h2keepalive::capture::Ts;
use h2keepalive::tcp::{Chunk, Dir};
use h2keepalive::timeline::Timeline;

/// Splits `data` into its configuration byte and chunks; each chunk is counted as a packet in
/// `tl` and handed to `f`. Stops early when `f` returns false. Returns the last timestamp.
pub fn each_chunk(
    rest: &[u8],
    tl: &mut Timeline,
    mut ts: Ts,
    mut f: impl FnMut(Dir, Chunk<'_>, &mut Timeline) -> bool,
) -> Ts {
    let mut rest = rest;
    while rest.len() >= 3 {
        let head = rest[0];
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        rest = &rest[3..];
        let dir = if head & 1 == 0 { Dir::AtoB } else { Dir::BtoA };
        ts = ts.add_ns(1_000_000);
        tl.packet(ts, dir, len as u32);
        let chunk = if head & 2 != 0 {
            Chunk::Gap {
                ts,
                len: len as u64,
            }
        } else {
            let n = len.min(rest.len());
            let (bytes, more) = rest.split_at(n);
            rest = more;
            Chunk::Data { ts, bytes }
        };
        if !f(dir, chunk, tl) {
            break;
        }
    }
    ts
}
