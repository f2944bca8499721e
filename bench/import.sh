#!/usr/bin/env bash
# Import throughput: MAILS (default 1000) mails of ~120 KB from the in-process
# Microsoft emulator into the filesystem spool, as `import-emails` does.
# Prints mails/s and MB/s. Compare with shared/testbed.md's figures
# with care: those are IMAP peers (Dovecot on loopback), this is Graph.
set -euo pipefail
cd "$(dirname "$0")/.."
MAILS="${1:-1000}"
exec cargo run --quiet --release -p mailferry --example import_bench -- "$MAILS"
