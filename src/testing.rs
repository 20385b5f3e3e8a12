//! What unit tests share: a small deterministic random source (xorshift64), so that a failing case
//! comes back on every run.

/// Pseudo-random `u64`s from `seed` (not 0), the same for the same seed.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Every lab capture's connections (`captures/*/capture.pcap`, in name order), as one run.
pub(crate) fn lab_timelines() -> Vec<crate::timeline::Timeline> {
    use crate::analyzer::{Analyzer, Config};
    use crate::capture::CaptureReader;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("capture.pcap"))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    let mut timelines = Vec::new();
    for f in files {
        let mut reader = CaptureReader::open(f.to_str().unwrap()).unwrap();
        let mut analyzer = Analyzer::new(Config::default());
        while let Some(p) = reader.next_packet() {
            analyzer.packet(&p);
        }
        timelines.extend(analyzer.finish().0);
    }
    timelines
}
