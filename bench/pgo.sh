#!/usr/bin/env bash
# Builds target/pgo/dist/h2keepalive: the dist profile (Cargo.toml) optimised with a profile of
# its own runs (profile-guided optimisation: rustc's -Cprofile-generate, then -Cprofile-use).
# The training runs are `analyze`, as JSON and as text, on every capture in captures/: the real
# traffic the bench capture is made from, not the bench capture itself.
#
# usage: bench/pgo.sh
#   then: H2KEEPALIVE_BIN=target/pgo/dist/h2keepalive bench/run.sh --no-build
#
# Each step builds every dependency again (RUSTFLAGS differ), in target/pgo-generate and
# target/pgo: about twice a dist build. llvm-profdata comes with rustup's llvm-tools component,
# added here when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
say() { printf '%s\n' "$*" >&2; }

profdata_tool() {
  find "$(rustc --print sysroot)" -name llvm-profdata -type f 2>/dev/null | head -n 1
}
PROFDATA="$(profdata_tool)"
if [ -z "$PROFDATA" ]; then
  say "adding rustup's llvm-tools component (llvm-profdata) ..."
  rustup component add llvm-tools >&2
  PROFDATA="$(profdata_tool)"
fi
[ -n "$PROFDATA" ] || { say "pgo.sh: llvm-profdata not found (rustup component add llvm-tools)"; exit 2; }

# Fixed paths: RUSTFLAGS are part of what cargo compares to reuse a build.
DATA="$ROOT/target/pgo-data"
rm -rf "$DATA"
mkdir -p "$DATA/raw"

say "building the instrumented binary (target/pgo-generate) ..."
# LLVM's loop vectoriser crashes (SIGSEGV) on the instrumented code under fat LTO (rustc 1.95);
# without it the counts are the same, and this binary is only run to count.
RUSTFLAGS="-Cprofile-generate=$DATA/raw" CARGO_TARGET_DIR=target/pgo-generate \
  cargo rustc --profile dist --bin h2keepalive -- -Cllvm-args=-vectorize-loops=false >&2

say "training on captures/ ..."
runs=0
while IFS= read -r -d '' cap; do
  for format in json text; do
    # Exit codes 0 and 1 are analyses (1: findings); 2 is a capture refused, still a run.
    target/pgo-generate/dist/h2keepalive analyze --format "$format" -q "$cap" >/dev/null 2>&1 || true
    runs=$((runs + 1))
  done
done < <(find captures -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' -o -name '*.cap' \) -print0 | sort -z)
[ "$runs" -gt 0 ] || { say "pgo.sh: no capture found in captures/"; exit 1; }
"$PROFDATA" merge -o "$DATA/merged.profdata" "$DATA/raw"
say "$runs training runs"

say "building the optimised binary (target/pgo) ..."
# Cargo does not see the profile change: the crate itself is always built again.
CARGO_TARGET_DIR=target/pgo cargo clean -p h2keepalive --profile dist >&2 2>/dev/null || true
RUSTFLAGS="-Cprofile-use=$DATA/merged.profdata" CARGO_TARGET_DIR=target/pgo \
  cargo build --profile dist >&2
say "built target/pgo/dist/h2keepalive"
