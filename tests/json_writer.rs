//! The JSON document is written by report/json.rs, which must write the bytes serde_json writes:
//! for every capture under captures/ (with its key log where there is one), the report model is
//! serialised by both and compared, and the document as `analyze --format json` writes it, from
//! connections kept as models and as JSON text, is compared with the same layout written by
//! serde_json.

mod util;

use h2keepalive::analyzer::{Analyzer, Config};
use h2keepalive::capture::{CaptureReader, Merged};
use h2keepalive::diagnose::Catalogue;
use h2keepalive::report::model::{Document, Input};
use h2keepalive::report::store::{Keep, Settled, Store, Stored};
use h2keepalive::report::{self, json};
use h2keepalive::tcp::MAX_FLOWS;
use std::io::Write;
use std::path::Path;
use util::captures;

/// The key log beside a capture: `keylog.txt` in its directory, or named after it.
fn keylog(capture: &str) -> Option<Vec<u8>> {
    let path = Path::new(capture);
    let stem = capture
        .trim_end_matches(".gz")
        .trim_end_matches(".pcapng")
        .trim_end_matches(".pcap");
    [
        path.with_file_name("keylog.txt"),
        format!("{stem}.keylog").into(),
        format!("{stem}.keylog.txt").into(),
    ]
    .iter()
    .find_map(|k| std::fs::read(k).ok())
}

/// `capture` analysed as `analyze` does on one thread, its connections kept as `keep`.
fn settled(capture: &str, cat: &Catalogue, keep: Keep) -> (Settled, Input) {
    let reader = CaptureReader::open(capture).expect("capture opens");
    let mut input = Merged::new(vec![reader]);
    let mut analyzer = Analyzer::with_sink(Config::default(), MAX_FLOWS, Store::new(cat, keep));
    if let Some(keys) = keylog(capture) {
        analyzer.add_keylog(&keys);
    }
    while let Some(p) = input.next_packet() {
        analyzer.packet(&p);
        if let Some(secrets) = input.take_secrets() {
            analyzer.add_keylog(&secrets);
        }
    }
    let (store, stats) = analyzer.finish_into();
    let settled = Stored::new(vec![store]).settle(cat);
    let warnings = input
        .take_warnings()
        .iter()
        .map(|w| w.to_string())
        .collect();
    let model = report::model::input(vec![capture.into()], warnings, &stats, settled.len());
    (settled, model)
}

/// The document's layout (report::write_json) with every value written by serde_json.
fn serde_json_document(doc: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    write!(out, "{{\"schema\":\"{}\",\n\"input\":", doc.schema).unwrap();
    serde_json::to_writer(&mut out, &doc.input).unwrap();
    out.extend_from_slice(b",\n\"connections\":[");
    for (i, c) in doc.connections.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut out, c).unwrap();
    }
    out.extend_from_slice(b"\n],\n\"findings\":[");
    for (i, f) in doc.findings.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut out, f).unwrap();
    }
    out.extend_from_slice(b"\n]}\n");
    out
}

/// Where two texts first differ, with some context, for the failure message.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around = |t: &[u8]| {
        String::from_utf8_lossy(&t[at.saturating_sub(80)..(at + 80).min(t.len())]).into_owned()
    };
    format!(
        "at byte {at} of {} (serde_json: {}):\n  got  …{}…\n  want …{}…",
        got.len(),
        want.len(),
        around(got),
        around(want)
    )
}

#[test]
fn every_capture_is_written_as_serde_json_writes_it() {
    let cat = Catalogue::builtin();
    let captures = captures();
    assert!(captures.len() > 50, "{} captures", captures.len());
    let (mut connections, mut with_keys) = (0, 0);
    for capture in &captures {
        with_keys += usize::from(keylog(capture).is_some());
        let (model, input) = settled(capture, &cat, Keep::Model);
        let doc = model.document(input.clone());
        connections += doc.connections.len();

        // The model as one value, and each connection and finding alone.
        let want = serde_json::to_vec(&doc).unwrap();
        let got = json::to_vec(&doc).unwrap();
        assert!(
            got == want,
            "{capture}: the model {}",
            first_difference(&got, &want)
        );
        for c in &doc.connections {
            assert!(
                json::to_vec(c).unwrap() == serde_json::to_vec(c).unwrap(),
                "{capture}: connection {}",
                c.id
            );
        }

        // The document, from models and from the JSON text kept of each connection.
        let want = serde_json_document(&doc);
        let got = report::json(&doc).into_bytes();
        assert!(
            got == want,
            "{capture}: the document {}",
            first_difference(&got, &want)
        );
        let (mut kept, input) = settled(capture, &cat, Keep::Json);
        let mut got = Vec::new();
        kept.write_json(&input, &mut got).unwrap();
        assert!(
            got == want,
            "{capture}: the document from JSON text {}",
            first_difference(&got, &want)
        );
    }
    assert!(connections > 200, "only {connections} connections");
    assert!(with_keys >= 5, "only {with_keys} captures with a key log");
}
