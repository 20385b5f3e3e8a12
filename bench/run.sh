#!/usr/bin/env bash
# Times `h2keepalive analyze --format json` on a large capture built from real traffic, next
# to tshark on the same file, and prints both throughputs, their ratio and peak memory.
#
# usage: bench/run.sh [--size-mb N] [--runs N] [--scale-sizes "N ..."] [--keep] [--no-build] [--check]
#   --size-mb N   size of the generated capture in MB (10^6 bytes), default 300
#   --runs N      times h2keepalive is timed on it (default 5): the median run is reported, with
#                 the fastest and slowest; tshark, at a minute a run, is timed once
#   --scale-sizes "N ..."  further capture sizes on which only h2keepalive runs, to show how its
#                 peak RSS grows with the capture (default "100 600"; "" for none)
#   --keep        keep the capture in bench/.cache/ afterwards (and reuse it next time);
#                 by default it is deleted at the end of the run
#   --no-build    do not run `cargo build --profile dist`, use target/dist/h2keepalive as is
#   --check       before timing, verify the capture with bench/check_capture.py
#                 (capinfos, HTTP/2 frame counts vs the sources, malformed packets)
set -euo pipefail

SIZE_MB=300
RUNS=5
SCALE_SIZES="100 600"
KEEP=0
BUILD=1
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB="${2:?--size-mb needs a value}"; shift 2 ;;
    --size-mb=*) SIZE_MB="${1#*=}"; shift ;;
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --scale-sizes) SCALE_SIZES="${2?--scale-sizes needs a value}"; shift 2 ;;
    --scale-sizes=*) SCALE_SIZES="${1#*=}"; shift ;;
    --keep) KEEP=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "run.sh: --runs wants a whole number from 1, got '$RUNS'" >&2; exit 2 ;; esac
case "$SIZE_MB" in ''|*[!0-9.]*) echo "run.sh: --size-mb wants a number, got '$SIZE_MB'" >&2; exit 2 ;; esac
for s in $SCALE_SIZES; do
  case "$s" in *[!0-9.]*) echo "run.sh: --scale-sizes wants numbers, got '$s'" >&2; exit 2 ;; esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CACHE="bench/.cache"
CAP="$CACHE/big-${SIZE_MB}MB.pcap"
BIN="${H2KEEPALIVE_BIN:-target/dist/h2keepalive}"   # override for testing
WORK="$(mktemp -d)"
CAPS=("$CAP")   # every capture this run may build (deleted at the end without --keep)
for s in $SCALE_SIZES; do CAPS+=("$CACHE/big-${s}MB.pcap"); done
cleanup() {
  rm -rf "$WORK"
  if [ "$KEEP" != 1 ]; then
    for c in "${CAPS[@]}"; do rm -f "$c" "$c.json" "$c.tmp"; done
  fi
}
trap cleanup EXIT
mkdir -p "$CACHE"

say() { printf '%s\n' "$*" >&2; }

# ---- tools
command -v tshark >/dev/null || { say "run.sh: tshark not found (apt-get install tshark)"; exit 2; }
if [ ! -x /usr/bin/time ]; then
  say "installing GNU time (/usr/bin/time) for wall time and peak RSS..."
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
  fi
  [ -x /usr/bin/time ] || { say "run.sh: /usr/bin/time missing (apt-get install time)"; exit 2; }
fi

# ---- binary
if [ "$BUILD" = 1 ]; then
  if command -v cargo >/dev/null; then
    # The dist profile (Cargo.toml): whole-program optimisation, what is installed on a node.
    say "cargo build --profile dist ..."
    if ! cargo build --profile dist >&2; then
      say "run.sh: cargo build --profile dist failed; timing tshark only"
    fi
  else
    say "run.sh: cargo not found; timing tshark only"
  fi
fi
HAVE_BIN=0
if [ -x "$BIN" ]; then HAVE_BIN=1; else say "run.sh: $BIN not found: h2keepalive is not timed"; fi

# ---- capture (rebuilt when missing or older than the generator or any source capture)
ensure_capture() {  # SIZE_MB PATH
  local stale=0
  if [ ! -s "$2" ] || [ ! -s "$2.json" ]; then
    stale=1
  elif [ -n "$(find bench/make_big_capture.py captures -maxdepth 2 -newer "$2.json" \( -name '*.pcap*' -o -name 'MANIFEST.md' -o -name 'truth.json' -o -name 'make_big_capture.py' \) -print -quit 2>/dev/null)" ]; then
    stale=1
  fi
  if [ "$stale" = 1 ]; then
    say "building $2 ..."
    python3 bench/make_big_capture.py --size-mb "$1" --out "$2" >&2
  else
    say "reusing $2"
  fi
}
ensure_capture "$SIZE_MB" "$CAP"
if [ "$CHECK" = 1 ]; then
  python3 bench/check_capture.py "$CAP" >&2 || { say "run.sh: capture check failed"; exit 1; }
fi
read -r -a DECODE_AS <<<"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tshark_decode_as"])' "$CAP.json")"

# Both tools read the file from the page cache: read it once first.
cat "$CAP" >/dev/null

# ---- timings
# Times h2keepalive on the capture $1 (read first, into the page cache), GNU time's report in $2
# and its standard error in $3. Returns its exit code; says what went wrong unless it analysed the
# file (exit 0, or 1 for findings).
time_h2() {
  say "timing: $BIN analyze --format json -q $1"
  cat "$1" >/dev/null
  local rc=0
  /usr/bin/time -v -o "$2" "$BIN" analyze --format json -q "$1" >/dev/null 2>"$3" || rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
    say "run.sh: h2keepalive exited with $rc on $1:"; tail -n 5 "$3" >&2
  fi
  return "$rc"
}

H2_RC=-
if [ "$HAVE_BIN" = 1 ]; then
  # A shared machine is noisy from one run to the next: the median of several runs is reported.
  for i in $(seq "$RUNS"); do
    say "run $i of $RUNS"
    H2_RC=0
    time_h2 "$CAP" "$WORK/h2.$i.time" "$WORK/h2.err" || H2_RC=$?
    if [ "$H2_RC" != 0 ] && [ "$H2_RC" != 1 ]; then break; fi
  done
fi
cat "$CAP" >/dev/null
say "timing: tshark -r $CAP ${DECODE_AS[*]} -Y http2 -T fields -e http2.type"
set +e
/usr/bin/time -v -o "$WORK/ts.time" tshark -r "$CAP" "${DECODE_AS[@]}" -Y http2 -T fields -e http2.type >/dev/null 2>"$WORK/ts.err"
TS_RC=$?
set -e
[ "$TS_RC" = 0 ] || { say "run.sh: tshark exited with $TS_RC:"; grep -v 'Running as user' "$WORK/ts.err" | tail -n 5 >&2; }

# ---- peak RSS as the capture grows (h2keepalive only; the main size is timed above)
SCALE_CAPS=()
if [ "$HAVE_BIN" = 1 ] && [ -n "$SCALE_SIZES" ]; then
  for s in $SCALE_SIZES; do
    c="$CACHE/big-${s}MB.pcap"
    [ "$c" = "$CAP" ] && continue
    ensure_capture "$s" "$c"
    i=${#SCALE_CAPS[@]}
    rc=0
    time_h2 "$c" "$WORK/scale$i.time" "$WORK/scale$i.err" || rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then rm -f "$WORK/scale$i.time"; fi
    SCALE_CAPS+=("$c")
  done
fi

# ---- report
python3 - "$CAP" "$WORK" "$HAVE_BIN" "$H2_RC" "$TS_RC" "${SCALE_CAPS[@]}" <<'EOF'
import json, os, re, sys
cap, work, have_bin, h2_rc, ts_rc = sys.argv[1:6]
scale_caps = sys.argv[6:]
size = os.path.getsize(cap)
info = json.load(open(cap + ".json"))

def parse(path):
    if not os.path.exists(path):
        return None
    t = open(path).read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t)
    wall = 0.0
    for part in m.group(1).split(":"):
        wall = wall * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
    cpu = float(re.search(r"User time \(seconds\): (\S+)", t).group(1)) + \
        float(re.search(r"System time \(seconds\): (\S+)", t).group(1))
    return {"wall": max(wall, 0.01), "rss_kb": rss, "cpu": cpu}  # time -v: 10 ms steps

# The median of h2keepalive's runs (by wall time), and the fastest and slowest.
runs = []
if have_bin == "1" and h2_rc in ("0", "1"):
    i = 1
    while os.path.exists(os.path.join(work, "h2.%d.time" % i)):
        runs.append(parse(os.path.join(work, "h2.%d.time" % i)))
        i += 1
runs.sort(key=lambda r: r["wall"])
h2 = dict(runs[(len(runs) - 1) // 2]) if runs else None
if h2:
    h2["rss_kb"] = max(r["rss_kb"] for r in runs)  # the highest peak of all runs
ts = parse(os.path.join(work, "ts.time")) if ts_rc == "0" else None
mb = size / 1e6
print("capture      %s: %.1f MB (%d bytes), %d packets, %d rounds of %d sources"
      % (cap, mb, size, info["packets"], info["rounds"], len(info["sources"])))
def line(name, r):
    if r is None:
        return "%-12s n/a" % name
    return ("%-12s %8.2f s wall  %8.2f s cpu  %8.1f MB/s  peak RSS %8.1f MB"
            % (name, r["wall"], r["cpu"], mb / r["wall"], r["rss_kb"] / 1024))
print(line("h2keepalive", h2) + ("" if have_bin == "1" else "   (binary not built)")
      + ("" if h2 or have_bin != "1" else "   (failed, exit %s)" % h2_rc)
      + ("   median of %d runs: %.2f-%.2f s" % (len(runs), runs[0]["wall"], runs[-1]["wall"])
         if len(runs) > 1 else ""))
print(line("tshark", ts) + ("" if ts else "   (failed, exit %s)" % ts_rc))
if h2 and ts:
    print("ratio        throughput h2keepalive/tshark = %.2fx   peak RSS h2keepalive/tshark = %.2fx"
          % (ts["wall"] / h2["wall"], h2["rss_kb"] / ts["rss_kb"]))
else:
    print("ratio        n/a")
# Peak RSS of h2keepalive by capture size, smallest first; "per MB" is the growth from the
# previous size, which stays near 0 when memory does not grow with the capture.
rows = [(size, info, h2)] if h2 else []
for i, c in enumerate(scale_caps):
    r = parse(os.path.join(work, "scale%d.time" % i))
    if r:
        rows.append((os.path.getsize(c), json.load(open(c + ".json")), r))
rows.sort(key=lambda x: x[0])
prev = None
for sz, inf, r in rows:
    growth = ""
    if prev:
        growth = "  +%.2f MB RSS per MB of capture" % (
            (r["rss_kb"] - prev[1]["rss_kb"]) / 1024 / max((sz - prev[0]) / 1e6, 1e-9))
    print("rss scaling  %8.1f MB capture, %6d TCP connections: %6.2f s wall %8.1f MB/s  peak RSS %8.1f MB%s"
          % (sz / 1e6, inf.get("tcp_connections", 0), r["wall"], sz / 1e6 / r["wall"],
             r["rss_kb"] / 1024, growth))
    prev = (sz, r)
EOF

if [ "$KEEP" = 1 ]; then say "kept $CAP"; fi
# exit 1 if a timed command failed
if [ "$TS_RC" != 0 ] || { [ "$HAVE_BIN" = 1 ] && [ "$H2_RC" != 0 ] && [ "$H2_RC" != 1 ]; }; then exit 1; fi
