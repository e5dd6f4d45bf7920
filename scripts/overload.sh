#!/usr/bin/env bash
# The overload measurement of issue 9 with release binaries (the figure the README gives; the debug
# integration test OverloadTests checks the same scenario for completion, errors, memory and starvation):
# 4 replicas (keygen defaults, HMAC, 401 clients, --app bench), a well-behaved client measured idle, then
# again while 400 clients with connections of their own hammer the cluster.
#
#   scripts/overload.sh [ROUNDS]      # prints idle p99, loaded p99 and their ratio per round, then the median
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
swift build -c release --product themis >/dev/null
themis=.build/release/themis
dir=$(mktemp -d /tmp/themis-overload-XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
base=$(( 20000 + RANDOM % 20000 ))
"$themis" keygen --replicas 4 --clients 401 --auth hmac --checkpoint-interval 50 --base-port "$base" --out "$dir" >/dev/null
for id in 0 1 2 3; do
    "$themis" replica --config "$dir/cluster.json" --id "$id" --app bench >"$dir/replica-$id.log" 2>&1 &
    pids+=($!)
done
p99() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["latency_ms"]["p99"])'; }
well=(bench --config "$dir/cluster.json" --first-client 400 --clients 1 --json)
ratios=()
for round in $(seq 1 "$rounds"); do
    idle=$("$themis" "${well[@]}" --duration 4 --warmup 1 2>/dev/null | p99)
    "$themis" bench --config "$dir/cluster.json" --clients 400 --connections per-client --duration 14 --warmup 2 --json \
        >"$dir/load.json" 2>/dev/null &
    load=$!
    sleep 6
    busy=$("$themis" "${well[@]}" --duration 6 --warmup 0.5 2>/dev/null | p99)
    wait "$load"
    ratio=$(python3 -c "print(round($busy / $idle, 1))")
    ratios+=("$ratio")
    echo "round $round: idle p99 $idle ms, under 400 clients p99 $busy ms: ${ratio}x"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print "median ratio: " a[int((NR+1)/2)] "x over " NR " rounds"}'
