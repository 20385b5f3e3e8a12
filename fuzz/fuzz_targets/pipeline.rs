//! Property: no capture file, however damaged or hostile, panics the pipeline from the capture
//! reader through TCP reassembly, HTTP/2 framing and HPACK to the rendered reports, the way
//! `analyze` runs it: connections summarised as they end (report/store.rs), kept as JSON text and
//! as the report model.
#![no_main]

use h2keepalive::analyzer::{Analyzer, Config};
use h2keepalive::capture::CaptureReader;
use h2keepalive::diagnose::Catalogue;
use h2keepalive::report::store::{Keep, Store, Stored};
use h2keepalive::report::{self, model};
use h2keepalive::tcp::MAX_FLOWS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cat = Catalogue::builtin();
    for keep in [Keep::Json, Keep::Model] {
        let Ok(mut reader) = CaptureReader::from_bytes("fuzz", data.to_vec()) else { return };
        let cfg = Config { decode_as: vec![50051], ..Default::default() };
        let mut analyzer = Analyzer::with_sink(cfg, MAX_FLOWS, Store::new(&cat, keep));
        while let Some(p) = reader.next_packet() {
            analyzer.packet(&p);
        }
        let (store, stats) = analyzer.finish_into();
        let mut settled = Stored::new(vec![store]).settle(&cat);
        let input = model::input(vec!["fuzz".into()], vec![], &stats, settled.len());
        match keep {
            Keep::Json => {
                let _ = settled.write_json(&input, &mut Vec::new());
            }
            Keep::Model => {
                let doc = settled.document(input);
                let _ = report::json(&doc);
                let _ = report::text::render(&doc, true);
            }
        }
    }
});
