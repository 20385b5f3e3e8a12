//! `--tables DIR`: the connections, events and pings tables, written by the binary as Parquet and
//! as CSV for real captures, read back by readers that owe nothing to h2keepalive
//! (`tests/tables_read.py`: pyarrow, Python's csv module, and DuckDB and polars when installed), and
//! checked against sources that owe nothing to it either:
//! - the column names, types and nullability against `docs/tables.md`;
//! - every public capture against tshark's dissection in `tests/expected/public/` (connections,
//!   frames by type and sender, PINGs and their ACKs with their times, GOAWAYs, RST_STREAMs);
//! - every lab scenario against its `truth.json` (connections with their start and end, frames by
//!   type and sender, PINGs, GOAWAYs, RST_STREAMs, the evidence packets, the true cause).
//!
//! The readers need `python3 -m pip install pyarrow`. Without it the tests that read the tables
//! print a notice and pass, unless `CI=true`, where they fail.

mod util;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TABLES: [&str; 3] = ["connections", "events", "pings"];

/// The RFC 9113 frame types, as `connections` has a pair of columns for each.
const FRAME_TYPES: [&str; 10] = [
    "DATA",
    "HEADERS",
    "PRIORITY",
    "RST_STREAM",
    "SETTINGS",
    "PUSH_PROMISE",
    "PING",
    "GOAWAY",
    "WINDOW_UPDATE",
    "CONTINUATION",
];

/// Whether pyarrow can be imported. Its absence fails under `CI=true` and is a notice elsewhere.
fn reader_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "python3 with pyarrow is missing (python3 -m pip install pyarrow): \
                   the tables are written but not read back";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("notice: {msg}");
    }
    ok
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("h2keepalive-tables-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `analyze --tables` on `args` in both formats, under `dir/parquet` and `dir/csv`.
fn write_tables(dir: &Path, args: &[&str]) -> (PathBuf, PathBuf) {
    let (parquet, csv) = (dir.join("parquet"), dir.join("csv"));
    for (out, format) in [(&parquet, "parquet"), (&csv, "csv")] {
        let mut all = vec![
            "analyze",
            "-q",
            "--tables",
            out.to_str().unwrap(),
            "--tables-format",
            format,
        ];
        all.extend_from_slice(args);
        let run = util::run(&all);
        assert!(
            matches!(run.status.code(), Some(0) | Some(1)),
            "{args:?} --tables-format {format}: exit {:?}: {}",
            run.status.code(),
            String::from_utf8_lossy(&run.stderr)
        );
        let want: Vec<String> = TABLES.iter().map(|t| format!("{t}.{format}")).collect();
        assert_eq!(files_in(out), want, "{args:?}");
    }
    (parquet, csv)
}

/// What `tests/tables_read.py` read from each (Parquet dir, CSV dir) pair.
fn read_back(pairs: &[(PathBuf, PathBuf)]) -> Vec<Value> {
    let mut cmd = Command::new("python3");
    cmd.arg(util::root().join("tests/tables_read.py"));
    for (parquet, csv) in pairs {
        cmd.arg(parquet).arg(csv);
    }
    let out = cmd.output().expect("run python3 tests/tables_read.py");
    assert!(
        out.status.success(),
        "tables_read.py: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from tables_read.py");
    let list = v.as_array().expect("a list").clone();
    assert_eq!(list.len(), pairs.len());
    list
}

/// (name, pyarrow type, nullable) of each column `docs/tables.md` documents for `table`.
fn documented_columns(table: &str) -> Vec<(String, String, bool)> {
    documented_rows(&format!("## {table}"))
        .into_iter()
        .map(|(name, ty)| {
            let (ty, nullable) = match ty.strip_suffix(", null") {
                Some(t) => (t.to_string(), true),
                None => (ty, false),
            };
            let arrow = match ty.as_str() {
                "int64" => "int64",
                "float64" => "double",
                "bool" => "bool",
                "string" => "string",
                "timestamp[us, UTC]" => "timestamp[us, tz=UTC]",
                other => panic!("docs/tables.md: {table}.{name} has unknown type {other}"),
            };
            (name, arrow.to_string(), nullable)
        })
        .collect()
}

/// The closed set of event kinds `docs/tables.md` documents.
fn documented_kinds() -> BTreeSet<String> {
    documented_rows("### Kinds")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// The rows of the Markdown table under `heading` whose first cell is `code`: (that, second cell).
fn documented_rows(heading: &str) -> Vec<(String, String)> {
    let doc = fs::read_to_string(util::root().join("docs/tables.md")).expect("docs/tables.md");
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == heading)
        .unwrap_or_else(|| panic!("docs/tables.md has no {heading}"));
    let rows: Vec<(String, String)> = lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let first = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((first.to_string(), cells.get(2)?.to_string()))
        })
        .collect();
    assert!(!rows.is_empty(), "docs/tables.md: nothing under {heading}");
    rows
}

fn rows<'a>(read: &'a Value, table: &str) -> &'a [Value] {
    read["tables"][table]["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no rows for {table}"))
}

/// Rows of `table` that belong to connection `id`.
fn of<'a>(read: &'a Value, table: &str, id: &Value) -> Vec<&'a Value> {
    rows(read, table)
        .iter()
        .filter(|r| &r["connection_id"] == id)
        .collect()
}

/// Seconds since the epoch (as tshark and the truth files write them) to microseconds.
fn us(seconds: &Value) -> Option<i64> {
    seconds.as_f64().map(|s| (s * 1e6).round() as i64)
}

/// A timestamp read from a table (microseconds) equals seconds from an expectation file, within
/// the rounding of a nanosecond capture to microseconds.
fn same_time(table: &Value, seconds: &Value) -> bool {
    match (table.as_i64(), us(seconds)) {
        (Some(a), Some(b)) => (a - b).abs() <= 1,
        (None, None) => table.is_null() && seconds.is_null(),
        _ => false,
    }
}

/// Checks that hold for every capture: no disagreement between the readers, the documented
/// schema, connection ids, time order and the closed set of event kinds.
fn check_common(what: &str, read: &Value, problems: &mut Vec<String>) {
    for p in read["problems"].as_array().unwrap() {
        problems.push(format!("{what}: {}", p.as_str().unwrap_or_default()));
    }
    for table in TABLES {
        let got: Vec<(String, String, bool)> = read["tables"][table]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                    c["nullable"].as_bool().unwrap(),
                )
            })
            .collect();
        let want = documented_columns(table);
        if got != want {
            let diff: Vec<String> = got
                .iter()
                .zip(want.iter().map(Some).chain(std::iter::repeat(None)))
                .filter(|(g, w)| Some(*g) != *w)
                .map(|(g, w)| format!("{g:?} documented as {w:?}"))
                .collect();
            problems.push(format!(
                "{what}: {table} has {} columns, documented {}; first differences: {:?}",
                got.len(),
                want.len(),
                &diff[..diff.len().min(3)]
            ));
        }
    }
    let ids: Vec<i64> = rows(read, "connections")
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    if ids.windows(2).any(|w| w[0] >= w[1]) {
        problems.push(format!("{what}: connection ids not ascending: {ids:?}"));
    }
    let kinds = documented_kinds();
    for table in ["events", "pings"] {
        let mut last: Option<(i64, i64)> = None;
        for r in rows(read, table) {
            let key = (
                r["connection_id"].as_i64().unwrap(),
                r["ts"].as_i64().unwrap(),
            );
            if !ids.contains(&key.0) {
                problems.push(format!("{what}: {table} row of no connection: {r}"));
            }
            if last.is_some_and(|l| key < l) {
                problems.push(format!("{what}: {table} out of order at {r}"));
            }
            last = Some(key);
            if table == "events" && !kinds.contains(r["kind"].as_str().unwrap_or_default()) {
                problems.push(format!("{what}: undocumented event kind in {r}"));
            }
        }
    }
}

fn count(rows: &[&Value], pred: impl Fn(&Value) -> bool) -> usize {
    rows.iter().filter(|r| pred(r)).count()
}

/// One public capture against tshark's dissection of it.
fn check_public(capture: &str, e: &Value, read: &Value, problems: &mut Vec<String>) {
    let conns = rows(read, "connections");
    let theirs = e["connections"].as_array().unwrap();
    if conns.len() != theirs.len() {
        problems.push(format!(
            "{capture}: {} connections, tshark {}",
            conns.len(),
            theirs.len()
        ));
    }
    for t in theirs {
        let endpoints: BTreeSet<&str> = t["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let Some(c) = conns.iter().find(|c| {
            BTreeSet::from([c["client"].as_str().unwrap(), c["server"].as_str().unwrap()])
                == endpoints
        }) else {
            problems.push(format!("{capture}: no row for connection {endpoints:?}"));
            continue;
        };
        let at = format!("{capture} {}", c["client"]);
        if let Some(syn) = t["syn_from"].as_str() {
            if c["client"] != syn {
                problems.push(format!("{at}: client is not the SYN's sender {syn}"));
            }
        }
        // Frames by type and sender; PING columns count ACKs too.
        for side in ["client", "server"] {
            let frames = &t["frames"][c[side].as_str().unwrap()];
            let n = |k: &str| frames[k].as_i64().unwrap_or(0);
            for kind in FRAME_TYPES {
                let want = n(kind) + if kind == "PING" { n("PING_ACK") } else { 0 };
                let column = format!("{}_{side}", kind.to_ascii_lowercase());
                if c[&column] != want {
                    problems.push(format!("{at}: {column} {}, tshark {want}", c[&column]));
                }
            }
            let unknown: i64 = frames
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.starts_with("UNKNOWN_"))
                        .map(|(_, v)| v.as_i64().unwrap_or(0))
                        .sum()
                })
                .unwrap_or(0);
            if c[format!("unknown_{side}")] != unknown {
                problems.push(format!("{at}: unknown_{side}, tshark {unknown}"));
            }
            if c[format!("pings_sent_{side}")] != n("PING") {
                problems.push(format!("{at}: pings_sent_{side}, tshark {}", n("PING")));
            }
        }
        let id = &c["id"];
        let (events, pings) = (of(read, "events", id), of(read, "pings", id));
        let tp = t["pings"].as_array().unwrap();
        // pings: one row per PING, plus one per ACK that answers none in the capture.
        let want = count(&tp.iter().collect::<Vec<_>>(), |p| {
            p["ack"] == false || p["answers_ping_in_capture"] == false
        });
        if pings.len() != want {
            problems.push(format!("{at}: {} pings rows, tshark {want}", pings.len()));
        }
        for p in tp.iter().filter(|p| p["ack"] == false) {
            let side = if p["from"] == c["client"] {
                "client"
            } else {
                "server"
            };
            let found = pings.iter().any(|r| {
                r["ack"] == false
                    && r["from"] == side
                    && r["opaque"] == p["opaque"]
                    && same_time(&r["ts"], &p["ts"])
                    && same_time(&r["acked_at"], &p["acked_at"])
            });
            if !found {
                problems.push(format!("{at}: no pings row for tshark's {p}"));
            }
        }
        // events: a PING or PING_ACK row for every PING frame, a row for every GOAWAY and
        // RST_STREAM, with their fields and times.
        let ping_events = count(&events, |r| r["kind"] == "PING" || r["kind"] == "PING_ACK");
        if ping_events != tp.len() {
            problems.push(format!(
                "{at}: {ping_events} PING/PING_ACK events, tshark {} PING frames",
                tp.len()
            ));
        }
        for (kind, list, fields) in [
            (
                "GOAWAY",
                &t["goaways"],
                &["last_stream_id", "error_code"][..],
            ),
            (
                "RST_STREAM",
                &t["rst_streams"],
                &["stream_id", "error_code"][..],
            ),
        ] {
            let list = list.as_array().unwrap();
            let n = count(&events, |r| r["kind"] == kind);
            if n != list.len() {
                problems.push(format!("{at}: {n} {kind} events, tshark {}", list.len()));
            }
            for x in list {
                let side = if x["from"] == c["client"] {
                    "client"
                } else {
                    "server"
                };
                let found = events.iter().any(|r| {
                    r["kind"] == kind
                        && r["from"] == side
                        && same_time(&r["ts"], &x["ts"])
                        && fields.iter().all(|f| r[f] == x[f])
                });
                if !found {
                    problems.push(format!("{at}: no {kind} event for tshark's {x}"));
                }
            }
        }
        if c["goaways"] != list_len(&t["goaways"])
            || c["rst_streams"] != list_len(&t["rst_streams"])
        {
            problems.push(format!(
                "{at}: goaways/rst_streams counts differ from tshark"
            ));
        }
    }
}

fn list_len(v: &Value) -> Value {
    Value::from(v.as_array().map_or(0, Vec::len))
}

/// One lab scenario against its truth.
fn check_lab(name: &str, truth: &Value, read: &Value, problems: &mut Vec<String>) {
    let conns = rows(read, "connections");
    let theirs = truth["connections"].as_array().unwrap();
    if conns.len() != theirs.len() {
        problems.push(format!(
            "{name}: {} connections, truth {}",
            conns.len(),
            theirs.len()
        ));
    }
    for t in theirs {
        let Some(c) = conns
            .iter()
            .find(|c| c["client"] == t["client"] && c["server"] == t["server"])
        else {
            problems.push(format!(
                "{name}: no row for {} -> {}",
                t["client"], t["server"]
            ));
            continue;
        };
        let at = format!("{name} {}", t["client"]);
        for (column, key) in [("start", "start"), ("end", "end")] {
            if !same_time(&c[column], &t[key]) {
                problems.push(format!("{at}: {column} {}, truth {}", c[column], t[key]));
            }
        }
        for (column, key) in [
            ("syn_seen", "syn_seen"),
            ("verdict_cause", "cause"),
            ("verdict_killed_by", "killed_by"),
        ] {
            if !t[key].is_null() && c[column] != t[key] {
                problems.push(format!("{at}: {column} {}, truth {}", c[column], t[key]));
            }
        }
        let f = &t["frames"];
        let n = |kind: &str, side: &str| f[kind][side].as_i64().unwrap_or(0);
        for side in ["client", "server"] {
            for kind in FRAME_TYPES {
                let want = n(kind, side)
                    + if kind == "PING" {
                        n("PING_ACK", side)
                    } else {
                        0
                    };
                let column = format!("{}_{side}", kind.to_ascii_lowercase());
                if c[&column] != want {
                    problems.push(format!("{at}: {column} {}, truth {want}", c[&column]));
                }
            }
            if c[format!("pings_sent_{side}")] != n("PING", side) {
                problems.push(format!(
                    "{at}: pings_sent_{side}, truth {}",
                    n("PING", side)
                ));
            }
        }
        let both = |kind: &str| (n(kind, "client") + n(kind, "server")) as usize;
        let id = &c["id"];
        let (events, pings) = (of(read, "events", id), of(read, "pings", id));
        // Every PING is a row of `pings`, and every ACK either fills one's acked_at or is a row
        // of its own.
        let sent = count(&pings, |p| p["ack"] == false);
        let acks = count(&pings, |p| p["ack"] == true || !p["acked_at"].is_null());
        if sent != both("PING") || acks != both("PING_ACK") {
            problems.push(format!(
                "{at}: pings rows: {sent} PINGs and {acks} ACKs, truth {} and {}",
                both("PING"),
                both("PING_ACK")
            ));
        }
        for (kinds, want) in [
            (&["PING", "PING_ACK"][..], both("PING") + both("PING_ACK")),
            (&["GOAWAY"][..], both("GOAWAY")),
            (&["RST_STREAM"][..], both("RST_STREAM")),
        ] {
            let got = count(&events, |r| kinds.iter().any(|k| r["kind"] == *k));
            if got != want {
                problems.push(format!("{at}: {got} {kinds:?} events, truth {want}"));
            }
        }
        for e in t["evidence"].as_array().unwrap() {
            let from = &e["from"];
            let found = match e["type"].as_str().unwrap() {
                "tcp_fin" => {
                    same_time(&c[format!("fin_{}", from.as_str().unwrap())], &e["ts"])
                        && events.iter().any(|r| {
                            r["kind"] == "FIN"
                                && &r["from"] == from
                                && same_time(&r["ts"], &e["ts"])
                        })
                }
                "tcp_rst" => events.iter().any(|r| {
                    r["kind"] == "RST"
                        && &r["from"] == from
                        && r["ttl"] == e["ttl"]
                        && r["suspect_forged"] == e["forged"]
                        && same_time(&r["ts"], &e["ts"])
                }),
                "goaway" => events.iter().any(|r| {
                    r["kind"] == "GOAWAY"
                        && &r["from"] == from
                        && r["error_code"] == e["error_code"]
                        && r["last_stream_id"] == e["last_stream_id"]
                        && r["debug_data"].as_str()
                            == Some(
                                e["debug_data"]
                                    .as_str()
                                    .unwrap_or("")
                                    .trim_end_matches('\0'),
                            )
                        && same_time(&r["ts"], &e["ts"])
                }),
                "ping_unanswered" => {
                    let n = count(&pings, |p| {
                        &p["from"] == from && p["ack"] == false && p["acked_at"].is_null()
                    });
                    e["count"] == n
                }
                "retransmissions" => {
                    let n = count(&events, |r| {
                        r["kind"] == "RETRANSMISSION" && &r["from"] == from
                    });
                    e["count"] == n
                }
                other => {
                    problems.push(format!("{at}: unknown evidence type {other}"));
                    continue;
                }
            };
            if !found {
                problems.push(format!("{at}: evidence not in the tables: {e}"));
            }
        }
    }
}

fn report(problems: &[String], checked: usize, what: &str) {
    assert!(
        problems.is_empty(),
        "{} problems in {checked} {what}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn public_captures_tables_match_tshark() {
    if !reader_available() {
        return;
    }
    let expected = util::root().join("tests/expected/public");
    let known: Value =
        serde_json::from_str(&fs::read_to_string(expected.join("known_differences.json")).unwrap())
            .unwrap();
    let base = scratch("public");
    let mut cases: Vec<(String, Value)> = Vec::new();
    let mut pairs = Vec::new();
    for file in files_in(&expected) {
        if !file.ends_with(".json") || file == "known_differences.json" || file == "findings.json" {
            continue;
        }
        let e: Value =
            serde_json::from_str(&fs::read_to_string(expected.join(&file)).unwrap()).unwrap();
        let capture = e["capture"].as_str().unwrap().to_string();
        // TLS needs keys, and connections tshark knowingly dissects otherwise would change the
        // counts: both are left to tests/public_captures.rs.
        if e["needs_keylog"] == true || known.get(&capture).is_some() {
            continue;
        }
        let path = format!("captures/public/{capture}");
        pairs.push(write_tables(&base.join(&capture), &[&path]));
        cases.push((capture, e));
    }
    assert!(cases.len() >= 30, "only {} public captures", cases.len());
    let reads = read_back(&pairs);
    let mut problems = Vec::new();
    for ((capture, e), read) in cases.iter().zip(&reads) {
        check_common(capture, read, &mut problems);
        check_public(capture, e, read, &mut problems);
    }
    report(&problems, cases.len(), "public captures");
    eprintln!(
        "{} public captures read back by {}",
        cases.len(),
        reads[0]["readers"]
    );
    let _ = fs::remove_dir_all(base);
}

#[test]
fn lab_captures_tables_match_their_truth() {
    if !reader_available() {
        return;
    }
    let base = scratch("lab");
    let mut cases: Vec<(String, Value)> = Vec::new();
    let mut pairs = Vec::new();
    for dir in files_in(&util::root().join("captures")) {
        let dir = util::root().join("captures").join(dir);
        let Ok(truth) = fs::read_to_string(dir.join("truth.json")) else {
            continue;
        };
        let truth: Value = serde_json::from_str(&truth).unwrap();
        // TLS scenarios need decryption (as in tests/lab_captures.rs).
        if truth["stacks"].to_string().contains("TLS") || dir.join("keylog.txt").exists() {
            continue;
        }
        let name = truth["scenario"].as_str().unwrap().to_string();
        let capture = dir.join(truth["capture"].as_str().unwrap());
        pairs.push(write_tables(
            &base.join(&name),
            &[capture.to_str().unwrap()],
        ));
        cases.push((name, truth));
    }
    assert!(cases.len() >= 12, "only {} lab scenarios", cases.len());
    let reads = read_back(&pairs);
    let mut problems = Vec::new();
    let mut connections = 0;
    for ((name, truth), read) in cases.iter().zip(&reads) {
        connections += truth["connections"].as_array().map_or(0, Vec::len);
        check_common(name, read, &mut problems);
        check_lab(name, truth, read, &mut problems);
    }
    report(&problems, cases.len(), "lab scenarios");
    assert!(connections >= 100, "only {connections} connections checked");
    let _ = fs::remove_dir_all(base);
}

/// A capture without HTTP/2 still gives the three tables, empty, with their documented columns.
#[test]
fn empty_capture_gives_empty_tables_with_their_schema() {
    if !reader_available() {
        return;
    }
    let base = scratch("empty");
    fs::create_dir_all(&base).unwrap();
    // A pcap global header (microseconds, Ethernet) and no packet.
    let capture = base.join("empty.pcap");
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    fs::write(&capture, header).unwrap();
    let pair = write_tables(&base, &[capture.to_str().unwrap()]);
    let read = &read_back(&[pair])[0];
    let mut problems = Vec::new();
    check_common("empty.pcap", read, &mut problems);
    for table in TABLES {
        if !rows(read, table).is_empty() {
            problems.push(format!("empty.pcap: {table} has rows"));
        }
    }
    report(&problems, 1, "captures");
    let _ = fs::remove_dir_all(base);
}

/// Without a reader: `--tables` creates the directory with its parents, Parquet is the default
/// format, and the CSV header is the documented column list.
#[test]
fn tables_dir_is_created_and_parquet_is_the_default() {
    let base = scratch("created");
    let dir = base.join("a/b/tables");
    let out = util::run(&[
        "analyze",
        "-q",
        "--tables",
        dir.to_str().unwrap(),
        "captures/nat-reset/capture.pcap",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        files_in(&dir),
        ["connections.parquet", "events.parquet", "pings.parquet"]
    );
    for table in TABLES {
        let bytes = fs::read(dir.join(format!("{table}.parquet"))).unwrap();
        // A Parquet file starts and ends with the magic number.
        assert!(
            bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
            "{table}"
        );
    }
    let csv = base.join("csv");
    let out = util::run(&[
        "analyze",
        "-q",
        "--tables",
        csv.to_str().unwrap(),
        "--tables-format",
        "csv",
        "captures/nat-reset/capture.pcap",
    ]);
    assert_eq!(out.status.code(), Some(1));
    for table in TABLES {
        let text = fs::read_to_string(csv.join(format!("{table}.csv"))).unwrap();
        let header = text.lines().next().unwrap_or_default();
        let want: Vec<String> = documented_columns(table).into_iter().map(|c| c.0).collect();
        assert_eq!(header, want.join(","), "{table}.csv");
    }
    let _ = fs::remove_dir_all(base);
}

/// A --tables path that is a file is a fatal error: exit 2, one line on stderr naming it.
#[test]
fn tables_into_a_file_exits_2() {
    let base = scratch("file");
    fs::create_dir_all(&base).unwrap();
    let file = base.join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let out = util::run(&[
        "analyze",
        "-q",
        "--tables",
        file.to_str().unwrap(),
        "captures/nat-reset/capture.pcap",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    let _ = fs::remove_dir_all(base);
}

/// Per connection, the events of the tables are those of the JSON document: the same PINGs,
/// GOAWAYs, RST_STREAMs, FINs and RSTs at the same times (renderers show what the model says).
#[test]
fn tables_and_json_agree() {
    if !reader_available() {
        return;
    }
    let base = scratch("json");
    let capture = "captures/nat-drop/capture.pcap";
    let pair = write_tables(&base, &[capture]);
    let read = &read_back(&[pair])[0];
    let doc = util::analyze_json(&[capture]);
    let mut problems = Vec::new();
    for c in doc["connections"].as_array().unwrap() {
        let id = &c["id"];
        let events = of(read, "events", id);
        let times = |kind: &str| -> BTreeMap<i64, usize> {
            let mut m = BTreeMap::new();
            for r in events.iter().filter(|r| r["kind"] == kind) {
                *m.entry(r["ts"].as_i64().unwrap()).or_default() += 1;
            }
            m
        };
        let json_times = |list: &Value| -> BTreeMap<i64, usize> {
            let mut m = BTreeMap::new();
            for x in list.as_array().unwrap() {
                *m.entry(us(&x["ts"]).unwrap()).or_default() += 1;
            }
            m
        };
        let pings_json: Vec<&Value> = c["pings"].as_array().unwrap().iter().collect();
        let checks = [
            ("GOAWAY", json_times(&c["goaways"])),
            ("RST_STREAM", json_times(&c["rst_streams"])),
            ("RST", json_times(&c["tcp"]["rst"])),
            (
                "PING",
                json_times(&Value::from(
                    pings_json
                        .iter()
                        .filter(|p| p["ack"] == false)
                        .map(|p| (*p).clone())
                        .collect::<Vec<_>>(),
                )),
            ),
        ];
        for (kind, want) in checks {
            if times(kind) != want {
                problems.push(format!(
                    "connection {id}: {kind} events differ from the JSON"
                ));
            }
        }
        let fins = ["client", "server"]
            .iter()
            .filter(|s| !c["tcp"]["fin"][**s].is_null())
            .count();
        if times("FIN").values().sum::<usize>() != fins {
            problems.push(format!("connection {id}: FIN events differ from the JSON"));
        }
        let row = rows(read, "connections").iter().find(|r| &r["id"] == id);
        let Some(row) = row else {
            problems.push(format!("connection {id}: no row"));
            continue;
        };
        for (column, value) in [
            ("verdict_cause", &c["verdict"]["cause"]),
            ("verdict_killed_by", &c["verdict"]["killed_by"]),
            ("retransmissions", &c["tcp"]["retransmissions"]),
            ("max_transport_idle_s", &c["idle"]["max_transport_idle_s"]),
        ] {
            if &row[column] != value {
                problems.push(format!(
                    "connection {id}: {column} {} in JSON {value}",
                    row[column]
                ));
            }
        }
        let evidence: Vec<&str> = c["verdict"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        if row["verdict_evidence"] != evidence.join("\n") {
            problems.push(format!(
                "connection {id}: verdict_evidence differs from the JSON"
            ));
        }
    }
    report(&problems, 1, "captures");
    let _ = fs::remove_dir_all(base);
}
