#!/usr/bin/env bash
# Reproduces the README's performance figures: the reference workload (4 replicas + 1 bench process,
# 100-byte requests, 10-byte replies, 10 and 40 closed-loop clients, 20 s) three times per
# authentication scheme with the clients sharing one connection per replica (the default), and for HMAC
# also with a connection per client and with Hybster (3 replicas); then a 1..40-client sweep per
# configuration for the charts.
# Usage: scripts/run-benchmarks.sh [OUT_DIR]   (default /tmp/themis-bench-results; takes about 25 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/themis-bench-results}"
mkdir -p "$out"
swift build -c release --product themis
swift build -c release --product themis-replica
bin=.build/release/themis
for auth in hmac ed25519 ecdsa rsa; do
  for run in 1 2 3; do
    "$bin" bench --local --auth "$auth" --clients 10,40 --request-size 100 --reply-size 10 --duration 20 --json \
      --csv "$out/reference.csv" | tee "$out/reference-$auth-$run.json"
  done
done
for run in 1 2 3; do
  "$bin" bench --local --auth hmac --connections per-client --clients 10,40 --request-size 100 --reply-size 10 --duration 20 \
    --json --csv "$out/reference.csv" | tee "$out/reference-hmac-per-client-$run.json"
  "$bin" bench --local --protocol hybster --auth hmac --clients 10,40 --request-size 100 --reply-size 10 --duration 20 \
    --json --csv "$out/reference.csv" | tee "$out/reference-hybster-hmac-$run.json"
done
for auth in hmac ed25519 ecdsa rsa; do
  "$bin" bench --local --auth "$auth" --clients 1,5,10,20,40 --request-size 100 --reply-size 10 --duration 10 \
    --csv "$out/sweep.csv" --json
done
"$bin" bench --local --auth hmac --connections per-client --clients 1,5,10,20,40 --request-size 100 --reply-size 10 \
  --duration 10 --csv "$out/sweep.csv" --json
"$bin" bench --local --protocol hybster --auth hmac --clients 1,5,10,20,40 --request-size 100 --reply-size 10 \
  --duration 10 --csv "$out/sweep.csv" --json
echo "results in $out; charts: python3 scripts/plot-bench.py $out/sweep.csv --out docs/"
