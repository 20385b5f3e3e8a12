//! Every public capture in `captures/public/` analysed by the binary, checked connection by
//! connection against tshark's dissection recorded in `tests/expected/public/*.json` (made by
//! `tests/expected/public/generate.py`, never from h2keepalive's output).
//!
//! h2keepalive runs WITHOUT `--decode-as`: detection must not need it, although tshark did.

mod util;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Per sender endpoint: frame type (PING and PING_ACK apart, GOAWAY:CODE as well) → count.
type Counts = BTreeMap<String, BTreeMap<String, u64>>;

fn ours_counts(c: &Value) -> Counts {
    let mut out = Counts::new();
    for side in ["client", "server"] {
        let ep = c[side].as_str().unwrap().to_string();
        let m = out.entry(ep).or_default();
        for (name, n) in c["frames"].as_object().unwrap() {
            let v = n[side].as_u64().unwrap();
            if v > 0 && name != "PING" && name != "GOAWAY" {
                m.insert(name.clone(), v);
            }
        }
        let pings = c["pings"].as_array().unwrap();
        let sent = pings
            .iter()
            .filter(|p| p["from"] == side && p["ack"] == false)
            .count() as u64;
        let total = c["frames"]["PING"][side].as_u64().unwrap();
        if sent > 0 {
            m.insert("PING".into(), sent);
        }
        if total > sent {
            m.insert("PING_ACK".into(), total - sent);
        }
        let goaways: Vec<&Value> = c["goaways"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["from"] == side)
            .collect();
        if !goaways.is_empty() {
            m.insert("GOAWAY".into(), goaways.len() as u64);
        }
        for g in goaways {
            *m.entry(format!("GOAWAY:{}", g["error_code"].as_str().unwrap()))
                .or_default() += 1;
        }
    }
    out.retain(|_, m| !m.is_empty());
    out
}

fn tshark_counts(e: &Value) -> Counts {
    let mut out = Counts::new();
    for (ep, m) in e["frames"].as_object().unwrap() {
        let m: BTreeMap<String, u64> = m
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .filter(|(_, v)| *v > 0)
            .collect();
        if !m.is_empty() {
            out.insert(ep.clone(), m);
        }
    }
    out
}

fn pair(c: &Value) -> BTreeSet<String> {
    [
        c["client"].as_str().unwrap().to_string(),
        c["server"].as_str().unwrap().to_string(),
    ]
    .into()
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 2e-6,
        (None, None) => true,
        _ => false,
    }
}

/// (last stream id, error code, debug data in hex) of each GOAWAY, in order. Both our JSON and the
/// tshark expectations use these field names; tshark's omit `debug_data_hex` when it is empty.
fn goaways(c: &Value) -> Vec<(u64, String, String)> {
    c["goaways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["last_stream_id"].as_u64().unwrap(),
                g["error_code"].as_str().unwrap().into(),
                g["debug_data_hex"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

/// (stream id, error code) of each RST_STREAM, in order.
fn rst_streams(c: &Value) -> Vec<(u64, String)> {
    c["rst_streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["stream_id"].as_u64().unwrap(),
                r["error_code"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Compares one capture; returns the disagreements.
fn check(expect_path: &Path) -> Vec<String> {
    let e: Value = serde_json::from_str(&std::fs::read_to_string(expect_path).unwrap()).unwrap();
    let capture = e["capture"].as_str().unwrap();
    let known_path = expect_path.with_file_name("known_differences.json");
    let known_all: Value =
        serde_json::from_str(&std::fs::read_to_string(known_path).unwrap()).unwrap();
    let path = format!("captures/public/{capture}");
    // TLS captures: the key log tshark was given, given to us too.
    let keylog = e["tshark_command"][0]
        .as_str()
        .and_then(|c| c.split("tls.keylog_file:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|k| format!("captures/public/{k}"));
    let doc = match &keylog {
        Some(k) => util::analyze_json(&[&path, "--keylog", k]),
        None => util::analyze_json(&[&path]),
    };
    let mut problems = Vec::new();
    // Connections tshark and we are known to disagree about, each with its reason.
    let known: BTreeSet<BTreeSet<String>> = known_all[capture]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    assert!(
                        d["why"].as_str().is_some_and(|w| w.len() > 20),
                        "{capture}: a known difference needs its reason"
                    );
                    d["endpoints"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_string())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    let ours: BTreeMap<BTreeSet<String>, &Value> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (pair(c), c))
        .collect();
    let theirs: BTreeMap<BTreeSet<String>, &Value> = e["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
                c,
            )
        })
        .collect();
    for key in ours.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
        if known.contains(key) {
            continue;
        }
        let (Some(o), Some(t)) = (ours.get(key), theirs.get(key)) else {
            problems.push(format!(
                "{capture}: connection {key:?} found by {}",
                if ours.contains_key(key) {
                    "us only"
                } else {
                    "tshark only"
                }
            ));
            continue;
        };
        let (oc, tc) = (ours_counts(o), tshark_counts(t));
        if oc != tc {
            problems.push(format!(
                "{capture} {key:?}: frames differ\n  ours   {oc:?}\n  tshark {tc:?}"
            ));
        }
        if let Some(syn) = t["syn_from"].as_str() {
            if o["client"] != syn {
                problems.push(format!(
                    "{capture} {key:?}: client is {} but the SYN came from {syn}",
                    o["client"]
                ));
            }
        }
        // PINGs: each one tshark saw answered has its ACK paired by us at the same times.
        let op = o["pings"].as_array().unwrap();
        for tp in t["pings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["ack"] == false)
        {
            let side = if tp["from"] == o["client"] {
                "client"
            } else {
                "server"
            };
            let found = op.iter().any(|p| {
                p["ack"] == false
                    && p["from"] == side
                    && p["opaque"] == tp["opaque"]
                    && close(&p["ts"], &tp["ts"])
                    && close(&p["acked_at"], &tp["acked_at"])
            });
            if !found {
                problems.push(format!(
                    "{capture} {key:?}: PING {tp} not found paired the same way"
                ));
            }
        }
        let (og, tg) = (goaways(o), goaways(t));
        if og != tg {
            problems.push(format!(
                "{capture} {key:?}: GOAWAYs differ\n  ours   {og:?}\n  tshark {tg:?}"
            ));
        }
        let (ors, trs) = (rst_streams(o), rst_streams(t));
        if ors != trs {
            problems.push(format!(
                "{capture} {key:?}: RST_STREAMs differ\n  ours   {ors:?}\n  tshark {trs:?}"
            ));
        }
    }
    problems
}

/// Clean captures raise no alarm: a warning or error finding on a public capture must be one that
/// `findings.json` lists with its reason, and each listed one must be reported.
fn findings_are_expected(files: &[std::path::PathBuf]) -> Vec<String> {
    let listed: Value = serde_json::from_str(
        &std::fs::read_to_string(util::root().join("tests/expected/public/findings.json")).unwrap(),
    )
    .unwrap();
    let mut problems = Vec::new();
    for f in files {
        let e: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let capture = e["capture"].as_str().unwrap();
        let doc = util::analyze_json(&[&format!("captures/public/{capture}")]);
        let alarms: BTreeSet<String> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "warning" || f["severity"] == "error")
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = listed[capture]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if alarms != expected {
            problems.push(format!(
                "{capture}: warning/error findings {alarms:?}, expected {expected:?}"
            ));
        }
    }
    problems
}

#[test]
fn every_public_capture_agrees_with_tshark() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected/public");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.ends_with("known_differences.json")
                && !p.ends_with("findings.json")
        })
        .collect();
    files.sort();
    let mut problems = Vec::new();
    let (mut checked, mut tls) = (0, 0);
    for f in &files {
        let e: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        tls += (e["needs_keylog"] == true) as usize;
        checked += 1;
        problems.extend(check(f));
    }
    assert!(checked >= 32, "only {checked} captures checked");
    assert_eq!(tls, 2, "TLS captures with key logs");
    problems.extend(findings_are_expected(&files));
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
