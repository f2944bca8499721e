#!/usr/bin/env bash
# IMAP import throughput against a real Dovecot on loopback (issue #12):
# for each MAILS (default: 1000 10000), the same MAILS distinct mails of
# ~120 KB (an ~88 KB PDF each, from an allowed sender) are imported by
#   mailferry   `mailferry run import-emails`: fetch, parse, spool (fsynced),
#               ledger, UID MOVE to Exported — the whole import;
#   mbsync      Debian isync: INBOX → a local Maildir (fsync per mail, no move);
#   imaplib     bench/imap_fetch_move.py: UID FETCH BODY.PEEK[] in batches of
#               100, write each mail to a file (no fsync), UID MOVE the batch;
# each on a Dovecot user of its own whose INBOX was just filled by hard-linking
# a Maildir built once. Prints wall seconds, mails/s, MB/s (MIME bytes, 10^6),
# the tool's CPU (user+sys) and peak RSS (from /usr/bin/time -v), the CPU
# Dovecot spent serving it, and mailferry's rate over the faster peer's.
#
#   bench/imap.sh [MAILS...]
# Mails are made by bench/imap_make_mails.py (1.2 GB for 10,000; spools are
# deleted after each run). While mailferry moves one mail per UID MOVE, the
# 10,000-mail run takes about 15 minutes: `bench/imap.sh 1000` takes about one.
#
#   bench/imap.sh large [MB]
# Memory for one large mail (issue: "a 100 MB attachment imports with peak RSS
# ≤ 2× the mail + 50 MB"): ONE mail from the same allowed sender with one PDF
# of MB×10^6 random bytes (default 100; base64 makes the MIME ~1.37× that),
# imported by mailferry alone (BENCH_TOOLS and BENCH_REPEAT are ignored) from a
# fresh user's INBOX; checks that one document was made, that it holds the
# whole attachment, and that the mail moved to Exported; prints e.g.
#   large mail: 136.8 MB of MIME (100.0 MB attachment): mailferry peak RSS 260.3 MB, bound 2 × mail + 50 MB = 323.7 MB: within
# (or OVER), then wall seconds and CPU seconds. MB here are 10^6 bytes, RSS
# included. OVER is a measurement, not a failure: the exit status is non-zero
# only when the import fails. The importer's max_mail_bytes is raised to the
# mail's size when that is over the default (150 MiB, from MB = 115 on).
# Environment:
#   BENCH_SECURITY=tls   tls (default: implicit TLS, the test CA as tls_ca_pem /
#                        CertificateFile / cafile) or none (the plain port, for all three)
#   BENCH_REPEAT=1       runs per tool and size; the table shows the median by time
#   MAILFERRY_BIN=…      use this binary instead of `cargo build --release -p mailferry`
#   BENCH_KEEP=1         keep the temp dir (spools, logs) for a look afterwards
#   BENCH_TOOLS="mbsync imaplib mailferry"   which tools to run, in this order
#   BENCH_MAILFERRY_PREFIX="strace -c -f -o /tmp/mf.strace"   run mailferry under this
#                        (to see where its time goes; skews its figures)
#
# Needs dovecot-imapd, isync (only when mbsync runs) and time
# (scripts/install-test-deps.sh installs the first two; `time` is installed here
# when missing and we are root). Everything listens on 127.0.0.1; every process
# started here is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=mails large_mb=
if [ "${1:-}" = large ]; then
    mode=large
    [ $# -le 2 ] || { echo "usage: bench/imap.sh large [MB]" >&2; exit 2; }
    large_mb=${2:-100}
    [[ "$large_mb" =~ ^[1-9][0-9]*$ ]] || { echo "MB must be a positive number, not '$large_mb'" >&2; exit 2; }
    sizes=(1)
else
    sizes=("$@")
    [ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
    for n in "${sizes[@]}"; do
        [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "MAILS must be positive numbers, not '$n'" >&2; exit 2; }
    done
fi
security=${BENCH_SECURITY:-tls}
case "$security" in tls | none) ;; *) echo "BENCH_SECURITY must be tls or none" >&2; exit 2 ;; esac
repeat=${BENCH_REPEAT:-1}
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_REPEAT must be a positive number" >&2; exit 2; }
read -r -a tools <<<"${BENCH_TOOLS:-mbsync imaplib mailferry}"
for tool in "${tools[@]}"; do
    case "$tool" in mailferry | mbsync | imaplib) ;; *) echo "unknown tool '$tool' in BENCH_TOOLS" >&2; exit 2 ;; esac
done
if [ "$mode" = large ]; then tools=(mailferry) repeat=1; fi

needed=(dovecot doveadm curl jq python3 openssl)
[[ " ${tools[*]} " != *" mbsync "* ]] || needed+=(mbsync)
for cmd in "${needed[@]}"; do
    command -v "$cmd" >/dev/null || { echo "$cmd is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
done
if [ ! -x /usr/bin/time ]; then
    [ "$(id -u)" = 0 ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

# --- the mailferry binary ------------------------------------------------------
mf=
if [[ " ${tools[*]} " != *" mailferry "* ]]; then
    :
elif [ -n "${MAILFERRY_BIN:-}" ]; then
    mf=$MAILFERRY_BIN
else
    echo "building mailferry (release)…"
    cargo build --release --quiet -p mailferry
    target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
    mf=$target/release/mailferry
fi
# The build may be replaced by a concurrent one while we run: use a copy.
work=$(mktemp -d /tmp/mailferry-bench.XXXXXX)
chmod 755 "$work"
if [ -n "$mf" ]; then
    cp "$mf" "$work/mailferry"
    mf=$work/mailferry
fi

serve_pid=
cleanup() {
    local rc=$?
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    stop_dovecot >/dev/null 2>&1 || true
    if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Dovecot -----------------------------------------------------------------
# shellcheck source=../scripts/peers.sh
source scripts/peers.sh
start_dovecot
conf=$MAILFERRY_TEST_DOVECOT_CONF
dove_dir=$MAILFERRY_DOVECOT_DIR
host=$MAILFERRY_TEST_DOVECOT_HOST
ca=$MAILFERRY_TEST_DOVECOT_CA
if [ "$security" = tls ]; then port=$MAILFERRY_TEST_DOVECOT_IMAPS_PORT; else port=$MAILFERRY_TEST_DOVECOT_IMAP_PORT; fi
mail_owner=$(stat -c %U "$dove_dir/mail")
doveadm() { command doveadm -c "$conf" "$@"; }

# A mailbox user with Exported and Error, as test-support's Dovecot::new_user
# makes one: a line in passwd and userdb, whose mtime is moved on a second
# (Dovecot re-reads them when it changes, in whole seconds).
new_user() {
    local user=$1 password=$2 file now mtime
    printf '%s:{PLAIN}%s\n' "$user" "$password" >>"$dove_dir/passwd"
    printf '%s::::::\n' "$user" >>"$dove_dir/userdb"
    for file in "$dove_dir/passwd" "$dove_dir/userdb"; do
        now=$(date +%s)
        mtime=$(stat -c %Y "$file")
        [ "$mtime" -gt "$now" ] || mtime=$now
        touch -d "@$((mtime + 1))" "$file"
    done
    local i
    for i in $(seq 100); do
        doveadm user "$user" >/dev/null 2>&1 && doveadm auth test "$user" "$password" >/dev/null 2>&1 && break
        [ "$i" -lt 100 ] || { echo "Dovecot did not pick up user $user" >&2; return 1; }
        sleep 0.1
    done
    doveadm mailbox create -s -u "$user" Exported Error
}

# How many mails a folder of a user holds, by Dovecot's word.
count() { doveadm -f flow mailbox status -u "$1" messages "$2" | sed 's/.*messages=//'; }

# Fills the (empty) INBOX of a user with the first N mails of the master Maildir.
fill_inbox() {
    local user=$1 n=$2 cur=$dove_dir/mail/$1/Maildir/cur
    [ -d "$cur" ] || { echo "no Maildir for $user at $cur" >&2; return 1; }
    head -n "$n" "$work/master.list" | sed "s|^|$work/master/|" | xargs -d '\n' ln -t "$cur"
    doveadm force-resync -u "$user" INBOX
    local got
    got=$(count "$user" INBOX)
    [ "$got" = "$n" ] || { echo "INBOX of $user has $got mails, not $n" >&2; return 1; }
}

# CPU seconds (user+sys) of Dovecot so far: the master, its live children, and
# the children it has reaped (an IMAP session's process ends at logout).
dovecot_cpu() {
    python3 - "$(cat "$MAILFERRY_TEST_DOVECOT_PIDFILE")" <<'EOF'
import os, sys
master = int(sys.argv[1])
tick = os.sysconf("SC_CLK_TCK")
stats = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            with open(f"/proc/{p}/stat") as f:
                f = f.read().rsplit(")", 1)[1].split()
            stats[int(p)] = (int(f[1]), [int(x) for x in f[11:15]])  # ppid; utime stime cutime cstime
        except OSError:
            pass
total, todo = 0, [master]
while todo:
    pid = todo.pop()
    if pid not in stats:
        continue
    _, (ut, st, cut, cst) = stats[pid]
    total += ut + st + (cut + cst if pid == master else 0)
    todo += [c for c, (pp, _) in stats.items() if pp == pid]
print(f"{total / tick:.2f}")
EOF
}

# measure TOOL N USER -- COMMAND…: runs COMMAND under /usr/bin/time -v and
# appends a row to results.tsv.
measure() {
    local tool=$1 n=$2 log=$3; shift 4
    local before after t0 t1
    before=$(dovecot_cpu)
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$log.time" "$@" >"$log" 2>&1 || {
        echo "$tool failed (exit $?); the end of its output ($log):" >&2; tail -n 30 "$log" >&2; return 1
    }
    t1=$(date +%s.%N)
    sleep 0.3 # the IMAP session's process ends after the logout
    after=$(dovecot_cpu)
    python3 - "$tool" "$n" "$t0" "$t1" "$before" "$after" "$log.time" "$(head -n "$n" "$work/master.sizes" | awk '{ s += $1 } END { print s }')" \
        >>"$work/results.tsv" <<'EOF'
import sys
tool, n, t0, t1, before, after, timefile, nbytes = sys.argv[1:]
v = {}
for line in open(timefile):
    k, _, val = line.strip().rpartition(": ")
    v[k] = val
cpu = float(v["User time (seconds)"]) + float(v["System time (seconds)"])
rss = int(v["Maximum resident set size (kbytes)"]) / 1024
print("\t".join([tool, n, f"{float(t1) - float(t0):.3f}", f"{cpu:.2f}", f"{rss:.1f}",
                 f"{float(after) - float(before):.2f}", nbytes]))
EOF
}

# --- the mails -----------------------------------------------------------------
if [ "$mode" = large ]; then
    echo "making one mail with a $large_mb MB attachment…"
    python3 bench/imap_make_mails.py "$work/master" 1 "$((large_mb * 1000000))"
else
    max=0
    for n in "${sizes[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
    echo "making $max mails…"
    python3 bench/imap_make_mails.py "$work/master" "$max"
fi
(cd "$work/master" && ls | sort -n >"$work/master.list" && xargs -d '\n' stat -c %s <"$work/master.list" >"$work/master.sizes")
# The mail files belong to the mail user, as if Dovecot had delivered them
# (fs.protected_hardlinks lets Dovecot hard-link only its own files when moving).
chown -R "$mail_owner:" "$work/master"

# The importer's max_mail_bytes, when the default (DEFAULT_MAX_MAIL_BYTES in
# crates/domain/src/importer.rs: 150 MiB) is below the largest mail; empty keeps
# the default (and the importer JSON of the MAILS mode as it was).
default_max_mail_bytes=157286400
max_mail_bytes=
largest=$(sort -n "$work/master.sizes" | tail -n 1)
[ "$largest" -le "$default_max_mail_bytes" ] || max_mail_bytes=$largest

# --- the tools -----------------------------------------------------------------
run_mailferry() {
    local n=$1 user=$2 password=$3 dir=$4
    local data=$dir/data token web id
    mkdir -p "$data"
    export MAILFERRY_DATA_DIR=$data RUST_LOG=info
    token=$("$mf" token create --label bench 2>>"$dir/setup.log")
    web=$(free_port)
    MAILFERRY_LISTEN=127.0.0.1:$web "$mf" serve >>"$dir/setup.log" 2>&1 &
    serve_pid=$!
    local i
    for i in $(seq 100); do
        curl -sf "http://127.0.0.1:$web/healthz" >/dev/null && break
        [ "$i" -lt 100 ] || { echo "mailferry serve did not start: $dir/setup.log" >&2; return 1; }
        sleep 0.1
    done
    jq -n --arg host "$host" --argjson port "$port" --arg security "$security" --rawfile ca "$ca" \
        --arg user "$user" --arg password "$password" --arg max_mail_bytes "$max_mail_bytes" '{
          name: "bench", protocol: "imap", host: $host, port: $port, security: $security,
          username: $user, password: $password,
          folders: {inbox: "INBOX", exported: "Exported", error: "Error"},
          attachments: {include_inline: false, min_size: 100},
          rules: {sender_allow: ["*@fabrikam.example"]}
        } + (if $security == "tls" then {tls_ca_pem: $ca} else {} end)
          + (if $max_mail_bytes != "" then {max_mail_bytes: ($max_mail_bytes | tonumber)} else {} end)' >"$dir/importer.json"
    id=$(curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        --data-binary @"$dir/importer.json" "http://127.0.0.1:$web/api/v2/importers/email" | jq -r .id)
    kill "$serve_pid"
    wait "$serve_pid" || true
    serve_pid=
    [ -n "$id" ] && [ "$id" != null ] || { echo "creating the importer failed: $dir/setup.log" >&2; return 1; }

    fill_inbox "$user" "$n"
    # shellcheck disable=SC2086
    measure mailferry "$n" "$dir/run.log" -- ${BENCH_MAILFERRY_PREFIX:-} "$mf" run import-emails --importer "$id"
    unset MAILFERRY_DATA_DIR
    local docs
    # No documents dir at all when nothing was imported: 0, not a failing find.
    docs=$( (find "$data/documents" -name metadata.json 2>/dev/null || true) | wc -l)
    [ "$docs" = "$n" ] || {
        echo "mailferry: $docs documents, not $n; the end of its output ($dir/run.log):" >&2; tail -n 5 "$dir/run.log" >&2; return 1
    }
    check_moved "$user" "$n" mailferry
}

run_mbsync() {
    local n=$1 user=$2 password=$3 dir=$4 ssl
    if [ "$security" = tls ]; then ssl="SSLType IMAPS
CertificateFile $ca"; else ssl="SSLType None"; fi
    mkdir -p "$dir/maildir" "$dir/state"
    cat >"$dir/mbsyncrc" <<EOF
IMAPAccount bench
Host $host
Port $port
User $user
Pass $password
$ssl

IMAPStore far
Account bench

MaildirStore near
Path $dir/maildir/
Inbox $dir/maildir/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Sync Pull
Create Near
Expunge None
SyncState $dir/state/
EOF
    fill_inbox "$user" "$n"
    measure mbsync "$n" "$dir/run.log" -- mbsync -c "$dir/mbsyncrc" bench
    local got
    got=$(find "$dir/maildir/INBOX" -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l)
    [ "$got" = "$n" ] || { echo "mbsync: $got mails in the local Maildir, not $n ($dir/run.log)" >&2; return 1; }
}

run_imaplib() {
    local n=$1 user=$2 password=$3 dir=$4
    fill_inbox "$user" "$n"
    BENCH_IMAP_USER=$user BENCH_IMAP_PASSWORD=$password BENCH_IMAP_CA=$ca \
        measure imaplib "$n" "$dir/run.log" -- python3 bench/imap_fetch_move.py "$host" "$port" "$security" "$dir/out"
    local got
    got=$(find "$dir/out" -type f | wc -l)
    [ "$got" = "$n" ] || { echo "imaplib: $got files, not $n ($dir/run.log)" >&2; return 1; }
    check_moved "$user" "$n" imaplib
}

check_moved() {
    local user=$1 n=$2 tool=$3 inbox exported
    inbox=$(count "$user" INBOX)
    exported=$(count "$user" Exported)
    [ "$inbox" = 0 ] && [ "$exported" = "$n" ] \
        || { echo "$tool: INBOX has $inbox mails, Exported $exported (expected 0 and $n)" >&2; return 1; }
}

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); security: $security (port $port)"
: >"$work/results.tsv"

if [ "$mode" = large ]; then
    user=bench-large-$large_mb@example.test
    password=$(openssl rand -hex 12)
    dir=$work/runs/mailferry-large-$large_mb
    mkdir -p "$dir"
    new_user "$user" "$password"
    echo "mailferry: one mail of $largest bytes${max_mail_bytes:+ (max_mail_bytes $max_mail_bytes)}…"
    run_mailferry 1 "$user" "$password" "$dir"
    # The document holds the attachment whole: a file of exactly MB×10^6 bytes.
    attachment=$((large_mb * 1000000))
    found=$(find "$dir/data/documents" -type f -size "${attachment}c" | wc -l)
    [ "$found" = 1 ] || { echo "mailferry: the document has no file of $attachment bytes ($dir/data)" >&2; exit 1; }
    rm -rf "$dir/data/documents"
    echo
    python3 - "$work/results.tsv" "$dir/run.log.time" "$attachment" <<'EOF'
import sys
tool, n, wall, cpu, rss_mib, dcpu, nbytes = open(sys.argv[1]).read().splitlines()[-1].split("\t")
v = {}
for line in open(sys.argv[2]):
    k, _, val = line.strip().rpartition(": ")
    v[k] = val
mail = int(nbytes) / 1e6
rss = int(v["Maximum resident set size (kbytes)"]) * 1024 / 1e6
bound = 2 * mail + 50
verdict = "within" if rss <= bound else "OVER"
print(f"large mail: {mail:.1f} MB of MIME ({int(sys.argv[3]) / 1e6:.1f} MB attachment): "
      f"mailferry peak RSS {rss:.1f} MB, bound 2 × mail + 50 MB = {bound:.1f} MB: {verdict}")
print(f"  {float(wall):.2f} s wall, {float(cpu):.2f} CPU s (user+sys), {mail / float(wall):.1f} MB/s of MIME; "
      f"Dovecot CPU {float(dcpu):.2f} s; peak RSS {rss / mail:.2f} × mail")
EOF
    exit 0
fi
for n in "${sizes[@]}"; do
    for r in $(seq "$repeat"); do
        for tool in "${tools[@]}"; do
            user=bench-$tool-$n-$r@example.test
            password=$(openssl rand -hex 12)
            dir=$work/runs/$tool-$n-$r
            mkdir -p "$dir"
            new_user "$user" "$password"
            echo "$tool: $n mails (run $r of $repeat)…"
            "run_$tool" "$n" "$user" "$password" "$dir"
            tail -n 1 "$work/results.tsv" | awk -F'\t' '{ printf "  %.2f s, %.0f mails/s\n", $3, $2 / $3 }'
            # The copies cost disk, not information: drop them (the logs stay).
            rm -rf "$dir/data/documents" "$dir/maildir" "$dir/out"
        done
    done
done

echo
echo "IMAP import from Dovecot on loopback ($security), $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/results.tsv" "$repeat" <<'EOF'
import sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    tool, n, wall, cpu, rss, dcpu, nbytes = line.rstrip("\n").split("\t")
    rows[(int(n), tool)].append((float(wall), float(cpu), float(rss), float(dcpu), int(nbytes)))
tools = ["mailferry", "mbsync", "imaplib"]
print(f"{'tool':<10} {'mails':>6} {'seconds':>8} {'mails/s':>8} {'MB/s':>7} {'CPU s':>6} {'peak RSS MB':>11} {'Dovecot CPU s':>13}  mailferry/faster peer")
for n in sorted({n for n, _ in rows}):
    best = {t: sorted(rows[(n, t)])[len(rows[(n, t)]) // 2] for t in tools if rows[(n, t)]}  # median by time
    rate = {t: n / r[0] for t, r in best.items()}
    peers = [t for t in ("mbsync", "imaplib") if t in rate]
    for tool, (wall, cpu, rss, dcpu, nbytes) in best.items():
        ratio = ""
        if tool == "mailferry" and peers:
            faster = max(peers, key=rate.get)
            ratio = f"  {rate['mailferry'] / rate[faster]:.2f}× {faster}"
        print(f"{tool:<10} {n:>6} {wall:>8.2f} {n / wall:>8.0f} {nbytes / wall / 1e6:>7.1f} {cpu:>6.2f} {rss:>11.1f} {dcpu:>13.2f}{ratio}")
EOF
