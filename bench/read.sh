#!/usr/bin/env bash
# Times the capture readers: reading alone (examples/read_only.rs: packets/s, MB/s) and the whole
# `h2keepalive analyze -q --format json FILE > /dev/null`, on each FILE given, RUNS times each
# (the machine is shared: look at the spread, and at CPU time as well as wall time).
#
# usage: bench/read.sh [--runs N] [--bin DIR] FILE ...
#   --runs N   runs of each command per file (default 3)
#   --bin DIR  take h2keepalive and read_only from DIR (default: target/release and
#              target/release/examples, built with `cargo build --release --example read_only`)
# A gzipped copy to try: gzip -1 -c bench/.cache/big-300MB.pcap > /tmp/big-300MB.pcap.gz
set -euo pipefail

RUNS=3
BIN_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --bin) BIN_DIR="${2:?--bin needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "read.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "read.sh: no capture given (see --help)" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "$BIN_DIR" ]; then
  H2="$BIN_DIR/h2keepalive"; RO="$BIN_DIR/read_only"
else
  H2="$ROOT/target/release/h2keepalive"; RO="$ROOT/target/release/examples/read_only"
fi
for b in "$H2" "$RO"; do
  [ -x "$b" ] || { echo "read.sh: $b missing (cargo build --release --example read_only)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "read.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }
OUT="$(mktemp)"
STDOUT="$(mktemp)"
trap 'rm -f "$OUT" "$STDOUT"' EXIT

# wall, user+sys and peak RSS of one command; its stdout is kept in $STDOUT
timed() {
  /usr/bin/time -f '%e %U %S %M' -o "$OUT" "$@" >"$STDOUT" 2>/dev/null || true
  tail -n 1 "$OUT" | awk '{ printf "%6.2f s wall  %6.2f s cpu  peak RSS %6.1f MB", $1, $2 + $3, $4 / 1024 }'
}

for f in "$@"; do
  cat "$f" >/dev/null   # from the page cache, every run alike
  echo "== $f ($(stat -L -c %s "$f") bytes)"
  for i in $(seq "$RUNS"); do
    t="$(timed "$RO" "$f")"
    printf 'read_only  run %d: %s  %s\n' "$i" "$t" "$(cat "$STDOUT")"
  done
  for i in $(seq "$RUNS"); do
    printf 'analyze    run %d: %s\n' "$i" "$(timed "$H2" analyze -q --format json "$f")"
  done
done
