#!/usr/bin/env bash
# Runs a static h2keepalive in an EMPTY chroot (a directory holding nothing but the binary and one
# capture), as root, the way it will run in a bare debug container:
#   1. --version
#   2. live -i lo and live -i any -f 'tcp port P' for 3 s while a stdlib-only Python client and
#      server exchange HTTP/2 PINGs and a GOAWAY on loopback (the chroot shares the network
#      namespace): input.packets > 0 and one HTTP/2 connection
#   3. analyze of captures/nat-reset/capture.pcap inside the chroot: same text and JSON as REF
#
#   packaging/test-static-chroot.sh [STATIC_BIN] [REF_BIN]
#
# STATIC_BIN defaults to packaging/build-static.sh's output; REF_BIN (a normal build) to
# target/release/h2keepalive. Needs root (chroot, capture) and python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-/tmp/target-static}/static-musl/h2keepalive}
REF=${2:-$ROOT/target/release/h2keepalive}
CAPTURE=$ROOT/captures/nat-reset/capture.pcap
[ "$(id -u)" = 0 ] || { echo "test-static-chroot: run as root" >&2; exit 1; }
[ -x "$BIN" ] || { echo "test-static-chroot: no $BIN (run packaging/build-static.sh)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/h2k-chroot.XXXXXX)
TMP=$(mktemp -d /tmp/h2k-chroot-out.XXXXXX)
trap 'rm -rf "$DIR" "$TMP"' EXIT
cp "$BIN" "$DIR/h2keepalive"
cp "$CAPTURE" "$DIR/capture.pcap"
fail=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; fail=1; }

# A minimal HTTP/2 exchange: preface, SETTINGS, PINGs answered, a server GOAWAY, FIN.
cat > "$TMP/h2pair.py" <<'EOF'
import socket, struct, sys, threading, time
PORT, PINGS = int(sys.argv[1]), int(sys.argv[2])
def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: return None
        b += c
    return b
def read_frame(s):
    h = recv_exact(s, 9)
    if h is None: return None
    p = recv_exact(s, int.from_bytes(h[:3], "big"))
    return None if p is None else (h[3], h[4], p)
def server(ls):
    c, _ = ls.accept()
    recv_exact(c, 24)
    c.sendall(frame(4, 0, 0))
    while (f := read_frame(c)) is not None:
        t, fl, p = f
        if t == 4 and not fl & 1: c.sendall(frame(4, 1, 0))
        if t == 6 and not fl & 1: c.sendall(frame(6, 1, 0, p))
        if t == 6 and p == b"bye!bye!":
            c.sendall(frame(7, 0, 0, struct.pack(">II", 0, 0)))
            break
    c.close()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", PORT)); ls.listen(1)
th = threading.Thread(target=server, args=(ls,)); th.start()
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
for i in range(PINGS):
    time.sleep(0.3)
    s.sendall(frame(6, 0, 0, struct.pack(">Q", i + 1)))
s.sendall(frame(6, 0, 0, b"bye!bye!"))
while read_frame(s) is not None: pass
s.close(); th.join(); ls.close()
EOF

echo "chroot $DIR: $(cd "$DIR" && ls | tr '\n' ' ')"

# 1. --version
if v=$(chroot "$DIR" /h2keepalive --version); then ok "--version: $v"; else bad "--version"; fi

# 2. live capture
live() { # NAME PORT ARGS...
    local name=$1 port=$2; shift 2
    (sleep 0.7; python3 "$TMP/h2pair.py" "$port" 3) &
    local gen=$!
    local rc=0
    chroot "$DIR" /h2keepalive live "$@" --duration 3 -q --format json > "$TMP/$name.json" 2> "$TMP/$name.err" || rc=$?
    wait "$gen"
    # exit 0 or 1 (findings) are both a completed capture
    if [ "$rc" -gt 1 ]; then bad "live $*: exit $rc: $(cat "$TMP/$name.err")"; return; fi
    python3 - "$TMP/$name.json" "$*" <<'EOF' || fail=1
import json, sys
d = json.load(open(sys.argv[1])); i = d["input"]
c = d.get("connections", [])
line = f"live {sys.argv[2]}: input.packets={i['packets']} http2_connections={i['http2_connections']}"
if c:
    v = c[0].get("verdict") or {}
    line += f"; {c[0]['client']} -> {c[0]['server']}, {len(c[0].get('pings', []))} PINGs, verdict {v.get('cause')} by {v.get('killed_by')}"
ok = i["packets"] > 0 and i["http2_connections"] >= 1
print(("ok    " if ok else "FAIL  ") + line)
sys.exit(0 if ok else 1)
EOF
}
live lo 50061 -i lo
live any 50062 -i any -f 'tcp port 50062'

# 3. analyze, against the normal build
if [ -x "$REF" ]; then
    for fmt in text json; do
        a=0; b=0
        chroot "$DIR" /h2keepalive analyze -q --format "$fmt" /capture.pcap > "$TMP/static.$fmt" || a=$?
        (cd "$DIR" && "$REF" analyze -q --format "$fmt" capture.pcap) > "$TMP/ref.$fmt" || b=$?
        # the reference ran on capture.pcap, the chroot on /capture.pcap
        sed -i 's#/capture\.pcap#capture.pcap#g' "$TMP/static.$fmt"
        if [ "$a" = "$b" ] && cmp -s "$TMP/static.$fmt" "$TMP/ref.$fmt"; then
            ok "analyze --format $fmt: same output as $REF ($(wc -l < "$TMP/static.$fmt") lines, exit $a)"
        else
            bad "analyze --format $fmt differs from $REF (exit $a vs $b)"; diff "$TMP/ref.$fmt" "$TMP/static.$fmt" | head -20
        fi
    done
else
    bad "no reference build $REF to compare analyze with"
fi
exit $fail
