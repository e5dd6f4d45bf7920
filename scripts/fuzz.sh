#!/usr/bin/env bash
# Runs one libFuzzer target for a number of seconds:
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
# TARGET is frame, message, handshake, session or core (Fuzz/ThemisFuzz/FuzzTarget.swift says what each
# feeds). The binary is a release build with -sanitize=fuzzer in .build/fuzz (its own build directory, so
# the normal build is not touched). Fuzz/corpus/TARGET is the seed corpus (in git); new inputs go to
# .build/fuzz-corpus/TARGET, findings to .build/fuzz-findings/TARGET (crash-*, with the input that stopped
# the process). `scripts/fuzz.sh seeds` rewrites Fuzz/corpus from Fuzz/ThemisFuzzTargets/Seeds.swift.
# `THEMIS_FUZZ_TARGET=T .build/fuzz/release/themis-fuzz --replay ROUNDS FILE...` replays inputs without
# libFuzzer and prints the resident set before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags] | scripts/fuzz.sh seeds}"
export THEMIS_FUZZ=1
# gold cannot link libFuzzer into a SwiftPM executable here; lld can.
if ! THEMIS_FUZZ=1 swift build -c release --build-path .build/fuzz --product themis-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld > .build/fuzz-build.log 2>&1; then
    grep -E "error|warning" .build/fuzz-build.log >&2 || tail -20 .build/fuzz-build.log >&2
    echo "the fuzz build failed (.build/fuzz-build.log)" >&2
    exit 1
fi
binary=.build/fuzz/release/themis-fuzz
if [ "$target" = seeds ]; then
    rm -rf Fuzz/corpus
    exec "$binary" --write-seeds Fuzz/corpus
fi
seconds="${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags]}"
shift 2
mkdir -p ".build/fuzz-corpus/$target" ".build/fuzz-findings/$target"
THEMIS_FUZZ_TARGET="$target" exec "$binary" \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix=".build/fuzz-findings/$target/" "$@" \
    ".build/fuzz-corpus/$target" "Fuzz/corpus/$target"
