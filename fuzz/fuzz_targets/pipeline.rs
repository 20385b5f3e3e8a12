//! Property: no capture file, however damaged or hostile, panics the pipeline from the capture
//! reader through TCP reassembly, HTTP/2 framing and HPACK to the rendered reports.
#![no_main]

use h2keepalive::analyzer::{Analyzer, Config};
use h2keepalive::capture::CaptureReader;
use h2keepalive::report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_bytes("fuzz", data.to_vec()) else { return };
    let mut analyzer = Analyzer::new(Config { decode_as: vec![50051] });
    while let Some(p) = reader.next_packet() {
        analyzer.packet(&p);
    }
    let (timelines, stats) = analyzer.finish();
    let diagnosis = h2keepalive::diagnose::diagnose(&timelines, &h2keepalive::diagnose::Catalogue::builtin());
    let doc = report::build(vec!["fuzz".into()], vec![], &stats, &timelines, &diagnosis);
    let _ = report::json(&doc);
    let _ = report::text::render(&doc, true);
});
