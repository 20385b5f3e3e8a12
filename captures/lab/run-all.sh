#!/usr/bin/env bash
# Regenerate the lab captures: sudo captures/lab/run-all.sh [-j JOBS] [SCENARIO ...]
# Builds network namespaces (h2klab-*), runs real gRPC stacks and intermediaries in them, captures with
# tcpdump, checks every capture against its truth with tshark, and writes captures/<scenario>/.
# Everything it creates (namespaces, processes) is removed on any exit, Ctrl-C included.
set -euo pipefail
LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX=h2klab-

if [[ $(id -u) -ne 0 ]]; then
  echo "run-all.sh: must run as root (network namespaces, iptables, tcpdump)" >&2
  exit 2
fi
for tool in ip iptables ip6tables tcpdump tshark capinfos editcap nginx haproxy openssl node npm python3; do
  command -v "$tool" >/dev/null || { echo "run-all.sh: missing $tool" >&2; exit 2; }
done

LAB_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$LAB_PID" ]] && kill -0 "$LAB_PID" 2>/dev/null; then
    kill -TERM "$LAB_PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$LAB_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$LAB_PID" 2>/dev/null || true
  fi
  # Every process still inside one of our namespaces is ours: end it, then drop the namespace.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "${TMPDIR:-/tmp}"/h2klab-* 2>/dev/null || true  # work dirs of scenarios cut short
  exit "$rc"
}
trap cleanup EXIT INT TERM

# Dependencies, installed only when missing (pinned in requirements.txt / package-lock.json).
if ! "$LAB/.venv/bin/python" -c "import grpc" 2>/dev/null; then
  python3 -m venv "$LAB/.venv"
  "$LAB/.venv/bin/pip" install -q -r "$LAB/requirements.txt"
fi
if [[ ! -d "$LAB/node_modules/@grpc/grpc-js" ]]; then
  (cd "$LAB" && npm ci --no-audit --no-fund --loglevel=error)
fi

start=$(date +%s)
"$LAB/.venv/bin/python" "$LAB/lab.py" "$@" &
LAB_PID=$!
set +e
wait "$LAB_PID"
rc=$?
set -e
LAB_PID=
echo "run-all.sh: finished in $(( $(date +%s) - start ))s (exit $rc)"
exit "$rc"
