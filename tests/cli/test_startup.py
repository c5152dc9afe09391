"""Commands load only what they need: psycopg, rich and pglast are slow to import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_subprocess

PROBE = """
import json, sys
from schemactl.cli import cli
try:
    cli.main(args=sys.argv[2:], prog_name="schemactl")
except SystemExit:
    pass
loaded = {m: m in sys.modules for m in sys.argv[1].split(",")}
sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
"""


PROBED = (
    "psycopg",
    "rich",
    "pglast",
    "schemactl.core.splitting",
    "schemactl.db.session",
)


def loaded_modules(
    *args: str, env: dict[str, str] | None = None, probed: tuple[str, ...] = PROBED
) -> dict[str, bool]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(probed), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    marker = done.stderr.rsplit("LOADED ", 1)[-1]
    return dict(json.loads(marker))


def heavy(loaded: dict[str, bool]) -> dict[str, bool]:
    return {m: loaded[m] for m in ("psycopg", "rich", "pglast")}


@pytest.mark.parametrize("args", [["--help"], ["migrate", "--help"], ["--version"]])
def test_help_loads_neither_psycopg_nor_rich(args):
    assert heavy(loaded_modules(*args)) == {
        "psycopg": False,
        "rich": False,
        "pglast": False,
    }


def test_new_needs_no_database_driver(tmp_path):
    loaded = loaded_modules("new", "x", "--dir", str(tmp_path))
    assert loaded["psycopg"] is False
    assert loaded["rich"] is False
    assert (tmp_path / "001_x.sql").exists()


def test_sql_needs_no_database_driver(sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    loaded = heavy(loaded_modules("sql", "--dir", str(sql_dir.path)))
    assert loaded == {"psycopg": False, "rich": False, "pglast": False}


def test_migrate_never_loads_the_agent_store_or_the_sdk(database_url, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    probed = ("agents", "schemactl.agent_store", "psycopg_pool", "psycopg")
    loaded = loaded_modules(
        "migrate", "-d", database_url, "--dir", str(sql_dir.path), probed=probed
    )
    assert loaded == {
        "agents": False,
        "schemactl.agent_store": False,
        "psycopg_pool": False,
        "psycopg": True,
    }


@pytest.mark.parametrize("command", ["status", "verify"])
def test_piped_status_loads_neither_rich_nor_the_parser(command, database_url, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    loaded = loaded_modules(command, "-d", database_url, "--dir", str(sql_dir.path))
    assert loaded == {
        "psycopg": True,
        "rich": False,
        "pglast": False,
        "schemactl.core.splitting": False,
        "schemactl.db.session": False,
    }


def test_console_entry_flushes_all_output_and_keeps_the_exit_code(
    database_url, sql_dir
):
    # The entry ends the process with os._exit: everything written must still
    # arrive through the pipe, and each exit code must be the command's own.
    files = 3000
    sql_dir.write({f"{v:04d}_m{v}.sql": "SELECT 1;" for v in range(1, files + 1)})
    done = run_subprocess("status", database_url=database_url, sql_dir=sql_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == files + 2  # header, one line per file, the summary
    assert lines[-2].split() == [str(files), f"m{files}", "pending"]

    applied = run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[-1].startswith(f"applied {files} migrations")

    sql_dir.write({"0001_m1.sql": "SELECT 2;"})  # edited after it was applied
    refused = run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir)
    assert refused.returncode == 1, refused.stderr  # drift: nothing applied
    assert "checksum mismatch" in refused.stderr


def test_console_entry_keeps_the_usage_error_exit_code(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemactl",
            "new",
            "x",
            "--dir",
            str(tmp_path / "missing" / "deep"),
            "--bad-option",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
