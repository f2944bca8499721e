#!/usr/bin/env bash
# mailferry's whole test suite, with its real peers: installs what is
# missing, starts PostgreSQL, Dovecot and an S3 server on free loopback ports, runs every
# test of the workspace, stops what it started, and ends with a one-line summary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export MAILFERRY_TEST_PYTHON="$PWD/.venv-test/bin/python"

source scripts/peers.sh
trap stop_peers EXIT
start_postgres
start_dovecot
start_s3

mkdir -p target
log=target/test-output.log
status=0
# The several-instances test counts 2-second cron slots across three
# processes; it runs on its own afterwards, so the CPU-heavy tests (Chromium,
# crash loops) cannot stall all three processes past a slot.
# Arguments (a test-name filter) run just what they name.
alone=scheduler_instances::
if [ $# -eq 0 ]; then
    cargo test --workspace --all-targets --no-fail-fast -- --skip "$alone" 2>&1 | tee "$log" || status=$?
    cargo test -p mailferry --test it --no-fail-fast "$alone" 2>&1 | tee -a "$log" || status=$?
else
    cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
fi

# cargo prints one result line per test binary; add them up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit $status
