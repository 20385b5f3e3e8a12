//! Hostile and damaged input, run through the binary as a user would: each adversarial capture of
//! `captures/adversarial/` (made by its `make.py`; the large ones are made at test time into a
//! temporary directory) crosses one named limit. Each test checks that the run does not panic, exits
//! as CONTRACT.md says (analysed: 0 or 1, never 2), names the limit it hit in the JSON or on stderr,
//! and that the child's peak memory (its maxrss from `wait4`) stays under a generous bound. Expected
//! counts come from how the captures are built (see make.py), not from the tool's output.
//!
//! Then damaged files: truncated pcapng and gzip, corrupt pcap records and pcapng blocks are
//! analysed up to the damage, with a warning that says where.

mod util;

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What a child did: exit code (None when killed by a signal), output, and peak resident memory.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    maxrss_mb: i64,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e}); stderr: {}", self.stderr))
    }

    /// Analysed, as CONTRACT.md says of a damaged or hostile capture: exit 0 or 1, no panic.
    fn assert_analysed(&self, what: &str) {
        assert!(
            !self.stderr.contains("panicked"),
            "{what}: panic: {}",
            self.stderr
        );
        assert!(
            matches!(self.code, Some(0) | Some(1)),
            "{what}: exit {:?}: {}",
            self.code,
            self.stderr
        );
    }

    fn assert_memory_below(&self, what: &str, mb: i64) {
        assert!(
            self.maxrss_mb < mb,
            "{what}: peak memory {} MB, bound {mb} MB",
            self.maxrss_mb
        );
    }
}

/// Runs `h2keepalive analyze --format json -q <capture>` and reaps it with `wait4`, whose rusage is
/// that child's alone (RUSAGE_CHILDREN would mix in the other tests' children).
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's Child does not know of
fn analyze(capture: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
        .args(["analyze", "--format", "json", "-q"])
        .arg(capture)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run h2keepalive");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let mut stderr = Vec::new();
    err.read_to_end(&mut stderr).unwrap();
    let stdout = reader.join().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call with pointers to live locals; `rusage` is plain data, zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        // Linux reports ru_maxrss in kilobytes.
        maxrss_mb: usage.ru_maxrss / 1024,
    }
}

fn small(name: &str) -> PathBuf {
    util::root().join("captures/adversarial").join(name)
}

/// The large captures, made once per test run by `make.py --big` into a temporary directory.
fn big(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("h2keepalive-adversarial-{}", std::process::id()));
        let status = Command::new("python3")
            .arg(util::root().join("captures/adversarial/make.py"))
            .arg("--big")
            .arg(&dir)
            .status()
            .expect("python3 captures/adversarial/make.py --big");
        assert!(status.success(), "make.py --big failed");
        dir
    });
    dir.join(name)
}

/// Analyses one of the large captures, then deletes it (each is used by one test; together they
/// are 50 MB of temp space per run).
fn analyze_big(name: &str) -> Run {
    let path = big(name);
    let run = analyze(&path);
    let _ = std::fs::remove_file(&path);
    run
}

/// The only HTTP/2 connection of a document.
fn only_connection(doc: &Value) -> &Value {
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "one HTTP/2 connection expected");
    &conns[0]
}

/// The `limits` notes of a connection, as text (`name: detail`).
fn limits(conn: &Value) -> Vec<String> {
    conn["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["what"].as_str().unwrap().to_string())
        .collect()
}

/// The connection reported a limit whose note starts with `prefix`.
fn assert_limit(conn: &Value, prefix: &str, what: &str) {
    let l = limits(conn);
    assert!(
        l.iter().any(|l| l.starts_with(prefix)),
        "{what}: no {prefix:?} in {l:?}"
    );
}

fn anomalies(conn: &Value) -> Vec<String> {
    conn["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["what"].as_str().unwrap().to_string())
        .collect()
}

fn frames(conn: &Value, kind: &str, from: &str) -> u64 {
    conn["frames"][kind][from].as_u64().unwrap_or(0)
}

/// A bound no small capture comes near (a debug build analysing a small capture peaks around 15 MB).
const SMALL_BOUND_MB: i64 = 200;

// Limits as make.py crosses them (src/tcp/flow.rs, src/tcp/reassembly.rs, src/http2/conn.rs).
const MAX_FLOWS: u64 = 500_000;

#[test]
fn syn_flood_beyond_max_flows_is_refused_and_reported() {
    // make.py syn_flood: 2 * MAX_FLOWS SYNs, each on its own 4-tuple.
    let run = analyze_big("syn-flood.pcap");
    run.assert_analysed("syn flood");
    let refused = 2 * MAX_FLOWS - MAX_FLOWS;
    let doc = run.json();
    let warning = format!(
        "limit max_flows ({MAX_FLOWS}) reached: {refused} TCP connections were not followed"
    );
    let warnings: Vec<&str> = doc["input"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains(&warning)),
        "{warnings:?}"
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    assert_eq!(doc["input"]["packets"], 2 * MAX_FLOWS);
    assert_eq!(doc["connections"].as_array().unwrap().len(), 0);
    assert_eq!(run.code, Some(0), "SYNs alone carry no finding");
    // Half a million flows are followed (about 1 GB in a debug build); were the table unbounded,
    // the million would need twice that.
    run.assert_memory_below("syn flood", 1600);
}

#[test]
fn endless_out_of_order_segments_hit_max_out_of_order_segments() {
    // make.py ooo_segments: max_out_of_order_segments (4096) + 1000 one-byte segments, a hole before each.
    // The table fills at segment 4097; from then each new segment forces one hole to be declared
    // lost: 1000 times.
    let run = analyze_big("ooo-segments.pcap");
    run.assert_analysed("out-of-order segments");
    let doc = run.json();
    let conn = only_connection(&doc);
    assert_limit(
        conn,
        "max_out_of_order_segments: 1000 holes declared lost",
        "segments",
    );
    assert!(!limits(conn)
        .iter()
        .any(|l| l.starts_with("max_out_of_order_bytes")));
    run.assert_memory_below("out-of-order segments", SMALL_BOUND_MB);
}

#[test]
fn out_of_order_bytes_beyond_the_limit_hit_max_out_of_order_bytes() {
    // make.py ooo_bytes: 80 segments of 60000 bytes past a one-byte hole; the 70th takes the buffer
    // past 4 MiB, the hole is declared lost once, and the rest arrives in order.
    let run = analyze_big("ooo-bytes.pcap");
    run.assert_analysed("out-of-order bytes");
    let doc = run.json();
    let conn = only_connection(&doc);
    assert_limit(
        conn,
        "max_out_of_order_bytes: 1 holes declared lost",
        "limit",
    );
    run.assert_memory_below("out-of-order bytes", SMALL_BOUND_MB);
}

#[test]
fn endless_continuation_chain_hits_max_continuation_frames() {
    // make.py continuation_flood: HEADERS, then 1500 one-byte CONTINUATIONs on stream 1, then the
    // server's GOAWAY.
    let run = analyze(&small("continuation-flood.pcap"));
    run.assert_analysed("continuation flood");
    let doc = run.json();
    let conn = only_connection(&doc);
    let l = limits(conn);
    assert!(
        l.iter()
            .any(|l| l.starts_with("max_continuation_frames: header block of stream 1")),
        "{l:?}"
    );
    assert_eq!(l.len(), 1, "reported once per block: {l:?}");
    assert_eq!(frames(conn, "CONTINUATION", "client"), 1500);
    assert_eq!(frames(conn, "GOAWAY", "server"), 1, "framing stays in step");
    run.assert_memory_below("continuation flood", SMALL_BOUND_MB);
}

#[test]
fn hpack_table_size_update_beyond_the_limit_is_reported() {
    let run = analyze(&small("hpack-table-size.pcap"));
    run.assert_analysed("table size update");
    let doc = run.json();
    let conn = only_connection(&doc);
    assert_limit(conn, "hpack_table_size: header block of stream 1", "limit");
    run.assert_memory_below("table size update", SMALL_BOUND_MB);
}

#[test]
fn hpack_bombs_hit_max_decoded_header_list() {
    // Indexed references to one 4000-byte entry, and literals reusing a 4000-byte name: each would
    // decode to tens of megabytes from 16 kB. Stream 1 fills the table; stream 3 is the bomb, its
    // request fields (before the bomb) still decoded.
    for name in ["hpack-bomb-indexed.pcap", "hpack-bomb-literal.pcap"] {
        let run = analyze(&small(name));
        run.assert_analysed(name);
        let doc = run.json();
        let conn = only_connection(&doc);
        assert_limit(
            conn,
            "max_decoded_header_list: header block of stream 3",
            name,
        );
        let s3 = conn["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == 3)
            .unwrap();
        assert_eq!(s3["method"], "/pkg.Svc/Call", "{name}");
        run.assert_memory_below(name, SMALL_BOUND_MB);
    }
}

#[test]
fn frame_declaring_16_mb_is_skipped_and_reported() {
    // make.py frame_16mb: a DATA frame of 2^24 - 1 bytes where 16384 is allowed, then a PING.
    let run = analyze(&small("frame-16mb.pcap"));
    run.assert_analysed("16 MB frame");
    let doc = run.json();
    let conn = only_connection(&doc);
    let a = anomalies(conn);
    assert!(
        a.iter()
            .any(|a| a
                .contains("DATA frame of 16777215 bytes exceeds SETTINGS_MAX_FRAME_SIZE 16384")),
        "{a:?}"
    );
    assert_eq!(frames(conn, "DATA", "client"), 1);
    assert_eq!(
        frames(conn, "PING", "client"),
        1,
        "the frame after it is found"
    );
    run.assert_memory_below("16 MB frame", SMALL_BOUND_MB);
}

#[test]
fn header_block_of_16_mb_hits_max_header_block() {
    // make.py header_block_16mb: a HEADERS frame of 2^24 - 1 bytes, all captured, then a request on
    // stream 3. The block is not kept whole (256 KiB at most), stream 3 is decoded.
    let run = analyze_big("header-block-16mb.pcap");
    run.assert_analysed("16 MB header block");
    let doc = run.json();
    let conn = only_connection(&doc);
    assert_limit(conn, "max_header_block: header block of stream 1", "limit");
    assert!(anomalies(conn)
        .iter()
        .any(|a| a.contains("HEADERS frame of 16777215 bytes")));
    let s3 = conn["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == 3)
        .unwrap();
    assert_eq!(s3["method"], "/after.Big/Block");
    // 16 MB of header block through a framer that keeps 256 KiB: far below the frame's size.
    run.assert_memory_below("16 MB header block", 100);
}

#[test]
fn stream_ids_near_2_pow_31_are_ordinary_streams() {
    let run = analyze(&small("stream-ids-near-2-31.pcap"));
    run.assert_analysed("stream ids near 2^31");
    let doc = run.json();
    let conn = only_connection(&doc);
    let max = (1u64 << 31) - 1;
    let ids: Vec<u64> = conn["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    // The reserved bit on the wire is ignored (§4.1): that request is stream 2^31 - 1.
    assert_eq!(ids, vec![max - 4, max - 2, max]);
    assert_eq!(conn["rst_streams"][0]["stream_id"], max);
    assert_eq!(conn["goaways"][0]["last_stream_id"], max);
    assert!(conn["streams"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["method"] == "/pkg.Svc/Call"));
    run.assert_memory_below("stream ids", SMALL_BOUND_MB);
}

#[test]
fn timestamps_going_backwards_are_a_warning() {
    // make.py time_backwards: T0 .. then 2106 (u32::MAX seconds), then 1970, then T0 + 5: three
    // packets earlier than the latest before them.
    let run = analyze(&small("time-backwards.pcap"));
    run.assert_analysed("time backwards");
    let doc = run.json();
    let warning = "3 packets have a timestamp earlier than the packet before them";
    assert!(
        doc["input"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(warning)),
        "{}",
        doc["input"]["warnings"]
    );
    assert!(run.stderr.contains(warning));
    assert_eq!(doc["input"]["last_ts"], u32::MAX as f64);
    only_connection(&doc);
    run.assert_memory_below("time backwards", SMALL_BOUND_MB);
}

// Damaged files ----------------------------------------------------------------------------------

const PCAP: &str = "captures/public/grpc-service-name.pcap";
const PCAPNG: &str = "captures/public/http2.pcapng";

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("h2keepalive-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Offsets of a little-endian pcap's records.
fn pcap_records(pcap: &[u8]) -> Vec<usize> {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    let mut offsets = Vec::new();
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        offsets.push(pos);
        pos += 16 + u32::from_le_bytes(pcap[pos + 8..pos + 12].try_into().unwrap()) as usize;
    }
    offsets
}

/// Offsets and lengths of a little-endian pcapng's Enhanced Packet Blocks.
fn pcapng_packets(ng: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(
        &ng[8..12],
        &[0x4d, 0x3c, 0x2b, 0x1a],
        "little-endian section"
    );
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= ng.len() {
        let kind = u32::from_le_bytes(ng[pos..pos + 4].try_into().unwrap());
        let len = u32::from_le_bytes(ng[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if kind == 6 {
            out.push((pos, len));
        }
        pos += len;
    }
    out
}

fn single_warning(doc: &Value) -> String {
    let w = doc["input"]["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    w[0].as_str().unwrap().to_string()
}

#[test]
fn truncated_pcapng_is_analysed_up_to_the_damage() {
    let ng = std::fs::read(util::root().join(PCAPNG)).unwrap();
    let packets = pcapng_packets(&ng);
    // Cut in the middle of the sixth packet's block: five packets are whole.
    let (at, len) = packets[5];
    let run = analyze(&temp("truncated.pcapng", &ng[..at + len / 2]));
    run.assert_analysed("truncated pcapng");
    let doc = run.json();
    assert_eq!(doc["input"]["packets"], 5);
    let w = single_warning(&doc);
    assert!(
        w.contains(&format!(
            "truncated: it ends inside a record at byte {at}, after packet 5"
        )),
        "{w}"
    );
    assert!(run.stderr.contains("truncated"));
}

#[test]
fn corrupt_pcapng_block_is_analysed_up_to_the_damage() {
    let mut ng = std::fs::read(util::root().join(PCAPNG)).unwrap();
    let packets = pcapng_packets(&ng);
    // The sixth packet's block length is no longer a multiple of 4 (pcapng requires it).
    let (at, len) = packets[5];
    ng[at + 4..at + 8].copy_from_slice(&(len as u32 + 1).to_le_bytes());
    let run = analyze(&temp("corrupt.pcapng", &ng));
    run.assert_analysed("corrupt pcapng");
    let doc = run.json();
    assert_eq!(doc["input"]["packets"], 5);
    let w = single_warning(&doc);
    assert!(
        w.contains(&format!("corrupt at byte {at}, after packet 5")),
        "{w}"
    );
    assert!(w.contains("the rest is not read"), "{w}");
}

#[test]
fn corrupt_pcap_record_length_is_analysed_up_to_the_damage() {
    let mut pcap = std::fs::read(util::root().join(PCAP)).unwrap();
    let records = pcap_records(&pcap);
    // The eleventh record claims 2 GiB of captured data: more than the file, more than any buffer.
    let at = records[10];
    pcap[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let run = analyze(&temp("corrupt.pcap", &pcap));
    run.assert_analysed("corrupt pcap record");
    let doc = run.json();
    assert_eq!(doc["input"]["packets"], 10);
    let w = single_warning(&doc);
    assert!(w.contains(&format!("at byte {at}, after packet 10")), "{w}");
    run.assert_memory_below("corrupt pcap record", SMALL_BOUND_MB);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn truncated_and_corrupt_gzip_are_analysed_up_to_the_damage() {
    let pcap = std::fs::read(util::root().join(PCAP)).unwrap();
    let total = pcap_records(&pcap).len() as u64;
    let gz = gzip(&pcap);
    let mut corrupt = gz.clone();
    for b in &mut corrupt[gz.len() / 2..gz.len() / 2 + 16] {
        *b ^= 0x55;
    }
    for (name, bytes) in [
        ("truncated.pcap.gz", gz[..gz.len() * 6 / 10].to_vec()),
        ("corrupt.pcap.gz", corrupt),
    ] {
        let run = analyze(&temp(name, &bytes));
        run.assert_analysed(name);
        let doc = run.json();
        let read = doc["input"]["packets"].as_u64().unwrap();
        // Where deflate stops depends on the compressor; what is checked is that some packets came
        // through, not all, and that the warning says after which one it stopped.
        assert!(read > 0 && read < total, "{name}: {read} of {total}");
        let w = single_warning(&doc);
        assert!(w.contains("input stopped at byte"), "{name}: {w}");
        assert!(w.contains(&format!("after packet {read}:")), "{name}: {w}");
        assert!(w.contains("gzip"), "{name}: {w}");
    }
}
