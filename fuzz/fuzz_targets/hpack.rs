//! Property: no header block, however malformed, panics the HPACK decoder (structure walk, static
//! and dynamic tables, Huffman decoding).
//! The first byte picks the table state (known or unknown); the rest is split into blocks decoded
//! in sequence on one table, as a connection would.
#![no_main]

use h2keepalive::http2::hpack::{split, BlockDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let mut decoder = BlockDecoder::new(first & 1 == 0);
    // Blocks are separated by 0xfe 0xfe (an unlikely pair) so one input exercises table state
    // carried across blocks.
    for block in rest.split(|&b| b == 0xfe) {
        let _ = split(block);
        let _ = decoder.decode(block);
    }
});
