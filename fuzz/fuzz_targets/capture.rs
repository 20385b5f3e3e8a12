//! Property: no byte string, however damaged, panics the capture readers. Covers format recognition
//! (gzip, pcap in both byte orders and resolutions, pcapng), record parsing, buffer growth up to
//! `max_record_size`, and merging by time. The first byte picks one input or two merged ones (the
//! rest split at a point the byte also picks), so the merge's ordering is exercised on hostile
//! timestamps.
#![no_main]

use h2keepalive::capture::{CaptureReader, Merged};
use libfuzzer_sys::fuzz_target;

/// Enough packets to reach the end of any input the fuzzer makes, bounded all the same.
const MAX_PACKETS: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first & 0x80 == 0 {
        let Ok(mut r) = CaptureReader::from_bytes("fuzz", rest.to_vec()) else {
            return;
        };
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            // Touch what a later stage would read.
            std::hint::black_box((p.ts, p.link, p.data.len(), p.orig_len));
            n += 1;
            if n >= MAX_PACKETS {
                break;
            }
        }
        let _ = r.progress();
        std::hint::black_box((r.warnings().len(), r.secrets().len()));
    } else {
        let at = (rest.len() * (first & 0x7f) as usize) / 128;
        let (x, y) = rest.split_at(at);
        let readers: Vec<CaptureReader> = [x, y]
            .iter()
            .filter_map(|b| CaptureReader::from_bytes("fuzz", b.to_vec()).ok())
            .collect();
        let mut merged = Merged::new(readers);
        let mut n = 0;
        while let Some(p) = merged.next_packet() {
            std::hint::black_box((p.ts, p.data.len()));
            n += 1;
            if n >= MAX_PACKETS {
                break;
            }
        }
        std::hint::black_box(merged.take_warnings());
    }
});
