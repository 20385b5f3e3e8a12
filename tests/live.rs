//! `live` and streaming `analyze -` as a user runs them. The live tests capture real gRPC traffic
//! (grpcio, the lab's server.py and client.py) on loopback, as root as CI runs; they check the
//! connections and paired PINGs, the reports, the end by SIGINT, and that the `-w` copy analyses the
//! same. Every wait is bounded.

mod util;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn have_grpcio() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the live tests can run here; in CI they must.
fn can_run_live() -> bool {
    let ok = is_root() && have_grpcio();
    assert!(
        ok || !ci(),
        "CI runs as root with grpcio installed (.ci/run): root={} grpcio={}",
        is_root(),
        have_grpcio()
    );
    if !ok {
        eprintln!("notice: live capture tests need root and python3 grpcio; skipped");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("h2keepalive-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Kills a child process when dropped, so no test leaves one behind.
struct Guard(Child);

impl Drop for Guard {
    /// SIGTERM first: `timeout` passes it on to the client it runs, which SIGKILL would orphan
    /// (grpcio clients holding a channel open were left behind by every run).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A grpcio server that lets clients ping every second without calls.
fn server(port: u16) -> Guard {
    let child = Command::new("python3")
        .arg(util::root().join("captures/lab/server.py"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--opt",
            "grpc.http2.min_recv_ping_interval_without_data_ms=500",
            "--opt",
            "grpc.keepalive_permit_without_calls=1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded wait for the port to accept.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Guard(child)
}

/// A grpcio client: an RPC, a second of keepalive PINGs without calls, another RPC, for `secs`.
fn client(port: u16, secs: u32) -> Guard {
    let plan = format!(
        r#"[{{"ch":1,"steps":["rpc","idle:{secs}","rpc","close"]}},{{"ch":2,"steps":["rpc","hold"]}}]"#
    );
    let child = Command::new("timeout")
        .arg(format!("{}", secs + 5))
        .arg("python3")
        .arg(util::root().join("captures/lab/client.py"))
        .args(["--target", &format!("127.0.0.1:{port}"), "--plan", &plan])
        .args([
            "--opt",
            "grpc.keepalive_time_ms=1000",
            "--opt",
            "grpc.keepalive_permit_without_calls=1",
        ])
        .args(["--opt", "grpc.http2.max_pings_without_data=0"])
        .args([
            "--log",
            tmp(&format!("client-{port}.json")).to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Guard(child)
}

fn live(port: u16, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
        .args([
            "live",
            "-i",
            "lo",
            "-f",
            &format!("tcp port {port}"),
            "--format",
            "json",
            "-q",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn paired_pings(doc: &Value) -> usize {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["pings"].as_array().unwrap())
        .filter(|p| p["acked_at"].is_f64())
        .count()
}

#[test]
fn live_capture_of_real_grpc_keepalives() {
    if !can_run_live() {
        return;
    }
    let port = free_port();
    let _server = server(port);
    let saved = tmp("saved.pcap");
    let html = tmp("live.html");
    let png = tmp("live.png");
    let tables = tmp("tables");
    let capture = live(
        port,
        &[
            "--duration",
            "6",
            "-w",
            saved.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
            "--tables",
            tables.to_str().unwrap(),
        ],
    );
    // The -w file is written when the capture is open and filtering: the client starts only
    // then (a fixed pause was too short when the machine is busy, and the first connection was
    // caught mid-stream).
    let opened = Instant::now();
    while !saved.exists() && opened.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let _client = client(port, 3);
    let out = capture.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = doc["connections"].as_array().unwrap();
    // Two channels, two connections; and a third when the server's GOAWAY (too_many_pings: the
    // client pings every second) came just before channel 1's second call, which gRPC then makes
    // on a new connection.
    let first_goaway = conns
        .iter()
        .flat_map(|c| c["goaways"].as_array().unwrap())
        .filter_map(|g| g["ts"].as_f64())
        .fold(f64::MAX, f64::min);
    let reconnected = conns.len() == 3 && conns[2]["start"].as_f64().unwrap() > first_goaway;
    assert!(
        conns.len() == 2 || reconnected,
        "two channels, two connections (a third after a GOAWAY): {doc}"
    );
    for c in conns {
        assert!(c["server"].as_str().unwrap().ends_with(&format!(":{port}")));
        assert_eq!(c["syn_seen"], true);
        assert_eq!(c["implementation"]["client"], "gRPC C-core");
    }
    // Keepalives every second for ~3 s on channel 1, and on channel 2 while it holds: answered.
    assert!(paired_pings(&doc) >= 4, "{}", paired_pings(&doc));
    assert!(std::fs::metadata(&html).unwrap().len() > 10_000);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    assert!(tables.join("connections.parquet").exists());
    // What -w saved analyses the same.
    let again = util::analyze_json(&[saved.to_str().unwrap()]);
    let key = |d: &Value| -> Vec<(String, Value, usize)> {
        d["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["client"].as_str().unwrap().to_string(),
                    c["frames"].clone(),
                    c["pings"].as_array().unwrap().len(),
                )
            })
            .collect()
    };
    assert_eq!(key(&again), key(&doc));
}

#[test]
fn live_ended_by_sigint_still_writes_the_summary() {
    if !can_run_live() {
        return;
    }
    let port = free_port();
    let _server = server(port);
    let capture = live(port, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let _client = client(port, 2);
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = capture.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value =
        serde_json::from_slice(&out.stdout).expect("a complete JSON summary after SIGINT");
    assert_eq!(doc["connections"].as_array().unwrap().len(), 2);
    assert!(paired_pings(&doc) >= 2);
}

#[test]
fn live_errors_say_what_is_missing() {
    if !is_root() {
        assert!(!ci(), "CI runs as root");
        return;
    }
    let out = util::run(&["live", "-i", "no-such-if0", "--duration", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-if0") && err.contains("available") && err.contains("lo"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Without the capability to capture: as an unprivileged user.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_h2keepalive"))
        .args(["live", "-i", "lo", "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no permission") && err.contains("cap_net_raw"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `tcpdump -w - | h2keepalive analyze -`: findings appear while the pipe is still open.
#[test]
fn stdin_streams_findings_before_eof() {
    let bytes =
        std::fs::read(util::root().join("captures/too-many-pings-python/capture.pcap")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
        .args(["analyze", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The whole capture, then a pause with the pipe still open.
    stdin.write_all(&bytes).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut early = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let found = line.contains("too_many_pings");
            early.push(line);
            if found {
                break;
            }
        }
    }
    assert!(
        early
            .iter()
            .any(|l| l.contains("ENHANCE_YOUR_CALM") && l.contains("too_many_pings")),
        "nothing before EOF: {early:?}"
    );
    // Closing the pipe ends the run with the full summary.
    drop(stdin);
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        rest.push(line);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        rest.iter()
            .any(|l| l.starts_with("ERROR") && l.contains("too frequent")),
        "{rest:?}"
    );
}

/// Ctrl-C on `tcpdump ... | h2keepalive analyze -` reaches both processes: the reader must survive
/// it, read to the end of the pipe that tcpdump closes, and write the summary.
#[test]
fn stdin_reader_survives_ctrl_c_and_writes_the_summary() {
    let bytes =
        std::fs::read(util::root().join("captures/too-many-pings-python/capture.pcap")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
        .args(["analyze", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(200));
    // The writer (tcpdump) died of the same Ctrl-C: the pipe closes.
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "not killed by SIGINT: {:?}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("totals: 8 HTTP/2 connections"), "{text}");
}
