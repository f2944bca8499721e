#!/usr/bin/env bash
# Scale benchmarks (issue #14), on a private PostgreSQL (scripts/peers.sh
# start_postgres; a fresh database per case) and the Microsoft emulator
# running in the benchmark's process (crates/app/examples/scale_bench.rs):
#
#   spread   IMPORTERS app-only importers (one shared mailbox each) x
#            MAILS_EACH mails of ~5 KB (a PDF), +20 ms per Graph request:
#            mails/s with 1, 2 and 3 `mailferry serve` instances on one
#            PostgreSQL (the import-emails job every 2 s; import work spread
#            through the import_work table).
#   idle     one `mailferry serve` with IMPORTERS importers and empty Inboxes:
#            CPU % and RSS over IDLE_WINDOW seconds without an import run,
#            then over a window with one import-emails run in it.
#   refresh  `mailferry run refresh-tokens` over GRANTS delegated grants
#            holding real refresh tokens of the emulator, +50 ms per token
#            request; then the peer bench/msal_refresh_peer.py (msal, 32
#            threads) on as many tokens of its own.
#
#   bench/scale.sh [spread|idle|refresh|all]   (default all)
#
# Sizes (environment): IMPORTERS (1000), MAILS_EACH (10), INSTANCES ("1 2 3"),
# IDLE_WINDOW (60), GRANTS (10000). The refresh peer needs a Python with msal:
# scripts/install-test-deps.sh makes .venv-test; BENCH_PYTHON=… names another,
# BENCH_PYTHON= skips it. CARGO_BUILD_JOBS=1 builds on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
IMPORTERS="${IMPORTERS:-1000}"
MAILS_EACH="${MAILS_EACH:-10}"
INSTANCES="${INSTANCES:-1 2 3}"
IDLE_WINDOW="${IDLE_WINDOW:-60}"
GRANTS="${GRANTS:-10000}"
export BENCH_PYTHON="${BENCH_PYTHON-$PWD/.venv-test/bin/python}"
[ -z "$BENCH_PYTHON" ] || [ -x "$BENCH_PYTHON" ] || { echo "$BENCH_PYTHON is missing: run scripts/install-test-deps.sh" >&2; exit 1; }

cargo build --quiet --release -p mailferry --bin mailferry --example scale_bench
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export MAILFERRY_BIN="$target_dir/release/mailferry"
bench="$target_dir/release/examples/scale_bench"

# shellcheck source=../scripts/peers.sh
source scripts/peers.sh
start_postgres
export MAILFERRY_PG_DIR # the benchmark reads PostgreSQL's CPU through its postmaster.pid
trap stop_postgres EXIT
echo "$(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

case "$what" in spread | all)
    echo "== spread: $IMPORTERS importers x $MAILS_EACH mails, +20 ms per Graph request, instances: $INSTANCES"
    # shellcheck disable=SC2086 # one argument per instance count
    "$bench" spread "$IMPORTERS" "$MAILS_EACH" 20 $INSTANCES
esac
case "$what" in idle | all)
    echo "== idle: one serve, $IMPORTERS importers, nothing to import, ${IDLE_WINDOW}-second windows"
    "$bench" idle "$IMPORTERS" "$IDLE_WINDOW"
esac
case "$what" in refresh | all)
    echo "== refresh-tokens: $GRANTS grants, +50 ms per token request"
    "$bench" refresh "$GRANTS" 50
esac
