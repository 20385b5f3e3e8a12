//! Property: no capture file, however damaged or hostile, panics the pipeline from the capture
//! reader through TCP reassembly, HTTP/2 framing and HPACK to the rendered reports, the way
//! `analyze` runs it: connections summarised as they end (report/store.rs), kept as JSON text and
//! as the report model. And: parking every connection after each of its packets (written to a
//! temporary file and read back, analyzer.rs) changes nothing in the document.
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
    let mut documents = Vec::new();
    for (keep, park_after_ns) in [(Keep::Json, None), (Keep::Json, Some(0)), (Keep::Model, Some(0))] {
        let Ok(mut reader) = CaptureReader::from_bytes("fuzz", data.to_vec()) else { return };
        let cfg = Config { decode_as: vec![50051], park_after_ns, ..Default::default() };
        let mut analyzer = Analyzer::with_sink(cfg, MAX_FLOWS, Store::new(&cat, keep));
        while let Some(p) = reader.next_packet() {
            analyzer.packet(&p);
        }
        let (store, stats) = analyzer.finish_into();
        let mut settled = Stored::new(vec![store]).settle(&cat);
        let input = model::input(vec!["fuzz".into()], vec![], &stats, settled.len());
        match keep {
            Keep::Json => {
                let mut doc = Vec::new();
                let _ = settled.write_json(&input, &mut doc);
                documents.push(doc);
            }
            Keep::Model => {
                let doc = settled.document(input);
                let _ = report::json(&doc);
                let _ = report::text::render(&doc, true);
            }
        }
    }
    assert!(documents[0] == documents[1], "parking changed the document");
});
