#!/usr/bin/env bash
# Create .venv with schemactl and its dev tools installed (editable).
# Installs python3-venv with apt-get when the system Python lacks it (root only).
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "bootstrap-venv: installing python3-venv with apt-get" >&2
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
            "$PYTHON" -m venv "$VENV"
        else
            echo "bootstrap-venv: '$PYTHON -m venv' failed; install python3-venv" >&2
            exit 1
        fi
    fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
