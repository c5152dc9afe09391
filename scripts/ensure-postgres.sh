#!/usr/bin/env bash
# Make sure a PostgreSQL server is reachable and print a DATABASE_URL for it.
#
# Order: $DATABASE_URL when set; else a server on 127.0.0.1:5432 that lets the
# postgres role in; else the system cluster, started (as root); else a private
# cluster under $SCHEMACTL_PGDATA, created and started with trust auth. The
# PostgreSQL binaries are installed with apt-get when none are found (root only).
# Messages go to stderr; stdout carries only the URL.
set -euo pipefail

PRIVATE_PORT="${SCHEMACTL_PGPORT:-54329}"
PRIVATE_DATA="${SCHEMACTL_PGDATA:-${TMPDIR:-/tmp}/schemactl-pgdata-$(id -u)}"
DEFAULT_URL="postgresql://postgres@127.0.0.1:5432/postgres"
PRIVATE_URL="postgresql://postgres@127.0.0.1:${PRIVATE_PORT}/postgres"

say() { echo "ensure-postgres: $*" >&2; }

can_login() {
    PGCONNECT_TIMEOUT=5 psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1
}

wait_for_login() {
    local url="$1"
    for _ in $(seq 1 60); do
        can_login "$url" && return 0
        sleep 0.5  # polling a server that is starting; not a test
    done
    return 1
}

find_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir)"
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

install_postgres() {
    if [ "$(id -u)" -ne 0 ]; then
        say "no PostgreSQL server or binaries found; install PostgreSQL (e.g." \
            "'sudo apt-get install postgresql') or set DATABASE_URL"
        exit 1
    fi
    say "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql postgresql-client >&2
}

as_postgres_owner() {
    # initdb, pg_ctl and postgres refuse to run as root.
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_system_cluster() {
    [ "$(id -u)" -eq 0 ] || return 1
    command -v pg_lsclusters >/dev/null 2>&1 || return 1
    local version
    version="$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" && $3 == "5432" {print $1; exit}')"
    [ -n "$version" ] || return 1
    say "starting the system cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    wait_for_login "$DEFAULT_URL"
}

start_private_cluster() {
    local bindir="$1"
    if [ ! -s "$PRIVATE_DATA/PG_VERSION" ]; then
        say "creating a private cluster in $PRIVATE_DATA"
        mkdir -p "$PRIVATE_DATA"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$PRIVATE_DATA"
        chmod 700 "$PRIVATE_DATA"
        as_postgres_owner "$bindir/initdb" -D "$PRIVATE_DATA" -U postgres -A trust \
            -E UTF8 --no-locale >&2
    fi
    if ! as_postgres_owner "$bindir/pg_ctl" -D "$PRIVATE_DATA" status >/dev/null 2>&1; then
        say "starting the private cluster on port $PRIVATE_PORT"
        as_postgres_owner "$bindir/pg_ctl" -D "$PRIVATE_DATA" -w -l "$PRIVATE_DATA/server.log" \
            -o "-p $PRIVATE_PORT -c listen_addresses=127.0.0.1 -k $PRIVATE_DATA" start >&2
    fi
    wait_for_login "$PRIVATE_URL"
}

main() {
    if [ -n "${DATABASE_URL:-}" ]; then
        if ! command -v psql >/dev/null 2>&1 || can_login "$DATABASE_URL"; then
            echo "$DATABASE_URL"
            return 0
        fi
        say "DATABASE_URL is set but the server does not accept a login"
        exit 1
    fi
    if ! command -v psql >/dev/null 2>&1 || ! find_bindir >/dev/null; then
        install_postgres
    fi
    if can_login "$DEFAULT_URL" || start_system_cluster; then
        echo "$DEFAULT_URL"
        return 0
    fi
    local bindir
    bindir="$(find_bindir)"
    if start_private_cluster "$bindir"; then
        echo "$PRIVATE_URL"
        return 0
    fi
    say "could not start PostgreSQL; see $PRIVATE_DATA/server.log"
    exit 1
}

main "$@"
