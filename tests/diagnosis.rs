//! Diagnosis on lab captures stretched to production time scales (every timestamp's offset from
//! the first packet multiplied), which must be matched to the right products, and `--timeouts`
//! bringing in a user's own device. The products expected come from DOMAIN.md's catalogue (AWS NLB
//! and NAT Gateway reset flows idle 350 s; GCP Cloud NAT forgets established flows after 1200 s).

mod util;

use serde_json::Value;

/// A copy of a classic microsecond pcap with time stretched by `factor` around its first packet.
fn stretched(capture: &str, factor: f64) -> String {
    let bytes = std::fs::read(util::root().join(capture)).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap expected"
    );
    let mut out = bytes[..24].to_vec();
    let mut pos = 24;
    let mut first: Option<f64> = None;
    while pos + 16 <= bytes.len() {
        let u = |i: usize| u32::from_le_bytes(bytes[pos + i..pos + i + 4].try_into().unwrap());
        let (sec, usec, caplen) = (u(0), u(4), u(8) as usize);
        let t = sec as f64 + usec as f64 / 1e6;
        let t0 = *first.get_or_insert(t);
        let s = t0 + (t - t0) * factor;
        let (nsec, nusec) = (
            s.floor() as u32,
            ((s - s.floor()) * 1e6).round().min(999_999.0) as u32,
        );
        out.extend_from_slice(&nsec.to_le_bytes());
        out.extend_from_slice(&nusec.to_le_bytes());
        out.extend_from_slice(&bytes[pos + 8..pos + 16 + caplen]);
        pos += 16 + caplen;
    }
    let dir = std::env::temp_dir().join(format!("h2keepalive-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-x{factor}.pcap", capture.replace('/', "_")));
    std::fs::write(&path, out).unwrap();
    path.to_string_lossy().into_owned()
}

fn idle_finding(doc: &Value) -> &Value {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "idle-timeout")
        .expect("an idle-timeout finding")
}

fn names(f: &Value) -> Vec<String> {
    f["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_350_s_reset_is_an_nlb_or_nat_gateway() {
    // nat-reset: conntrack NAT, 5 s timeout, forged RSTs. x70 makes it 350 s.
    let doc = util::analyze_json(&[&stretched("captures/nat-reset/capture.pcap", 70.0)]);
    let f = idle_finding(&doc);
    let (lo, hi) = (
        f["estimate"]["timeout_low_s"].as_f64().unwrap(),
        f["estimate"]["timeout_high_s"].as_f64().unwrap(),
    );
    assert!(lo <= 350.0 && 350.0 <= hi, "{lo}..{hi}");
    let n = names(f);
    assert!(n.iter().any(|x| x.starts_with("AWS NLB")), "{n:?}");
    assert!(n.iter().any(|x| x.starts_with("AWS NAT Gateway")), "{n:?}");
    assert!(
        !n.iter().any(|x| x.contains("Cloud NAT")),
        "Cloud NAT drops silently, after 1200 s: {n:?}"
    );
    for c in doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"]["cause"] == "idle_reset")
    {
        assert!(
            c["tcp"]["rst"][0]["suspect_forged"] == true,
            "{}",
            c["tcp"]["rst"]
        );
    }
    assert_eq!(
        util::run(&[
            "analyze",
            "-q",
            &stretched("captures/nat-reset/capture.pcap", 70.0)
        ])
        .status
        .code(),
        Some(1)
    );
}

#[test]
fn a_1200_s_silent_drop_is_cloud_nat() {
    // nat-drop: conntrack NAT, 5 s timeout, INVALID dropped. x240 makes it 1200 s.
    let doc = util::analyze_json(&[&stretched("captures/nat-drop/capture.pcap", 240.0)]);
    let f = idle_finding(&doc);
    let (lo, hi) = (
        f["estimate"]["timeout_low_s"].as_f64().unwrap(),
        f["estimate"]["timeout_high_s"].as_f64().unwrap(),
    );
    assert!(lo <= 1200.0 && 1200.0 <= hi, "{lo}..{hi}");
    let n = names(f);
    assert!(n.iter().any(|x| x.contains("Cloud NAT")), "{n:?}");
    assert!(
        !n.iter().any(|x| x.starts_with("AWS NLB")),
        "an NLB resets, it does not drop: {n:?}"
    );
    assert!(
        f["recommendation"].as_str().unwrap().contains("keepalive"),
        "{}",
        f["recommendation"]
    );
}

#[test]
fn an_nginx_idle_goaway_at_75_s_is_nginx_keepalive_timeout() {
    // nginx-idle: keepalive_timeout 5 s. x15 makes it nginx's default 75 s.
    let doc = util::analyze_json(&[&stretched("captures/nginx-idle/capture.pcap", 15.0)]);
    let f = idle_finding(&doc);
    let n = names(f);
    assert!(n.iter().any(|x| x.starts_with("nginx")), "{n:?}");
    assert!(!n.iter().any(|x| x.starts_with("AWS NLB")), "{n:?}");
}

#[test]
fn user_timeouts_file_adds_a_device() {
    let dir = std::env::temp_dir().join(format!("h2keepalive-timeouts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("timeouts.json");
    std::fs::write(
        &file,
        r#"{"intermediaries": [{"name": "lab NAT", "kind": "nat", "timeout_s": 5, "configurable": null,
            "measure": "transport", "on_expiry": "reset", "counts_pings": true, "sources": ["captures/nat-reset/truth.json"], "notes": ""}]}"#,
    )
    .unwrap();
    let out = util::run(&[
        "analyze",
        "--format",
        "json",
        "--timeouts",
        file.to_str().unwrap(),
        "captures/nat-reset/capture.pcap",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(idle_finding(&doc)), vec!["lab NAT".to_string()]);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = util::run(&[
        "analyze",
        "--timeouts",
        bad.to_str().unwrap(),
        "captures/nat-reset/capture.pcap",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}

#[test]
fn exit_codes_follow_the_findings() {
    // Problems (errors, warnings) exit 1; a clean capture exits 0.
    assert_eq!(
        util::run(&[
            "analyze",
            "-q",
            "captures/too-many-pings-python/capture.pcap"
        ])
        .status
        .code(),
        Some(1)
    );
    assert_eq!(
        util::run(&["analyze", "-q", "captures/public/grpc-service-name.pcap"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        util::run(&[
            "analyze",
            "-q",
            "captures/nat-keepalive-survives/capture.pcap"
        ])
        .status
        .code(),
        Some(0)
    );
}

/// Time scale must not change a verdict: every lab scenario stretched to production scale keeps
/// each connection's true cause and killer.
#[test]
fn verdicts_survive_stretching_to_production_time_scales() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(util::root().join("captures")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(truth) = std::fs::read_to_string(dir.join("truth.json")) else {
            continue;
        };
        let truth: Value = serde_json::from_str(&truth).unwrap();
        let capture = format!(
            "captures/{}/{}",
            dir.file_name().unwrap().to_string_lossy(),
            truth["capture"].as_str().unwrap()
        );
        let head = std::fs::read(util::root().join(&capture)).unwrap();
        // Stretching rewrites classic pcap records; TLS scenarios wait for decryption.
        if head[..4] != [0xd4, 0xc3, 0xb2, 0xa1] || dir.join("keylog.txt").exists() {
            continue;
        }
        for factor in [10.0, 70.0, 240.0] {
            let doc = util::analyze_json(&[&stretched(&capture, factor)]);
            for t in truth["connections"].as_array().unwrap() {
                checked += 1;
                let c = doc["connections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["client"] == t["client"] && c["server"] == t["server"]);
                let v = &c.expect("connection present")["verdict"];
                if v["cause"] != t["cause"] || v["killed_by"] != t["killed_by"] {
                    problems.push(format!(
                        "{capture} x{factor} {}: {}/{} but truth {}/{}: {}",
                        t["client"],
                        v["cause"],
                        v["killed_by"],
                        t["cause"],
                        t["killed_by"],
                        v["evidence"]
                    ));
                }
            }
        }
    }
    assert!(checked > 300, "{checked}");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
