# Real peers for mailferry's tests, started on free loopback ports in temp
# dirs and stopped by their own PID files. Source this file; it defines
# start_postgres / stop_peers and exports the URLs the tests read.

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

stop_peers() {
    stop_postgres
}
