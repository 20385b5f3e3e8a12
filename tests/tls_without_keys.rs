//! TLS connections read without their keys: the lab's TLS scenarios analysed from `capture.pcap`
//! alone. PINGs inferred from record sizes are compared with the PINGs tshark decrypted with the
//! key log (the truth's `pings`), and verdicts with the truth where the transport shows the cause.

mod util;

use serde_json::Value;

struct Score {
    matched: usize,
    inferred: usize,
    truth: usize,
}

impl Score {
    fn precision(&self) -> f64 {
        self.matched as f64 / self.inferred.max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.matched as f64 / self.truth.max(1) as f64
    }
}

/// Our PING events as (time, sender, ack): each ping, and its ACK when one was paired with it.
fn events(c: &Value) -> Vec<(f64, String, bool)> {
    let mut out = Vec::new();
    for p in c["pings"].as_array().unwrap() {
        let from = p["from"].as_str().unwrap().to_string();
        let ack = p["ack"].as_bool().unwrap();
        if !ack {
            assert_eq!(p["inferred"], true, "without keys every PING is inferred");
            assert!(p["opaque"].is_null());
        }
        out.push((p["ts"].as_f64().unwrap(), from.clone(), ack));
        if let Some(t) = p["acked_at"].as_f64() {
            let other = if from == "client" { "server" } else { "client" };
            out.push((t, other.to_string(), true));
        }
    }
    out
}

#[test]
fn inferred_pings_and_verdicts_against_the_decrypted_truth() {
    let mut scores = [
        Score {
            matched: 0,
            inferred: 0,
            truth: 0,
        },
        Score {
            matched: 0,
            inferred: 0,
            truth: 0,
        },
    ];
    let mut scenarios = 0;
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(util::root().join("captures")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("truth.json")) else {
            continue;
        };
        let truth: Value = serde_json::from_str(&text).unwrap();
        if !dir.join("keylog.txt").exists() || truth["connections"][0]["pings"].is_null() {
            continue;
        }
        scenarios += 1;
        let name = truth["scenario"].as_str().unwrap();
        let capture = dir.join(truth["capture"].as_str().unwrap());
        let doc = util::analyze_json(&[capture.to_str().unwrap()]);
        // A timeout on the path that kills idle flows (not an HTTP/2 idle timer, which counts
        // streams the records do not show) is estimated from transport facts alone.
        let transport_death = truth["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["cause"] == "idle_reset" || t["cause"] == "idle_blackhole");
        let bracket = truth["timeout_bracket"]["timeout_s"].as_f64();
        if let (Some(timeout), true) = (bracket, transport_death) {
            let inside = doc["findings"].as_array().unwrap().iter().any(|f| {
                let lo = f["estimate"]["timeout_low_s"].as_f64();
                let hi = f["estimate"]["timeout_high_s"].as_f64();
                lo.zip(hi)
                    .is_some_and(|(lo, hi)| lo <= timeout && timeout <= hi)
            });
            if !inside {
                problems.push(format!(
                    "{name}: no finding brackets the {timeout} s timeout"
                ));
            }
        }
        for t in truth["connections"].as_array().unwrap() {
            let Some(c) = doc["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["client"] == t["client"])
            else {
                problems.push(format!("{name}: {} not found", t["client"]));
                continue;
            };
            assert_eq!(c["detection"], "tls-alpn");
            assert_eq!(c["tls_session"]["keys"], "missing");
            let ours = events(c);
            for (k, ack) in [false, true].into_iter().enumerate() {
                let want: Vec<(f64, &str)> = t["pings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["ack"] == ack)
                    .map(|p| (p["ts"].as_f64().unwrap(), p["from"].as_str().unwrap()))
                    .collect();
                let got: Vec<&(f64, String, bool)> = ours.iter().filter(|e| e.2 == ack).collect();
                let mut used = vec![false; got.len()];
                for (ts, from) in &want {
                    if let Some(i) = (0..got.len())
                        .find(|&i| !used[i] && got[i].1 == *from && (got[i].0 - ts).abs() < 1e-3)
                    {
                        used[i] = true;
                        scores[k].matched += 1;
                    }
                }
                scores[k].inferred += got.len();
                scores[k].truth += want.len();
            }
            // Who ended the connection is visible without keys, and so are causes the transport
            // shows (a reset after idle, an orderly close, still alive).
            let v = &c["verdict"];
            if v["killed_by"] != t["killed_by"] {
                problems.push(format!(
                    "{name} {}: killed by {}, truth {}",
                    t["client"], v["killed_by"], t["killed_by"]
                ));
            }
            let transport = ["idle_reset", "alive", "graceful_close"];
            if transport.contains(&t["cause"].as_str().unwrap()) && v["cause"] != t["cause"] {
                problems.push(format!(
                    "{name} {}: cause {}, truth {}",
                    t["client"], v["cause"], t["cause"]
                ));
            }
        }
    }
    assert!(
        scenarios >= 4,
        "only {scenarios} TLS scenarios with PINGs in their truth"
    );
    let [pings, acks] = &scores;
    eprintln!(
        "PING precision {:.3} recall {:.3} ({} matched, {} inferred, {} true); ACK precision {:.3} recall {:.3}",
        pings.precision(),
        pings.recall(),
        pings.matched,
        pings.inferred,
        pings.truth,
        acks.precision(),
        acks.recall()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Floors a little under what was measured when this was written (0.981/0.981, 1.0/0.944):
    // a change that makes the inference worse fails here.
    assert!(pings.precision() >= 0.95 && pings.recall() >= 0.95);
    assert!(acks.precision() >= 0.95 && acks.recall() >= 0.9);
}
