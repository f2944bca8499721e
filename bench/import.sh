#!/usr/bin/env bash
# Graph import throughput (issue #13): MAILS (default 1000) mails of ~120 KB
# in the in-process Microsoft emulator, imported by `import-emails` into the
# filesystem spool, for each LATENCY in milliseconds added to every Graph
# request (default: 20 100); then, in the same run on the same mails, the
# peer bench/graph_sdk_peer.py on Microsoft's msgraph-sdk (list, `$value`
# to a file, move; 4 in flight). Prints mails/s, MB/s, requests per mail,
# the most requests in flight, CPU, peak RSS, the limit Graph's 4
# concurrent requests allow, and mailferry's rate over the peer's.
#
#   bench/import.sh [MAILS] [LATENCY...]
# The peer needs a Python with msgraph-sdk: scripts/install-test-deps.sh
# makes .venv-test; BENCH_PYTHON=… names another, BENCH_PYTHON= skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
MAILS="${1:-1000}"
shift || true
latencies=("$@")
[ ${#latencies[@]} -gt 0 ] || latencies=(20 100)
export BENCH_PYTHON="${BENCH_PYTHON-$PWD/.venv-test/bin/python}"
[ -z "$BENCH_PYTHON" ] || [ -x "$BENCH_PYTHON" ] || { echo "$BENCH_PYTHON is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
cargo build --quiet --release -p mailferry --example import_bench
for latency in "${latencies[@]}"; do
    echo "== $MAILS mails, +$latency ms per Graph request"
    cargo run --quiet --release -p mailferry --example import_bench -- "$MAILS" "$latency"
done
