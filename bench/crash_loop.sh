#!/usr/bin/env bash
# The crash loop at scale (issue #16): `mailferry run import-emails` is
# SIGKILLed at random points (50–600 ms into a run) KILLS times for each
# combination of mail server and database — the Graph emulator (with 429,
# 503 and dropped-connection storms on a few percent of requests) and a real
# Dovecot, on SQLite and on PostgreSQL — with fresh mail delivered whenever
# the Inbox empties; then one last run, and a census of every mail:
#   kills, lost (in no folder), duplicated (two folders or two documents),
#   partial (a document row without its spool folder, a spool folder without
#   its row, or a temporary folder left behind).
# The test suite runs the same loop with 20 kills per combination.
#
#   bench/crash_loop.sh [KILLS]        (default 1000; about 10 minutes per
#                                       combination at 1000 kills on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-1000}

scripts/install-test-deps.sh >&2
source scripts/peers.sh
trap stop_peers EXIT
start_postgres >&2
start_dovecot >&2

cargo test -p mailferry --test it --no-run >&2
log=$(mktemp)
status=0
MAILFERRY_CRASH_KILLS=$kills cargo test -p mailferry --test it \
    import::repeated_sigkills -- --nocapture --test-threads 1 >"$log" 2>&1 || status=$?
# The test harness may print a test's name on the same line.
grep -oE 'crash loop \(.*' "$log" || true
grep -E '^test result:|panicked' "$log" >&2 || true
[ $status -eq 0 ] || { tail -60 "$log" >&2; echo "crash loop failed (log: $log)" >&2; exit $status; }
echo "full log: $log" >&2
