#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, in a temp dir, on 127.0.0.1.
#
#   scripts/pg-test-cluster.sh run CMD...   start a cluster, run CMD with QUARRY_TEST_PG (the
#                                          URL) and QUARRY_TEST_PG_RESTART (a command that
#                                          restarts the server) set, stop it at the end
#   scripts/pg-test-cluster.sh restart DIR  restart the cluster in DIR (what the tests call)
#
# Installs PostgreSQL from Debian's packages when it is missing (CI runs as root, with no
# stdin). initdb refuses to run as root: the server then runs as the `postgres` user.
set -euo pipefail
NAME=pg-test-cluster
. "$(dirname "$0")/lib.sh"

pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    return 1
}

ensure_installed() {
    pg_bin >/dev/null && return
    apt_install --no-install-recommends postgresql
    # The package starts a cluster of its own: the tests use their own, so stop it.
    if command -v pg_ctlcluster >/dev/null; then
        for c in /etc/postgresql/*/main; do
            [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop 2>/dev/null || true
        done
    fi
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null; then
        runuser -u postgres -- "$@"
    elif [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    else
        "$@"
    fi
}

free_port() {
    python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
PY
}

start() {
    local dir=$1 bin port
    bin=$(pg_bin)
    port=$(free_port)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U quarry --auth=trust -E UTF8 --no-locale >/dev/null
    # A test cluster: no fsync (it is thrown away), enough connections for the worker tests.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" start
    echo "$port" >"$dir/port"
}

restart() {
    local dir=$1
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s -m fast restart
}

stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -w -s -m immediate stop || true
    rm -rf "$dir"
}

case "${1:-}" in
run)
    shift
    ensure_installed
    dir=$(mktemp -d /tmp/quarry-pg.XXXXXX)
    chmod 755 "$dir"
    trap 'stop "$dir"' EXIT
    # Killed or interrupted: exit, which stops the server (the EXIT trap).
    trap 'exit 143' TERM
    trap 'exit 130' INT
    start "$dir"
    export QUARRY_TEST_PG="postgres://quarry@127.0.0.1:$(cat "$dir/port")/postgres"
    export QUARRY_TEST_PG_RESTART="$(realpath "$0") restart $dir"
    echo "PostgreSQL test cluster: $QUARRY_TEST_PG" >&2
    "$@"
    ;;
restart) restart "$2" ;;
*)
    echo "usage: $0 run CMD... | restart DIR" >&2
    exit 2
    ;;
esac
