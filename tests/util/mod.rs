//! Running the binary as a user would, and reading its JSON back.

#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every capture under captures/ (one directory down), sorted.
pub fn captures() -> Vec<String> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root().join("captures"))
        .expect("captures/")
        .flatten()
    {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .expect("capture dir")
            .flatten()
        {
            let name = f.path().to_string_lossy().into_owned();
            let kinds = [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"];
            if kinds.iter().any(|k| name.ends_with(k)) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_h2keepalive"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run h2keepalive")
}

/// `analyze --format json -q` on the given captures; panics unless it exits 0 or 1.
pub fn analyze_json(captures: &[&str]) -> Value {
    let mut args = vec!["analyze", "--format", "json", "-q"];
    args.extend_from_slice(captures);
    let out = run(&args);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{captures:?}: exit {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{captures:?}: bad JSON: {e}"))
}

/// xorshift64*, seeded: small, deterministic (failures reproduce), good enough to shuffle and to
/// make random inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
