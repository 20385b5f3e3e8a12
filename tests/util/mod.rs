//! Running the binary as a user would, and reading its JSON back.

#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
