#!/bin/sh
# Runs every fuzz target in turn for SECS seconds each (default 600), one job, seeded corpora,
# logs in logs/<target>.log. Usage (from fuzz/): ./run-all.sh [SECS] [TARGET...]
set -u
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-capture tcp http2 tls pipeline hpack}
mkdir -p logs
for t in $targets; do
    mkdir -p corpus/$t
    cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        -print_final_stats=1 > "logs/$t.log" 2>&1
    echo "$t exit $?"
done
