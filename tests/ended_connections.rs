//! Connections are summarised when they end (report/store.rs): a closed connection leaves the flow
//! table 60 s (Linux's TIME_WAIT) after its last packet, and with `--format json` alone only its
//! JSON text is kept. These tests check that neither changes what is reported.

mod util;

use serde_json::Value;
use std::path::PathBuf;
use util::{root, run};

/// The document kept as JSON text (`--format json` alone) and built as a model for the other
/// renderers (`--format json --tables ...`) must be the same bytes.
#[test]
fn json_alone_is_the_json_written_beside_reports() {
    let dir = std::env::temp_dir().join(format!("h2k-ended-{}", std::process::id()));
    let tables = dir.join("tables");
    let tables = tables.to_str().expect("utf-8 temp dir");
    for capture in [
        "captures/server-max-idle/capture.pcap",
        "captures/nat-reset/capture.pcap",
        "captures/tls12-chacha-too-many-pings/capture-with-secrets.pcapng",
        "captures/public/grpc-service-name.pcap",
    ] {
        if !root().join(capture).exists() {
            panic!("{capture} is missing");
        }
        let alone = run(&["analyze", "--format", "json", "-q", capture]);
        let beside = run(&[
            "analyze",
            "--format",
            "json",
            "-q",
            "--tables",
            tables,
            "--tables-format",
            "csv",
            capture,
        ]);
        assert!(matches!(alone.status.code(), Some(0 | 1)), "{capture}");
        assert_eq!(alone.status.code(), beside.status.code(), "{capture}");
        assert!(
            alone.stdout == beside.stdout,
            "{capture}: --format json differs with --tables"
        );
        let doc: Value = serde_json::from_slice(&alone.stdout).expect("JSON");
        assert!(!doc["connections"].as_array().expect("array").is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records of a little-endian microsecond pcap: (offset, length including the 16-byte header).
fn records(pcap: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[pos + 8..pos + 12].try_into().unwrap()) as usize;
        out.push((pos, 16 + incl));
        pos += 16 + incl;
    }
    out
}

fn ts_us(rec: &[u8]) -> u64 {
    let s = u32::from_le_bytes(rec[0..4].try_into().unwrap()) as u64;
    let us = u32::from_le_bytes(rec[4..8].try_into().unwrap()) as u64;
    s * 1_000_000 + us
}

fn with_ts(rec: &[u8], ts_us: u64) -> Vec<u8> {
    let mut r = rec.to_vec();
    r[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
    r[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
    r
}

/// Ethernet + IPv4 + TCP: is the FIN flag set?
fn is_tcp_fin(rec: &[u8]) -> bool {
    let p = &rec[16..];
    if p.len() < 14 + 20 + 20 || p[12..14] != [0x08, 0x00] || p[14 + 9] != 6 {
        return false;
    }
    let ihl = (p[14] & 0x0f) as usize * 4;
    p.get(14 + ihl + 13).is_some_and(|f| f & 0x01 != 0)
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("h2k-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write temp capture");
    path
}

fn analyze(path: &str) -> Value {
    let out = run(&["analyze", "--format", "json", "-q", path]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{path}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A copy of the last FIN 30 s after the capture's end still belongs to its connection (within
/// TIME_WAIT of its last packet); another 90 s after that copy starts a connection of its own.
#[test]
fn late_packets_join_a_closed_connection_only_within_time_wait() {
    let src = "captures/server-max-idle/capture.pcap";
    let pcap = std::fs::read(root().join(src)).expect("capture");
    let recs = records(&pcap);
    let (fin_at, fin_len) = *recs
        .iter()
        .rev()
        .find(|&&(at, len)| is_tcp_fin(&pcap[at..at + len]))
        .expect("a FIN in the capture");
    let fin = &pcap[fin_at..fin_at + fin_len];
    let end = recs
        .iter()
        .map(|&(at, len)| ts_us(&pcap[at..at + len]))
        .max()
        .unwrap();

    let before = analyze(src);
    let mut joined = pcap.clone();
    joined.extend(with_ts(fin, end + 30_000_000));
    let joined_path = write_temp("joined.pcap", &joined);
    let after_join = analyze(joined_path.to_str().unwrap());
    let mut separate = joined.clone();
    separate.extend(with_ts(fin, end + 120_000_000));
    let separate_path = write_temp("separate.pcap", &separate);
    let after_separate = analyze(separate_path.to_str().unwrap());
    let _ = std::fs::remove_file(&joined_path);
    let _ = std::fs::remove_file(&separate_path);

    let count = |d: &Value, k: &str| d["input"][k].as_u64().expect(k);
    let late = (end + 30_000_000) as f64 / 1e6;
    // Joined: no new connection, and the connection of that FIN now ends at the late copy.
    assert_eq!(
        count(&after_join, "tcp_connections"),
        count(&before, "tcp_connections")
    );
    let ends: Vec<f64> = after_join["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["end"].as_f64().unwrap())
        .collect();
    assert!(
        ends.iter().any(|e| (e - late).abs() < 1e-5),
        "no connection ends at the late FIN ({late}): {ends:?}"
    );
    // Separate: one more TCP connection, not HTTP/2; the HTTP/2 connections are unchanged.
    assert_eq!(
        count(&after_separate, "tcp_connections"),
        count(&before, "tcp_connections") + 1
    );
    assert_eq!(
        count(&after_separate, "http2_connections"),
        count(&before, "http2_connections")
    );
    assert_eq!(after_separate["connections"], after_join["connections"]);
}

/// The JSON text of ended connections goes to a temporary file in blocks; where none can be made
/// (`TMPDIR` is not a directory) the blocks are compressed in memory instead. Both must give the
/// document the model gives (`--tables` beside), over enough connections to fill many blocks.
#[test]
fn spilled_and_in_memory_texts_give_the_same_document() {
    let mut captures: Vec<String> = std::fs::read_dir(root().join("captures"))
        .expect("captures/")
        .flatten()
        .filter(|d| d.file_name() != "adversarial" && d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).expect("capture dir").flatten())
        .map(|f| f.path())
        .filter(|p| {
            let name = p.to_string_lossy();
            let capture = [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"];
            capture.iter().any(|e| name.ends_with(e)) && !name.contains("fuzz")
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    captures.sort();
    let dir = std::env::temp_dir().join(format!("h2k-spill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, b"").expect("temp file");
    let tables = dir.join("tables");
    let run_with = |tmpdir: &std::path::Path, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
            .args(["analyze", "--format", "json", "-q"])
            .args(extra)
            .args(&captures)
            .env("TMPDIR", tmpdir)
            .current_dir(root())
            .output()
            .expect("run h2keepalive");
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        out.stdout
    };
    let spilled = run_with(&dir, &[]);
    let in_memory = run_with(&not_a_dir, &[]);
    let tables = tables.to_str().expect("utf-8 temp dir");
    let model = run_with(&dir, &["--tables", tables, "--tables-format", "csv"]);
    assert!(
        spilled.len() > 2 * 256 * 1024,
        "{} bytes of JSON: too few to fill several blocks",
        spilled.len()
    );
    assert!(
        spilled == model,
        "spilled text differs from the model's JSON"
    );
    assert!(
        in_memory == model,
        "text kept in memory differs from the model's JSON"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("temp dir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("h2keepalive-"))
        .collect();
    assert!(left.is_empty(), "spill files left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
