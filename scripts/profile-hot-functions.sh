#!/usr/bin/env bash
# Regenerates Sources/themis-replica/hot-functions.order, the list of functions a replica executes, which the
# linker places together at the front of themis-replica's code (lld --symbol-ordering-file).
#
# Why: a replica executes about 1.4 MiB of its 16 MiB of code, spread over the whole binary, and the kernel maps
# cached file pages around each page fault (fault-around, 64 KiB by default), so scattered code costs resident memory far beyond
# its size. Packed together, the executed code costs what it weighs (README "Memory").
#
# How: three local clusters (PBFT with hmac, then ed25519; Hybster with hmac) each run the reference workload (`themis bench --config`,
# 40 clients, K = 32 as in `bench --local`, so checkpoints and log truncation run too) while the primary (replica 0) and a backup (replica 1) run under valgrind's callgrind; every
# function either executed, from start to shutdown, goes into the list (defined symbols of the binary only,
# sorted so that the file diffs well). A stale list is harmless: a function missing from it is only placed
# where the linker would place it anyway.
#
# Needs valgrind (apt-get install valgrind) and python3. Takes about three minutes after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "profile-hot-functions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

swift build -c release --product themis
swift build -c release --product themis-replica
bin=.build/release
work=$(mktemp -d)
trap 'pkill -f "$work/" 2>/dev/null || true; rm -rf "$work"' EXIT

# valgrind 3.19 cannot read the DWARF 5 debug information: profile a copy without it (same symbols).
cp "$bin/themis-replica" "$work/themis-replica"
strip -g "$work/themis-replica"

port=7600
# PBFT with HMAC and Ed25519 (4 replicas), then Hybster with HMAC (3 replicas): their functions sort apart (by module).
for run in "pbft hmac 4" "pbft ed25519 4" "hybster hmac 3"; do
    read -r protocol auth replicas <<<"$run"
    dir="$work/$protocol-$auth"
    "$bin/themis" keygen --out "$dir" --protocol "$protocol" --replicas "$replicas" --auth "$auth" --base-port "$port" \
        --clients 45 --checkpoint-interval 32 >/dev/null
    for id in 0 1; do
        valgrind --tool=callgrind --demangle=no --callgrind-out-file="$dir/callgrind.$id" \
            "$work/themis-replica" --config "$dir/cluster.json" --id "$id" --app bench --first-start \
            >"$dir/replica-$id.log" 2>&1 &
    done
    for id in $(seq 2 $((replicas - 1))); do
        "$work/themis-replica" --config "$dir/cluster.json" --id "$id" --app bench --first-start >"$dir/replica-$id.log" 2>&1 &
    done
    sleep 20
    "$bin/themis" bench --config "$dir/cluster.json" --clients 40 --duration 30 --warmup 2
    "$bin/themis" status --config "$dir/cluster.json" || true
    # SIGINT: the replicas drain and exit, callgrind writes its profiles.
    pkill -INT -f "$work/themis-replica --config $dir/" || true
    wait
    port=$((port + 10))
done

python3 - "$bin/themis-replica" "$work" Sources/themis-replica/hot-functions.order <<'EOF'
import glob, re, subprocess, sys
binary, work, out = sys.argv[1:]
defined = set()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3:
        defined.add(parts[2])
executed = set()
for profile in glob.glob(f"{work}/*/callgrind.*"):
    for line in open(profile, errors="replace"):
        match = re.match(r"^c?fn=\(\d+\) (.+)$", line)
        if match:
            executed.add(match.group(1).strip())
names = sorted(executed & defined)
if len(names) < 1000:
    sys.exit(f"profile-hot-functions.sh: only {len(names)} executed functions found; the profiled replicas did not run")
with open(out, "w") as file:
    file.write("\n".join(names) + "\n")
print(f"{out}: {len(names)} functions")
EOF
# SwiftPM does not know that the link reads the list (touching a source was not enough here): remove the
# binary so that the next build links it with the new order.
rm -f "$bin/themis-replica"
swift build -c release --product themis-replica
