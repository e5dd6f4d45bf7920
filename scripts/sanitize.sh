#!/usr/bin/env bash
# Runs the test suite under ThreadSanitizer and AddressSanitizer, each in its own build directory
# (.build/sanitize-thread, .build/sanitize-address), so the normal debug build is left alone.
#
#   scripts/sanitize.sh                 # both sanitizers, the whole suite (integration tests included:
#                                       # they start the sanitized themis binary as replica processes)
#   scripts/sanitize.sh thread          # one sanitizer
#   scripts/sanitize.sh address --skip Integration   # extra arguments go to `swift test`
#
# Known false positives are suppressed in scripts/tsan-suppressions.txt (each with its reason).
# A sanitizer report fails the run: TSan and ASan abort the process on their first finding
# (halt_on_error), so a report is never lost in passing output. Logs: /tmp/themis-sanitize-<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitizers=(thread address)
if [[ $# -gt 0 && ( "$1" == thread || "$1" == address ) ]]; then
    sanitizers=("$1")
    shift
fi

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="halt_on_error=1 detect_leaks=0 ${ASAN_OPTIONS:-}"

status=0
for sanitizer in "${sanitizers[@]}"; do
    log="/tmp/themis-sanitize-$sanitizer.log"
    echo "== swift test --sanitize=$sanitizer $* (log: $log)"
    start=$(date +%s)
    # THEMIS_DYNAMIC_REPLICA: the sanitizer runtimes need a dynamically linked themis-replica (Package.swift).
    if THEMIS_DYNAMIC_REPLICA=1 swift test --sanitize="$sanitizer" --scratch-path ".build/sanitize-$sanitizer" "$@" >"$log" 2>&1; then
        echo "   passed in $(( $(date +%s) - start )) s: $(grep -E 'Test run with' "$log" | tail -1)"
    else
        status=1
        echo "   FAILED after $(( $(date +%s) - start )) s; findings and failures:"
        grep -E 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|SUMMARY:|✘' "$log" | head -40 || tail -40 "$log"
    fi
done
exit $status
