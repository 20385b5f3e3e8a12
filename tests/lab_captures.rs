//! Every lab scenario (`captures/<scenario>/` with its `truth.json`, made by `captures/lab/` with real
//! gRPC stacks and intermediaries, checked against tshark when generated) analysed by the binary
//! without `--decode-as`: every connection of the truth is found with the same client and server,
//! the same frame counts by type and sender, and the frame and packet evidence the truth names.

mod util;

use serde_json::Value;
use std::path::PathBuf;

fn scenarios() -> Vec<(PathBuf, Value)> {
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(util::root().join("captures"))
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let truth = std::fs::read_to_string(dir.join("truth.json")).ok()?;
            Some((dir, serde_json::from_str(&truth).unwrap()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn close(a: f64, b: &Value) -> bool {
    b.as_f64().is_some_and(|b| (a - b).abs() < 2e-6)
}

/// Frame count of `kind` sent by `side` in one of our connections (PING and PING_ACK apart).
fn count(c: &Value, kind: &str, side: &str) -> u64 {
    let sent_pings = || {
        c["pings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["from"] == side && p["ack"] == false)
            .count() as u64
    };
    match kind {
        "PING" => sent_pings(),
        "PING_ACK" => c["frames"]["PING"][side].as_u64().unwrap() - sent_pings(),
        _ => c["frames"][kind][side].as_u64().unwrap_or(0),
    }
}

fn check_evidence(c: &Value, e: &Value) -> Result<(), String> {
    let from = e["from"].as_str().unwrap();
    let found = match e["type"].as_str().unwrap() {
        "tcp_fin" => c["tcp"]["fin"][from]
            .as_f64()
            .is_some_and(|t| close(t, &e["ts"])),
        "tcp_rst" => {
            let rst = c["tcp"]["rst"].as_array().unwrap().iter().any(|r| {
                r["from"] == from
                    && r["ttl"] == e["ttl"]
                    && close(r["ts"].as_f64().unwrap(), &e["ts"])
            });
            // What tells a forged RST from a real one must be on the record: the claimed sender's
            // own TTL.
            rst && c["tcp"]["usual_ttl"][from] == e["sender_ttl"]
        }
        "goaway" => c["goaways"].as_array().unwrap().iter().any(|g| {
            g["from"] == from
                && g["error_code"] == e["error_code"]
                && g["last_stream_id"] == e["last_stream_id"]
                && g["debug_data"].as_str()
                    == Some(
                        e["debug_data"]
                            .as_str()
                            .unwrap_or("")
                            .trim_end_matches('\0'),
                    )
                && close(g["ts"].as_f64().unwrap(), &e["ts"])
        }),
        "ping_unanswered" => {
            let n = c["pings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["from"] == from && p["ack"] == false && p["acked_at"].is_null())
                .count();
            n as u64 == e["count"].as_u64().unwrap()
        }
        "retransmissions" => c["tcp"]["retransmissions_by_side"][from] == e["count"],
        other => return Err(format!("unknown evidence type {other}")),
    };
    if found {
        Ok(())
    } else {
        Err(format!("evidence not found: {e}"))
    }
}

#[test]
fn every_lab_scenario_matches_its_truth() {
    let all = scenarios();
    assert!(all.len() >= 12, "only {} scenarios", all.len());
    let mut problems = Vec::new();
    let mut connections = 0;
    let mut tls_runs = 0;
    for (dir, truth) in &all {
        let scenario = truth["scenario"].as_str().unwrap();
        let capture = dir.join(truth["capture"].as_str().unwrap());
        let capture = capture.to_str().unwrap();
        // TLS scenarios are checked twice: with their key log, and with the secrets embedded in
        // the pcapng (Decryption Secrets Blocks) and no option.
        let runs = if dir.join("keylog.txt").exists() {
            tls_runs += 1;
            let keylog = dir.join("keylog.txt");
            let embedded = dir.join("capture-with-secrets.pcapng");
            vec![
                (
                    format!("{scenario} (--keylog)"),
                    util::analyze_json(&[capture, "--keylog", keylog.to_str().unwrap()]),
                ),
                (
                    format!("{scenario} (embedded secrets)"),
                    util::analyze_json(&[embedded.to_str().unwrap()]),
                ),
            ]
        } else {
            vec![(scenario.to_string(), util::analyze_json(&[capture]))]
        };
        for (name, doc) in &runs {
            let ours = doc["connections"].as_array().unwrap();
            for t in truth["connections"].as_array().unwrap() {
                connections += 1;
                let Some(c) = ours
                    .iter()
                    .find(|c| c["client"] == t["client"] && c["server"] == t["server"])
                else {
                    problems.push(format!(
                        "{name}: no connection {} -> {}",
                        t["client"], t["server"]
                    ));
                    continue;
                };
                for (kind, n) in t["frames"].as_object().unwrap() {
                    for side in ["client", "server"] {
                        let (want, got) = (n[side].as_u64().unwrap_or(0), count(c, kind, side));
                        if want != got {
                            problems.push(format!(
                                "{name} {}: {kind} from {side}: {got}, truth {want}",
                                t["client"]
                            ));
                        }
                    }
                }
                for e in t["evidence"].as_array().unwrap() {
                    if let Err(p) = check_evidence(c, e) {
                        problems.push(format!("{name} {}: {p}", t["client"]));
                    }
                }
                // The verdict: cause and who did it as the truth says; the silence before death within
                // 5% (or 0.1 s) where the truth measured one.
                let v = &c["verdict"];
                if v["cause"] != t["cause"] || v["killed_by"] != t["killed_by"] {
                    problems.push(format!(
                        "{name} {}: verdict {}/{}, truth {}/{} ({})",
                        t["client"],
                        v["cause"],
                        v["killed_by"],
                        t["cause"],
                        t["killed_by"],
                        v["evidence"]
                    ));
                }
                if let Some(want) = t["idle_before_s"].as_f64() {
                    let ok = v["idle_before_s"]
                        .as_f64()
                        .is_some_and(|got| (got - want).abs() <= (0.05 * want).max(0.1));
                    if !ok {
                        problems.push(format!(
                            "{name} {}: idle before death {}, truth {want}",
                            t["client"], v["idle_before_s"]
                        ));
                    }
                }
            }
            // The configured timeout lies inside the estimate of a finding about this scenario's path.
            if let Some(timeout) = truth["timeout_bracket"]["timeout_s"].as_f64() {
                let inside = doc["findings"].as_array().unwrap().iter().any(|f| {
                    let (lo, hi) = (
                        f["estimate"]["timeout_low_s"].as_f64(),
                        f["estimate"]["timeout_high_s"].as_f64(),
                    );
                    lo.zip(hi)
                        .is_some_and(|(lo, hi)| lo <= timeout && timeout <= hi)
                });
                if !inside {
                    problems.push(format!(
                        "{name}: no finding brackets the {timeout} s timeout: {}",
                        doc["findings"]
                    ));
                }
            }
            let extra = ours.len() as i64 - truth["connections"].as_array().unwrap().len() as i64;
            if extra != 0 {
                problems.push(format!("{name}: {extra} more connection(s) than the truth"));
            }
        }
    }
    assert!(connections >= 100, "only {connections} connections checked");
    assert!(tls_runs >= 5, "only {tls_runs} TLS scenarios");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
