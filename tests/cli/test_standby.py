"""A real read-only standby: a private primary and a streaming standby, built
from the PostgreSQL binaries here (initdb, pg_basebackup -R) on free ports, and
stopped after the module (pg_ctl -m immediate), failures included. The shared
test server is never touched.

The commands that change the database refuse the standby before anything runs
(exit 3, no traceback); status, verify and log read it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from schemactl import runner
from schemactl.config import Settings
from tests.pgbouncer import free_port

DATABASE = "app"


def postgres_bindir() -> Path:
    """Return the directory of initdb, pg_ctl and pg_basebackup."""
    candidates = []
    if shutil.which("pg_config"):
        candidates.append(
            subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    candidates += [
        str(path)
        for path in sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda path: [
                int(p) for p in path.parent.name.split(".") if p.isdigit()
            ],
            reverse=True,
        )
    ]
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise RuntimeError(
        "no PostgreSQL binaries (initdb) found: run scripts/ensure-postgres.sh"
    )


def as_postgres(*command: str | Path) -> list[str]:
    """The command, run as the postgres OS user when root (initdb, pg_ctl and
    postgres refuse to run as root)."""
    args = [str(part) for part in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def run(*command: str | Path) -> None:
    subprocess.run(as_postgres(*command), check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Cluster:
    port: int

    def url(self, dbname: str = DATABASE) -> str:
        return make_conninfo(
            "", host="127.0.0.1", port=self.port, user="postgres", dbname=dbname
        )


@dataclass(frozen=True)
class Replication:
    primary: Cluster
    standby: Cluster
    sql: Path  # 001 applied on the primary (before the copy), 002 pending


def _start(bindir: Path, data: Path, port: int, sockets: Path) -> None:
    # -w: pg_ctl returns once the server accepts connections (a hot standby:
    # read-only ones, once consistent).
    run(
        bindir / "pg_ctl",
        "-D",
        data,
        "-w",
        "-t",
        "120",
        "-l",
        data / "server.log",
        "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets}",
        "start",
    )


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    bindir = postgres_bindir()
    base = Path(tempfile.mkdtemp(prefix="schemactl-standby-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary_dir, standby_dir = base / "primary", base / "standby"
    started: list[Path] = []
    try:
        run(
            bindir / "initdb",
            "-D",
            primary_dir,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        primary = Cluster(free_port())
        _start(bindir, primary_dir, primary.port, base)
        started.append(primary_dir)
        with psycopg.connect(primary.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        sql = Path(tempfile.mkdtemp(prefix="schemactl-standby-sql-"))
        (sql / "001_one.sql").write_text("CREATE TABLE one (id int);\n")
        (sql / "001_one.down.sql").write_text("DROP TABLE one;\n")
        runner.migrate(Settings(directory=sql, database_url=primary.url()))
        (sql / "002_two.sql").write_text("CREATE TABLE two (id int);\n")
        run(
            bindir / "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            standby_dir,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        standby = Cluster(free_port())
        _start(bindir, standby_dir, standby.port, base)
        started.append(standby_dir)
        with psycopg.connect(standby.url()) as check:
            row = check.execute("SELECT pg_is_in_recovery()").fetchone()
            assert row == (True,)
        yield Replication(primary, standby, sql)
        shutil.rmtree(sql, ignore_errors=True)
    finally:
        for data in reversed(started):
            subprocess.run(
                as_postgres(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


def schemactl(url: str, sql: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "SCHEMACTL_DIR": str(sql)}
    return subprocess.run(
        [sys.executable, "-m", "schemactl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1")
        return [r[0] for r in rows.fetchall()]


@pytest.mark.parametrize(
    "args",
    [("migrate",), ("rollback",), ("baseline", "--version", "1"), ("repair", "--yes")],
    ids=lambda args: args[0],
)
def test_changing_commands_refuse_a_standby_before_anything_runs(
    replication: Replication, args: tuple[str, ...]
):
    standby = replication.standby
    done = schemactl(standby.url(), replication.sql, *args)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        f"error: postgres@127.0.0.1:{standby.port}/{DATABASE} is a read-only standby "
        "(in recovery); nothing was changed",
        "  hint: connect to the primary",
    ]
    assert done.stdout == ""
    assert versions(replication.primary.url()) == [1]


def test_a_standby_refusal_is_one_json_document(replication: Replication):
    done = schemactl(
        replication.standby.url(), replication.sql, "--format", "json", "migrate"
    )
    assert done.returncode == 3, done.stderr
    assert '"exit_code": 3' in done.stdout
    assert "is a read-only standby (in recovery); nothing was changed" in done.stdout
    assert "Traceback" not in done.stderr


def test_status_verify_and_log_read_a_standby(replication: Replication):
    url = replication.standby.url()
    status = schemactl(url, replication.sql, "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[-1] == "public.schema_migrations: database at version 1"
    assert any(line.split()[:3] == ["2", "two", "pending"] for line in lines)
    verify = schemactl(url, replication.sql, "verify")
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.splitlines()[-1] == (
        "verify ok: 1 applied, 1 pending, 0 with drift"
    )
    assert schemactl(url, replication.sql, "verify", "--strict").returncode == 1
    log = schemactl(url, replication.sql, "log")
    assert log.returncode == 0, log.stderr
    assert "public.schema_migrations_log: 1 row" in log.stdout
