#!/usr/bin/env bash
# Benchmark a PBFT cluster of hosts on this machine at several link delays (the README's figures with delay):
# 4 replicas, each in a network namespace of its own (scripts/netns-cluster.sh), the load generator on this
# machine's side of the switch. For each delay the cluster is set up and started afresh.
#   scripts/netns-bench.sh [DELAYS_MS] [LOSS_PERCENT] [bench arguments ...]
#   scripts/netns-bench.sh "0 1 5" 0 --clients 1,40 --duration 8 --warmup 2
#   THEMIS_KEYGEN_ARGUMENTS="--checkpoint-interval 32 --tentative-execution" scripts/netns-bench.sh "1" 0 --clients 1
#     (extra `themis keygen` arguments for the cluster, split on spaces)
# Needs root; uses the release build (.build/release/themis and themis-replica; built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
delays=${1:-"0 1 5"}
loss=${2:-0}
shift $(( $# > 2 ? 2 : $# ))
bench_arguments=("$@")
[ ${#bench_arguments[@]} -gt 0 ] || bench_arguments=(--clients 1,40 --duration 8 --warmup 2)
name=thmbench
subnet=10.231.8
[ -x .build/release/themis ] || swift build -c release --product themis
[ -x .build/release/themis-replica ] || swift build -c release --product themis-replica
directory=$(mktemp -d /tmp/themis-netns-bench.XXXXXX)
cleanup() {
    scripts/netns-cluster.sh down --name "$name" > /dev/null 2>&1 || true
    rm -rf "$directory"
}
trap cleanup EXIT
.build/release/themis keygen --replicas 4 --clients 400 --auth hmac --out "$directory" \
    --hosts "$subnet.1,$subnet.2,$subnet.3,$subnet.4" --base-port 7000 ${THEMIS_KEYGEN_ARGUMENTS:-} > /dev/null
for delay in $delays; do
    scripts/netns-cluster.sh up --name "$name" --subnet "$subnet" --hosts 4 --delay "$delay" --loss "$loss" > /dev/null
    for id in 0 1 2 3; do  # in a subshell each: not this shell's jobs (down kills them)
        (ip netns exec "$name-$id" .build/release/themis-replica --config "$directory/cluster.json" --id "$id" \
            --app bench --first-start > "$directory/replica-$id.log" 2>&1 &)
    done
    echo "== delay $delay ms one-way, loss $loss %"
    .build/release/themis bench --config "$directory/cluster.json" "${bench_arguments[@]}"
    scripts/netns-cluster.sh down --name "$name" > /dev/null
done
