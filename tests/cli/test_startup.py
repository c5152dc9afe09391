"""Commands load only what they need: psycopg, rich and pglast are slow to import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from schemactl.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="schemactl")
except SystemExit:
    pass
loaded = {m: m in sys.modules for m in ("psycopg", "rich", "pglast")}
sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
"""


def loaded_modules(*args: str, env: dict[str, str] | None = None) -> dict[str, bool]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    marker = done.stderr.rsplit("LOADED ", 1)[-1]
    return dict(json.loads(marker))


@pytest.mark.parametrize("args", [["--help"], ["migrate", "--help"], ["--version"]])
def test_help_loads_neither_psycopg_nor_rich(args):
    assert loaded_modules(*args) == {"psycopg": False, "rich": False, "pglast": False}


def test_new_needs_no_database_driver(tmp_path):
    loaded = loaded_modules("new", "x", "--dir", str(tmp_path))
    assert loaded["psycopg"] is False
    assert loaded["rich"] is False
    assert (tmp_path / "001_x.sql").exists()


def test_sql_needs_no_database_driver(sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    loaded = loaded_modules("sql", "--dir", str(sql_dir.path))
    assert loaded == {"psycopg": False, "rich": False, "pglast": False}


def test_piped_status_loads_neither_rich_nor_the_parser(database_url, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    loaded = loaded_modules("status", "-d", database_url, "--dir", str(sql_dir.path))
    assert loaded == {"psycopg": True, "rich": False, "pglast": False}
