//! The binary as a user runs it: input variants (stdin, gzip by content, big-endian and nanosecond
//! pcap, several files merged by time, truncated files, snapshot-length cuts), exit codes, and the
//! JSON document's shape. Variants are derived here from a real capture by rewriting its records, and
//! must give the same analysis as the original.

mod util;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const CAPTURE: &str = "captures/public/grpc-service-name.pcap";

/// A classic little-endian microsecond pcap split into its header and records (header, data).
fn records(pcap: &[u8]) -> (Vec<u8>, Vec<([u32; 4], Vec<u8>)>) {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "test input must be little-endian microsecond pcap"
    );
    let header = pcap[..24].to_vec();
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let f = |i: usize| u32::from_le_bytes(pcap[pos + i..pos + i + 4].try_into().unwrap());
        let h = [f(0), f(4), f(8), f(12)];
        let data = pcap[pos + 16..pos + 16 + h[2] as usize].to_vec();
        pos += 16 + h[2] as usize;
        out.push((h, data));
    }
    (header, out)
}

fn write_le(header: &[u8], recs: &[([u32; 4], Vec<u8>)]) -> Vec<u8> {
    let mut v = header.to_vec();
    for (h, d) in recs {
        for x in h {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(d);
    }
    v
}

fn temp(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("h2keepalive-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// The parts of a connection that must not depend on how the capture file was written.
fn essence(doc: &Value) -> Vec<Value> {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::json!({
                "client": c["client"], "server": c["server"], "frames": c["frames"], "pings": c["pings"],
                "goaways": c["goaways"], "rst_streams": c["rst_streams"], "streams": c["streams"],
                "start": c["start"], "end": c["end"], "idle": c["idle"],
            })
        })
        .collect()
}

fn original() -> Value {
    util::analyze_json(&[CAPTURE])
}

#[test]
fn big_endian_pcap_reads_the_same() {
    let (header, recs) = records(&std::fs::read(util::root().join(CAPTURE)).unwrap());
    let mut v = vec![0xa1, 0xb2, 0xc3, 0xd4];
    v.extend_from_slice(&u16::from_le_bytes([header[4], header[5]]).to_be_bytes());
    v.extend_from_slice(&u16::from_le_bytes([header[6], header[7]]).to_be_bytes());
    for i in [8, 12, 16, 20] {
        v.extend_from_slice(
            &u32::from_le_bytes(header[i..i + 4].try_into().unwrap()).to_be_bytes(),
        );
    }
    for (h, d) in &recs {
        for x in h {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(d);
    }
    let path = temp("be.pcap", &v);
    assert_eq!(essence(&util::analyze_json(&[&path])), essence(&original()));
}

#[test]
fn nanosecond_pcap_reads_the_same() {
    let (mut header, mut recs) = records(&std::fs::read(util::root().join(CAPTURE)).unwrap());
    header[..4].copy_from_slice(&[0x4d, 0x3c, 0xb2, 0xa1]);
    for (h, _) in &mut recs {
        h[1] *= 1000;
    }
    let path = temp("ns.pcap", &write_le(&header, &recs));
    assert_eq!(essence(&util::analyze_json(&[&path])), essence(&original()));
}

#[test]
fn two_files_are_merged_by_time() {
    let (header, recs) = records(&std::fs::read(util::root().join(CAPTURE)).unwrap());
    let odd: Vec<_> = recs.iter().skip(1).step_by(2).cloned().collect();
    let even: Vec<_> = recs.iter().step_by(2).cloned().collect();
    let a = temp("odd.pcap", &write_le(&header, &odd));
    let b = temp("even.pcap", &write_le(&header, &even));
    let merged = util::analyze_json(&[&a, &b]);
    assert_eq!(essence(&merged), essence(&original()));
    assert_eq!(merged["input"]["packets"], original()["input"]["packets"]);
}

#[test]
fn stdin_and_gzip_by_content() {
    let bytes = std::fs::read(util::root().join(CAPTURE)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    // Named .pcap, but gzip inside.
    let path = temp("zipped.pcap", &gz);
    assert_eq!(essence(&util::analyze_json(&[&path])), essence(&original()));

    for input in [bytes, gz] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
            .args(["analyze", "--format", "json", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(essence(&doc), essence(&original()));
        assert_eq!(doc["input"]["files"][0], "-");
    }
}

#[test]
fn truncated_capture_is_analysed_up_to_the_damage() {
    let bytes = std::fs::read(util::root().join(CAPTURE)).unwrap();
    let (_, recs) = records(&bytes);
    // Cut in the middle of the 20th record's data.
    let cut: usize = 24
        + recs
            .iter()
            .take(19)
            .map(|(h, _)| 16 + h[2] as usize)
            .sum::<usize>()
        + 16
        + 10;
    let path = temp("truncated.pcap", &bytes[..cut]);
    let out = util::run(&["analyze", "--format", "json", &path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a truncated capture is not fatal"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["input"]["packets"], 19);
    let w = doc["input"]["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("truncated") && w.contains("after packet 19"),
        "{w}"
    );
    assert_eq!(
        doc["connections"].as_array().unwrap().len(),
        1,
        "what came before the damage is kept"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

#[test]
fn snaplen_cut_packets_are_missing_bytes_not_garbage() {
    let (header, recs) = records(&std::fs::read(util::root().join(CAPTURE)).unwrap());
    for snap in [54usize, 70, 90, 120] {
        let cut: Vec<_> = recs
            .iter()
            .map(|(h, d)| {
                let n = d.len().min(snap);
                ([h[0], h[1], n as u32, h[3]], d[..n].to_vec())
            })
            .collect();
        let path = temp(&format!("snap{snap}.pcap"), &write_le(&header, &cut));
        let doc = util::analyze_json(&[&path]);
        let full = original();
        for c in doc["connections"].as_array().unwrap() {
            // Frames may be lost, never invented.
            for (kind, n) in c["frames"].as_object().unwrap() {
                let orig = &full["connections"][0]["frames"][kind];
                for side in ["client", "server"] {
                    assert!(
                        n[side].as_u64() <= orig[side].as_u64(),
                        "snaplen {snap}: {kind} {side} {n} > {orig}"
                    );
                }
            }
            assert!(
                c["tcp"]["gaps"].as_u64().unwrap() > 0,
                "snaplen {snap}: cut bytes are gaps"
            );
        }
    }
}

#[test]
fn unreadable_input_is_one_line_and_exit_2() {
    let not_capture = temp("notes.txt", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    for args in [
        vec!["analyze", not_capture.as_str()],
        vec!["analyze", "/nonexistent/capture.pcap"],
        vec!["analyze", "--format", "xml", CAPTURE],
    ] {
        let out = util::run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{args:?}");
        if args.len() == 2 {
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(err.contains(args[1]), "says which file: {err}");
        }
    }
    let empty = temp("empty.pcap", b"");
    assert_eq!(util::run(&["analyze", &empty]).status.code(), Some(2));
}

#[test]
fn json_document_has_the_contract_fields() {
    let doc = original();
    assert_eq!(doc["schema"], "h2keepalive/v1");
    for f in [
        "files", "packets", "bytes", "first_ts", "last_ts", "warnings",
    ] {
        assert!(!doc["input"][f].is_null(), "input.{f}");
    }
    let c = &doc["connections"][0];
    for f in [
        "id",
        "client",
        "server",
        "start",
        "end",
        "syn_seen",
        "preface_seen",
        "http2",
        "tls",
        "frames",
        "pings",
        "goaways",
        "rst_streams",
        "streams",
        "tcp",
        "idle",
        "verdict",
    ] {
        assert!(c.get(f).is_some(), "connection.{f}");
    }
    // Values from tshark's dissection of this capture (MANIFEST.md): a SYN from 10.1.23.21:51400,
    // 4 server PINGs each ACKed, one client PING, FIN close.
    assert_eq!(c["client"], "10.1.23.21:51400");
    assert_eq!(c["server"], "10.1.23.22:38888");
    assert_eq!(
        (c["syn_seen"].as_bool(), c["preface_seen"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(c["frames"]["PING"]["server"], 5);
    for k in ["fin", "rst", "retransmissions", "gaps"] {
        assert!(c["tcp"].get(k).is_some(), "tcp.{k}");
    }
    assert!(c["tcp"]["fin"]["client"].is_f64() && c["tcp"]["fin"]["server"].is_f64());
    assert!(c["idle"]["max_transport_idle_s"].as_f64().unwrap() > 1.9);
    // tshark: the client's FIN (frame 37) precedes the server's, with no GOAWAY or RST.
    assert_eq!(
        (
            c["verdict"]["cause"].as_str(),
            c["verdict"]["killed_by"].as_str()
        ),
        (Some("graceful_close"), Some("client"))
    );
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    for p in c["pings"].as_array().unwrap() {
        assert!(p["rtt_ms"].as_f64().unwrap() < 1.0, "{p}");
    }
}

#[test]
fn decode_as_changes_nothing_where_detection_works() {
    let with = util::analyze_json(&["-d", "38888", CAPTURE]);
    assert_eq!(essence(&with), essence(&original()));
}

#[test]
fn text_output_leads_with_the_connection() {
    let out = util::run(&["analyze", CAPTURE]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("10.1.23.21:51400 -> 10.1.23.22:38888"),
        "{text}"
    );
    assert!(
        text.contains("POST /StreamingService/ClientStreamRPC"),
        "{text}"
    );
    assert!(text.contains("server sent 4"), "{text}");
}

#[test]
fn pcapng_with_interfaces_of_different_link_types() {
    let merged = util::analyze_json(&["captures/derived/two-link-types.pcapng"]);
    let eth = util::analyze_json(&[CAPTURE]);
    let null = util::analyze_json(&["captures/public/Bidi_Streaming.pcapng"]);
    let mut want = essence(&null);
    want.extend(essence(&eth));
    assert_eq!(
        essence(&merged),
        want,
        "connections in order of their first packet"
    );
}

#[test]
fn a_four_tuple_reused_after_close_is_a_new_connection() {
    // The same connection (SYN .. FIN both ways) replayed 10 s later on the same 4-tuple.
    let (header, recs) = records(&std::fs::read(util::root().join(CAPTURE)).unwrap());
    let mut twice = recs.clone();
    twice.extend(
        recs.iter()
            .map(|(h, d)| ([h[0] + 10, h[1], h[2], h[3]], d.clone())),
    );
    let path = temp("reused.pcap", &write_le(&header, &twice));
    let doc = util::analyze_json(&[&path]);
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    let first = &original()["connections"][0];
    for (i, c) in conns.iter().enumerate() {
        assert_eq!(c["frames"], first["frames"], "connection {i}");
        assert_eq!(c["client"], first["client"]);
        let shift = 10.0 * i as f64;
        assert!(
            (c["start"].as_f64().unwrap() - first["start"].as_f64().unwrap() - shift).abs() < 1e-6
        );
    }
}
