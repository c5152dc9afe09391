"""Shared fixtures: migration directories, a fresh database per test, the CLI.

Database fixtures need a running server: DATABASE_URL names it (the Makefile sets it
from scripts/ensure-postgres.sh); without it, the script is run here. A missing
server fails the tests loudly; they never skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from schemactl import runner
from schemactl.cli import cli
from schemactl.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class MigrationDir:
    """A temporary migrations directory that tests fill with files."""

    path: Path

    def write(self, files: Mapping[str, str | bytes]) -> MigrationDir:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            (self.path / name).write_bytes(data)
        return self

    def remove(self, name: str) -> None:
        (self.path / name).unlink()


@pytest.fixture
def sql_dir(tmp_path: Path) -> MigrationDir:
    directory = tmp_path / "sql"
    directory.mkdir()
    return MigrationDir(directory)


@pytest.fixture(scope="session")
def server_conninfo() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        url = subprocess.run(
            [str(ROOT / "scripts" / "ensure-postgres.sh")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    return conninfo_to_dict(url)


def janitor_for(
    server: dict[str, Any], dbname: str, *, template: str | None = None
) -> DatabaseJanitor:
    """pytest-postgresql's janitor: creates dbname (from template) and drops it."""
    return DatabaseJanitor(
        user=server.get("user", "postgres"),
        host=server.get("host", "127.0.0.1"),
        port=server.get("port", 5432),
        password=server.get("password"),
        dbname=dbname,
        template_dbname=template,
    )


def url_for(server: dict[str, Any], dbname: str) -> str:
    """Return the server's conninfo pointed at another database."""
    params = {k: v for k, v in server.items() if k != "dbname"}
    return make_conninfo("", **params, dbname=dbname)


@pytest.fixture
def database_url(server_conninfo: dict[str, Any]) -> Iterator[str]:
    """A URL for a fresh, empty database, dropped after the test."""
    janitor = janitor_for(server_conninfo, f"schemactl_test_{uuid.uuid4().hex[:12]}")
    with janitor:
        yield url_for(server_conninfo, janitor.dbname)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test database, for assertions."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def run_cli(database_url: str, sql_dir: MigrationDir) -> Any:
    """Invoke the CLI in-process against the test database and directory."""

    def invoke(*args: str, env: Mapping[str, str] | None = None) -> Result:
        runner = CliRunner()
        full_env = {
            "DATABASE_URL": database_url,
            "SCHEMACTL_DIR": str(sql_dir.path),
            **(env or {}),
        }
        return runner.invoke(cli, list(args), env=full_env, catch_exceptions=False)

    return invoke


def runner_env(database_url: str, sql_dir: MigrationDir) -> dict[str, str]:
    """The environment of a real ``schemactl`` process on the test database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SCHEMACTL_DIR": str(sql_dir.path),
    }


def run_subprocess(
    *args: str, database_url: str, sql_dir: MigrationDir, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m schemactl`` as a separate process (real exit codes, pipes)."""
    return subprocess.run(
        [sys.executable, "-m", "schemactl", *args],
        env=runner_env(database_url, sql_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


SHIPPED_SQL = ROOT / "sql"


@pytest.fixture(scope="session")
def schema_template(server_conninfo: dict[str, Any]) -> Iterator[str]:
    """A database migrated once with the shipped sql/, cloned for each test."""
    # A unique name: two test runs at once on one server each have their own.
    name = f"schemactl_test_template_{uuid.uuid4().hex[:12]}"
    with janitor_for(server_conninfo, name) as janitor:
        url = url_for(server_conninfo, janitor.dbname)
        runner.migrate(Settings(directory=SHIPPED_SQL, database_url=url))
        yield janitor.dbname


@pytest.fixture
def schema_url(server_conninfo: dict[str, Any], schema_template: str) -> Iterator[str]:
    """A fresh database with the shipped schema applied (a clone of the template)."""
    dbname = f"schemactl_test_{uuid.uuid4().hex[:12]}"
    with janitor_for(server_conninfo, dbname, template=schema_template):
        yield url_for(server_conninfo, dbname)


def public_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Return the names of the tables in schema public, sorted, but for the
    history table's audit log (tests/cli/test_audit_log.py is about that)."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'schema_migrations_log' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


PROGRESS_PREFIXES = ("applying ", "reverting ", "still running ")


def without_progress(stderr: str) -> list[str]:
    """Return stderr's lines without the progress lines a piped run prints
    (tests/cli/test_progress.py checks those)."""
    return [
        line for line in stderr.splitlines() if not line.startswith(PROGRESS_PREFIXES)
    ]
