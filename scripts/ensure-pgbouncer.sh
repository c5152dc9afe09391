#!/usr/bin/env bash
# Make sure a PgBouncer binary is installed and print its path.
#
# The pooler tests (tests/cli/test_poolers.py) start their own PgBouncer; this
# script only provides the binary: the one on PATH or in /usr/sbin, else
# Debian's package, installed with apt-get (root only). It never starts,
# configures or stops a pgbouncer service. Messages go to stderr; stdout
# carries only the path.
set -euo pipefail

say() { echo "ensure-pgbouncer: $*" >&2; }

find_pgbouncer() {
    local found
    if found="$(command -v pgbouncer 2>/dev/null)"; then
        echo "$found"
        return 0
    fi
    [ -x /usr/sbin/pgbouncer ] && { echo /usr/sbin/pgbouncer; return 0; }
    return 1
}

install_pgbouncer() {
    if [ "$(id -u)" -ne 0 ]; then
        say "pgbouncer is not installed; install it (e.g. 'sudo apt-get install" \
            "pgbouncer') or set PGBOUNCER to its path"
        exit 1
    fi
    say "installing pgbouncer with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt-get may be running (a second test run): wait for its lock.
    local lock=(-o DPkg::Lock::Timeout=300)
    apt-get "${lock[@]}" update -qq >&2
    # No service is started for the package: the tests start their own.
    local policy=/usr/sbin/policy-rc.d created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created=1
    fi
    local status=0
    apt-get "${lock[@]}" install -y -qq --no-install-recommends pgbouncer >&2 || status=$?
    [ -n "$created" ] && rm -f "$policy"
    return "$status"
}

main() {
    if [ -n "${PGBOUNCER:-}" ]; then
        [ -x "$PGBOUNCER" ] || { say "PGBOUNCER=$PGBOUNCER is not executable"; exit 1; }
        echo "$PGBOUNCER"
        return 0
    fi
    find_pgbouncer || { install_pgbouncer && find_pgbouncer; } || {
        say "pgbouncer could not be installed"
        exit 1
    }
}

main "$@"
