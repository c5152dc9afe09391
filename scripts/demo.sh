#!/usr/bin/env bash
# Apply the shipped sql/ to a demo database and show its status.
# Uses $DATABASE_URL when set; otherwise the database schemactl_demo on the server
# that ensure-postgres.sh found or started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DATABASE_URL:-}" ]; then
    url="$(scripts/ensure-postgres.sh)"
else
    server="$(scripts/ensure-postgres.sh)"
    exists="$(psql "$server" -XAtqc "SELECT 1 FROM pg_database WHERE datname = 'schemactl_demo'")"
    [ "$exists" = "1" ] || psql "$server" -Xqc 'CREATE DATABASE schemactl_demo'
    url="${server%/*}/schemactl_demo"
fi
export DATABASE_URL="$url"
.venv/bin/schemactl migrate
.venv/bin/schemactl status
# One agent run kept by schemactl.agent_store (the `agents` extra), no network.
.venv/bin/python scripts/agent_demo.py
