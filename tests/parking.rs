//! Connections quiet for two minutes of capture time are parked: written to a temporary file and
//! read back at their next packet (analyzer.rs). `H2KEEPALIVE_PARK_AFTER_S=0` parks every
//! connection after each of its packets; nothing reported may change, on any capture.

mod util;

use std::process::Command;
use util::{captures, root};

fn analyze(capture: &str, format: &str, park_after: Option<&str>) -> (Option<i32>, Vec<u8>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_h2keepalive"));
    cmd.args(["analyze", "--format", format, "-q", capture])
        .current_dir(root());
    if let Some(secs) = park_after {
        cmd.env("H2KEEPALIVE_PARK_AFTER_S", secs);
    }
    let out = cmd.output().expect("run h2keepalive");
    (out.status.code(), out.stdout)
}

/// The `format` report of `capture`, checked to be the same (exit code included) when every
/// connection is parked after each of its packets.
fn same_when_parked(capture: &str, format: &str) -> Vec<u8> {
    let (code, kept) = analyze(capture, format, None);
    let (parked_code, parked) = analyze(capture, format, Some("0"));
    assert_eq!(code, parked_code, "{capture}: exit code");
    assert!(
        kept == parked,
        "{capture}: the {format} report changes when connections are parked"
    );
    kept
}

#[test]
fn parking_every_connection_after_each_packet_changes_nothing() {
    let captures = captures();
    assert!(captures.len() > 50, "{} captures", captures.len());
    let mut compared = 0;
    for capture in &captures {
        // JSON alone keeps each connection as its text; text output keeps the report model.
        for format in ["json", "text"] {
            let kept = same_when_parked(capture, format);
            compared += usize::from(format == "json" && kept.len() > 1000);
        }
    }
    assert!(compared > 50, "only {compared} documents with connections");
}

/// Found by the `pipeline` fuzz target: a TLS connection whose client offers h2 is handed to the
/// report as HTTP/2 when parked after its ClientHello, then revived by the ServerHello, whose ALPN
/// (mutated) is not "h2" (tshark: `ALPN Next Protocol: h\xNN`): it is not HTTP/2 after all and is
/// not handed over again, so the entry from its parking must go too.
#[test]
fn a_parked_connection_that_turns_out_not_http2_is_not_reported() {
    let capture = "tests/fixtures/fuzz/parked-tls-server-alpn-not-h2.pcap";
    for format in ["json", "text"] {
        let report = same_when_parked(capture, format);
        let text = String::from_utf8_lossy(&report);
        assert!(
            !text.contains(":54210"),
            "{format}: the TLS connection is reported"
        );
        // Three earlier connections to the same server, whose ServerHello chose h2.
        assert!(
            text.contains(":54198"),
            "{format}: the other connections are missing"
        );
    }
}
