# Real peers for mailferry's tests, started on free loopback ports in temp
# dirs and stopped by their own PID files. Source this file; it defines
# start_postgres / start_dovecot / start_s3 / stop_peers and exports what the
# tests read.

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
as_pg_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ]; then
        echo "PostgreSQL is not installed: run scripts/install-test-deps.sh (apt-get install postgresql)" >&2
        return 1
    fi
    MAILFERRY_PG_DIR=$(mktemp -d /tmp/mailferry-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$MAILFERRY_PG_DIR"
    local port
    port=$(free_port)
    as_pg_user "$bin/initdb" -D "$MAILFERRY_PG_DIR/data" -A trust -U postgres >"$MAILFERRY_PG_DIR/initdb.log" 2>&1 \
        || { cat "$MAILFERRY_PG_DIR/initdb.log" >&2; return 1; }
    # fsync off: test data is thrown away, and durability is not under test here.
    as_pg_user "$bin/pg_ctl" -D "$MAILFERRY_PG_DIR/data" -l "$MAILFERRY_PG_DIR/server.log" -w \
        -o "-p $port -k $MAILFERRY_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
        || { cat "$MAILFERRY_PG_DIR/server.log" >&2; return 1; }
    MAILFERRY_PG_BIN=$bin
    export MAILFERRY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL ($(basename "$(dirname "$bin")")) on 127.0.0.1:$port, data in $MAILFERRY_PG_DIR"
}

stop_postgres() {
    if [ -n "${MAILFERRY_PG_DIR:-}" ] && [ -f "$MAILFERRY_PG_DIR/data/postmaster.pid" ]; then
        as_pg_user "$MAILFERRY_PG_BIN/pg_ctl" -D "$MAILFERRY_PG_DIR/data" -m fast -w stop >/dev/null || true
    fi
    [ -n "${MAILFERRY_PG_DIR:-}" ] && rm -rf "$MAILFERRY_PG_DIR"
    MAILFERRY_PG_DIR=
}

# --- Dovecot (IMAP) -----------------------------------------------------------
# A private Dovecot 2.3 (Debian's dovecot-imapd; no system service): its own config,
# base dir, users and mail under one temp dir, on two free loopback ports: IMAPS
# (implicit TLS) and IMAP (plain, offering STARTTLS), with a CA and server certificate
# made at start. Users (passwd-file): alice@example.test and bob@example.test with
# passwords; alice@contoso.example and bob@contoso.example (the emulator's demo users)
# log in with XOAUTH2/OAUTHBEARER only: Dovecot checks the emulator's RS256 access
# tokens itself (local validation with the emulator's fixed signing key).
# `source scripts/peers.sh && start_dovecot` works by hand too; the exports are
# also written to "$MAILFERRY_DOVECOT_DIR/env.sh" for another shell to source.

MAILFERRY_REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The emulator's demo tenant (msemu::demo::TENANT_ID): its access tokens carry
# iss = https://sts.windows.net/{tenant}/.
MAILFERRY_MSEMU_DEMO_TENANT=7c9e6679-7425-40de-944b-e07fc1f90ae7

start_dovecot() {
    if ! command -v dovecot >/dev/null 2>&1; then
        echo "Dovecot is not installed: run scripts/install-test-deps.sh (apt-get install dovecot-imapd)" >&2
        return 1
    fi
    local dir imaps_port imap_port
    dir=$(mktemp -d /tmp/mailferry-dovecot.XXXXXX) || return 1
    chmod 755 "$dir"
    MAILFERRY_DOVECOT_DIR=$dir
    imaps_port=$(free_port)
    imap_port=$(free_port)
    while [ "$imap_port" = "$imaps_port" ]; do imap_port=$(free_port); done

    # Who runs what. As root: mail belongs to `vmail`, logins run as dovenull, internal
    # services as dovecot (Debian's users). Otherwise everything runs as the caller.
    local mail_user mail_group login_user internal_user internal_group rootless=
    if [ "$(id -u)" = 0 ]; then
        if ! id vmail >/dev/null 2>&1; then
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin vmail || return 1
        fi
        mail_user=vmail mail_group=vmail login_user=dovenull internal_user=dovecot internal_group=dovecot
    else
        mail_user=$(id -un) mail_group=$(id -gn) login_user=$mail_user internal_user=$mail_user
        internal_group=$mail_group
        rootless=1
    fi

    : "${MAILFERRY_TEST_DOVECOT_PASSWORD:=Alice imap \"pw\" 1}"
    : "${MAILFERRY_TEST_DOVECOT_BOB_PASSWORD:=Bob-imap-Passw0rd}"
    : "${MAILFERRY_TEST_DOVECOT_OAUTH_ISSUER:=https://sts.windows.net/$MAILFERRY_MSEMU_DEMO_TENANT/}"
    : "${MAILFERRY_TEST_DOVECOT_OAUTH_AUDIENCE:=https://outlook.office.com}"
    local alice=alice@example.test bob=bob@example.test
    mkdir -p "$dir/tls" "$dir/run" "$dir/state" "$dir/mail" "$dir/oauth2-keys" || return 1

    # TLS: a throw-away CA and a server certificate for 127.0.0.1/localhost signed by it.
    local tls=$dir/tls
    cat >"$tls/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = mailferry test CA (Dovecot)
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -config "$tls/ca.cnf" -extensions ca -keyout "$tls/ca.key" -out "$tls/ca.pem" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" &&
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
            -CAcreateserial -days 30 -extfile "$tls/ca.cnf" -extensions server -out "$tls/server.pem"
    } >"$tls/openssl.log" 2>&1 || { cat "$tls/openssl.log" >&2; return 1; }
    chmod 600 "$tls/ca.key" "$tls/server.key"
    chmod 644 "$tls/ca.pem"

    # The emulator's access-token signing key (crates/msemu/src/entra/signing_key.pk8), public
    # half, where Dovecot's local validation looks it up: <dict>/<azp|default>/RS256/<kid>.
    # kid = base64url(SHA-256(modulus)[..15]), as crates/msemu/src/entra/keys.rs computes it.
    local pk8=$MAILFERRY_REPO_DIR/crates/msemu/src/entra/signing_key.pk8 kid modulus
    openssl pkey -inform DER -in "$pk8" -pubout -out "$dir/oauth2-signing-key.pem" 2>"$tls/openssl.log" \
        || { cat "$tls/openssl.log" >&2; return 1; }
    modulus=$(openssl rsa -pubin -in "$dir/oauth2-signing-key.pem" -noout -modulus | cut -d= -f2)
    kid=$(python3 -c 'import base64, hashlib, sys
print(base64.urlsafe_b64encode(hashlib.sha256(bytes.fromhex(sys.argv[1])).digest()[:15]).decode().rstrip("="))' "$modulus") \
        || return 1
    mkdir -p "$dir/oauth2-keys/default/RS256"
    cp "$dir/oauth2-signing-key.pem" "$dir/oauth2-keys/default/RS256/$kid"
    chmod -R a+rX "$dir/oauth2-keys" "$dir/oauth2-signing-key.pem"

    # Users. Password logins (PLAIN/LOGIN) for the example.test users; userdb for everyone,
    # so a valid token for a user without a mailbox here is still refused.
    printf '%s:{PLAIN}%s\n' "$alice" "$MAILFERRY_TEST_DOVECOT_PASSWORD" "$bob" "$MAILFERRY_TEST_DOVECOT_BOB_PASSWORD" \
        >"$dir/passwd"
    printf '%s::::::\n' "$alice" "$bob" alice@contoso.example bob@contoso.example >"$dir/userdb"
    chown "$mail_user:$mail_group" "$dir/mail"
    chmod 700 "$dir/mail"
    if [ -z "$rootless" ]; then
        chgrp "$internal_user" "$dir/passwd" "$dir/userdb"
        chmod 640 "$dir/passwd" "$dir/userdb"
    fi

    # XOAUTH2/OAUTHBEARER: Dovecot validates the emulator's JWTs itself: signature (key
    # above, looked up by the token's kid), exp/nbf/iat, iss, and the audience, so a Graph
    # token (aud 00000003-0000-0000-c000-000000000000) is refused: client_id makes Debian's
    # 2.3.19.1 (with security backports from 2.4) require it in `aud`; active_attribute
    # compares `aud` exactly, also in a 2.3 without those backports. The user is
    # the token's `upn`, which must equal (lower-cased) the user the client names, and must
    # be in the userdb. Dovecot cannot check `scp` (its `scope` setting reads a `scope`
    # claim, which Entra tokens do not have).
    cat >"$dir/oauth2.conf.ext" <<EOF
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$dir/oauth2-keys/
issuers = $MAILFERRY_TEST_DOVECOT_OAUTH_ISSUER
client_id = $MAILFERRY_TEST_DOVECOT_OAUTH_AUDIENCE
active_attribute = aud
active_value = $MAILFERRY_TEST_DOVECOT_OAUTH_AUDIENCE
username_attribute = upn
username_format = %Lu
EOF
    if [ -z "$rootless" ]; then
        chgrp "$internal_user" "$dir/oauth2.conf.ext"
        chmod 640 "$dir/oauth2.conf.ext"
    fi

    local rootless_conf=
    if [ -n "$rootless" ]; then
        rootless_conf="service anvil {
  chroot =
}
service imap-login {
  chroot =
}"
    fi
    cat >"$dir/dovecot.conf" <<EOF
# mailferry's test Dovecot (written by scripts/peers.sh start_dovecot)
instance_name = mailferry-test-$imaps_port
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
default_login_user = $login_user
default_internal_user = $internal_user
default_internal_group = $internal_group
first_valid_uid = 1

ssl = yes
ssl_cert = <$tls/server.pem
ssl_key = <$tls/server.key
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no

auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes
# Failed logins answer at once: Dovecot holds failures back (auth_failure_delay, and a
# 0.5 s flush tick even at 0) unless the request carries "nodelay", which this first
# passdb adds without deciding anything (a failing passdb's own fields are rolled back).
passdb {
  driver = static
  args = noauthenticate nodelay=yes
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u $dir/passwd
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $dir/oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/userdb
  default_fields = uid=$mail_user gid=$mail_group home=$dir/mail/%u
}

mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
protocol imap {
  mail_max_userip_connections = 1000
}

service imap-login {
  inet_listener imap {
    port = $imap_port
  }
  inet_listener imaps {
    port = $imaps_port
    ssl = yes
  }
}
# No growing penalty for repeated failures from 127.0.0.1 either.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
$rootless_conf
EOF

    # stop|start|restart by the master's PID (tests restart the server through this).
    cat >"$dir/ctl" <<EOF
#!/usr/bin/env bash
# Stops, starts or restarts mailferry's test Dovecot in $dir, by its master PID.
set -uo pipefail
conf=$dir/dovecot.conf
pidfile=$dir/run/master.pid
instance=dovecot-mailferry-test-$imaps_port
ports=($imaps_port $imap_port)
EOF
    cat >>"$dir/ctl" <<'EOF'
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# This instance's processes: the master and its children (logins, IMAP sessions, auth…),
# found by PID (no name matching: other Dovecots may run on the machine).
ours() {
    local p
    for p in "$@"; do
        grep -qsaF -e "$instance/" -e "$conf" "/proc/$p/cmdline" && echo "$p"
    done
}
stop() {
    [ -f "$pidfile" ] || return 0
    local pid i pids
    pid=$(cat "$pidfile")
    # A master that exits leaves logged-in IMAP sessions running until their client
    # disconnects; a stopped server must drop them, so they are stopped too.
    pids=$(ours "$pid" $(cat "/proc/$pid/task/$pid/children" 2>/dev/null))
    if [ -z "$pids" ]; then rm -f "$pidfile"; return 0; fi
    kill $pids 2>/dev/null
    for i in $(seq 100); do
        [ -n "$(ours $pids)" ] || break
        sleep 0.1
    done
    pids=$(ours $pids)
    if [ -n "$pids" ]; then
        echo "Dovecot processes $pids did not stop; killing them" >&2
        kill -KILL $pids 2>/dev/null
    fi
    rm -f "$pidfile"
}
start() {
    # The master daemonizes: it must not hold the caller's stdout/stderr open (pipes would
    # never end). Start-up errors go to start.log, later ones to dovecot.log.
    dovecot -c "$conf" </dev/null >"${conf%/*}/start.log" 2>&1 || { cat "${conf%/*}/start.log" >&2; return 1; }
    local i p up
    for i in $(seq 100); do
        up=1
        for p in "${ports[@]}"; do listening "$p" || up=; done
        [ -n "$up" ] && return 0
        sleep 0.1
    done
    echo "Dovecot did not listen on ${ports[*]}; see ${conf%/*}/dovecot.log" >&2
    return 1
}
case "${1:-}" in
stop) stop ;;
start) start ;;
restart) stop && start ;;
*) echo "usage: $0 stop|start|restart" >&2; exit 2 ;;
esac
EOF
    chmod 755 "$dir/ctl"

    "$dir/ctl" start || { tail -n 20 "$dir/dovecot.log" >&2 2>/dev/null; stop_dovecot; return 1; }

    # Folders (doveadm takes UTF-8 names). alice@example.test: the same leaf under two
    # parents, a non-ASCII name whose parent `Archiv` is never created (so LIST shows it
    # \Noselect), and the folders an import moves mail to; the contoso users get the
    # emulator demo's folders.
    local doveadm_log=$dir/doveadm.log
    {
        doveadm -c "$dir/dovecot.conf" mailbox create -s -u "$alice" \
            Exported Error INBOX/Invoices Archive/Invoices "Archiv/Überweisungen" &&
        doveadm -c "$dir/dovecot.conf" mailbox create -s -u "$bob" Exported Error &&
        doveadm -c "$dir/dovecot.conf" mailbox create -s -u alice@contoso.example Exported Error &&
        doveadm -c "$dir/dovecot.conf" mailbox create -s -u bob@contoso.example Exported Error
    } >"$doveadm_log" 2>&1 || { cat "$doveadm_log" >&2; stop_dovecot; return 1; }

    export MAILFERRY_TEST_DOVECOT_HOST=127.0.0.1
    export MAILFERRY_TEST_DOVECOT_IMAPS_PORT=$imaps_port
    export MAILFERRY_TEST_DOVECOT_IMAP_PORT=$imap_port
    export MAILFERRY_TEST_DOVECOT_CA=$tls/ca.pem
    export MAILFERRY_TEST_DOVECOT_CONF=$dir/dovecot.conf
    export MAILFERRY_TEST_DOVECOT_CTL=$dir/ctl
    export MAILFERRY_TEST_DOVECOT_PIDFILE=$dir/run/master.pid
    export MAILFERRY_TEST_DOVECOT_LOG=$dir/dovecot.log
    export MAILFERRY_TEST_DOVECOT_USER=$alice
    export MAILFERRY_TEST_DOVECOT_PASSWORD
    export MAILFERRY_TEST_DOVECOT_BOB_USER=$bob
    export MAILFERRY_TEST_DOVECOT_BOB_PASSWORD
    export MAILFERRY_TEST_DOVECOT_OAUTH_USER=alice@contoso.example
    export MAILFERRY_TEST_DOVECOT_OAUTH_ISSUER
    export MAILFERRY_TEST_DOVECOT_OAUTH_AUDIENCE
    {
        echo "# mailferry's test Dovecot: source this file to use it from another shell"
        local v
        for v in HOST IMAPS_PORT IMAP_PORT CA CONF CTL PIDFILE LOG USER PASSWORD BOB_USER BOB_PASSWORD \
            OAUTH_USER OAUTH_ISSUER OAUTH_AUDIENCE; do
            v=MAILFERRY_TEST_DOVECOT_$v
            printf 'export %s=%q\n' "$v" "${!v}"
        done
    } >"$dir/env.sh"
    echo "Dovecot $(dovecot --version | cut -d' ' -f1) on 127.0.0.1:$imaps_port (IMAPS) and :$imap_port (IMAP+STARTTLS), in $dir (exports: $dir/env.sh)"
}

stop_dovecot() {
    if [ -n "${MAILFERRY_DOVECOT_DIR:-}" ]; then
        [ -x "$MAILFERRY_DOVECOT_DIR/ctl" ] && "$MAILFERRY_DOVECOT_DIR/ctl" stop
        rm -rf "$MAILFERRY_DOVECOT_DIR"
    fi
    MAILFERRY_DOVECOT_DIR=
}

# --- S3 (object storage) ----------------------------------------------------------
# moto in server mode (PyPI moto[server], in the test virtualenv): an S3 API on a
# free loopback port, state in memory. Tests create their own buckets.
start_s3() {
    local python=${MAILFERRY_TEST_PYTHON:-$MAILFERRY_REPO_DIR/.venv-test/bin/python}
    if ! "$python" -c 'import moto.server' 2>/dev/null; then
        echo "moto is not installed: run scripts/install-test-deps.sh (pip install 'moto[server]')" >&2
        return 1
    fi
    MAILFERRY_S3_DIR=$(mktemp -d /tmp/mailferry-s3.XXXXXX)
    local port
    port=$(free_port)
    "$python" -m moto.server -H 127.0.0.1 -p "$port" >"$MAILFERRY_S3_DIR/server.log" 2>&1 &
    echo $! >"$MAILFERRY_S3_DIR/pid"
    local i
    for i in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            export MAILFERRY_TEST_S3_URL="http://127.0.0.1:$port"
            echo "S3 (moto) on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    cat "$MAILFERRY_S3_DIR/server.log" >&2
    return 1
}

stop_s3() {
    if [ -n "${MAILFERRY_S3_DIR:-}" ] && [ -f "$MAILFERRY_S3_DIR/pid" ]; then
        kill "$(cat "$MAILFERRY_S3_DIR/pid")" 2>/dev/null || true
    fi
    [ -n "${MAILFERRY_S3_DIR:-}" ] && rm -rf "$MAILFERRY_S3_DIR"
    MAILFERRY_S3_DIR=
}

stop_peers() {
    stop_s3
    stop_dovecot
    stop_postgres
}
