//! Reads captures through the capture stage only ([`Merged::next_packet`]) and prints how fast:
//! packets/s and MB/s of input, so that the readers can be measured apart from the analysis.
//!
//! ```text
//! cargo build --release --example read_only
//! target/release/examples/read_only FILE [FILE ...]      # `-` for standard input
//! ```
//! MB/s counts the input as stored (compressed bytes for a gzip file) and, beside it, the
//! packet bytes delivered.

use h2keepalive::capture::{CaptureReader, Merged};
use std::process::ExitCode;
use std::time::Instant;

// As in the binary: the allocator is part of what is measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        eprintln!("usage: read_only FILE [FILE ...]");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let mut readers = Vec::new();
    for name in &names {
        match CaptureReader::open(name) {
            Ok(r) => readers.push(r),
            Err(e) => {
                eprintln!("read_only: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut input = Merged::new(readers);
    let (mut packets, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    while let Some(p) = input.next_packet() {
        packets += 1;
        bytes += p.data.len() as u64;
        // Touch the packet as a parser would, so the bytes are really brought in.
        sum = sum.wrapping_add(p.data.first().copied().unwrap_or(0) as u64);
        sum = sum.wrapping_add(p.data.last().copied().unwrap_or(0) as u64);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let (raw, _) = input.progress();
    for w in input.take_warnings() {
        eprintln!("read_only: warning: {w}");
    }
    println!(
        "{packets} packets, {:.1} MB in, {:.1} MB of packets in {secs:.3} s: {:.0} packets/s, {:.1} MB/s in, {:.1} MB/s of packets (checksum {sum})",
        raw as f64 / 1e6,
        bytes as f64 / 1e6,
        packets as f64 / secs,
        raw as f64 / 1e6 / secs,
        bytes as f64 / 1e6 / secs,
    );
    ExitCode::SUCCESS
}
