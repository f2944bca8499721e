#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while and prints what it did.
#   bench/fuzz.sh TARGET MINUTES      (targets: ls fuzz/fuzz_targets)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the toolchain is stable, so
# libFuzzer's nightly-only flags are allowed with RUSTC_BOOTSTRAP=1. The seed
# corpus is fuzz/corpus/TARGET (in the repository); what the run adds goes
# to a scratch copy, so the repository's corpus stays small. A crash is
# saved under fuzz/artifacts/TARGET/: turn it into a regression fixture.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: bench/fuzz.sh TARGET MINUTES}
minutes=${2:-10}
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "fuzz/corpus/$target/." "$work/"
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir fuzz "$target" >&2
start=$(date +%s)
set +e
cargo fuzz run --fuzz-dir fuzz "$target" "$work" -- \
    -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -print_final_stats=1 2>"$work.log"
status=$?
set -e
end=$(date +%s)
runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work.log" | grep -Eo '[0-9]+$' || echo "?")
cov=$(grep -Eo 'cov: [0-9]+' "$work.log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
echo "target=$target minutes=$minutes seconds=$((end - start)) runs=$runs coverage=$cov exit=$status corpus=$(ls "$work" | wc -l)"
if [ $status -ne 0 ]; then
    tail -40 "$work.log" >&2
    echo "crash: see fuzz/artifacts/$target/" >&2
fi
rm -f "$work.log"
exit $status
