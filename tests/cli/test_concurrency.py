"""Several real `schemactl migrate` processes on one database apply each file once."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from schemactl.config import parse_table_name
from schemactl.db.lock import advisory_lock_key
from tests.conftest import run_subprocess

RUNNERS = 4
FILES = {
    "001_log.sql": "CREATE TABLE log (file text NOT NULL);\nINSERT INTO log VALUES ('001');\n",
    "002_two.sql": "INSERT INTO log VALUES ('002');\nCREATE TABLE two (id int);\n",
    "003_three.sql": "INSERT INTO log VALUES ('003');\n",
}


@pytest.fixture
def lock_holder(database_url, db):
    with psycopg.connect(
        database_url, autocommit=True, application_name="test-holder"
    ) as conn:
        key = advisory_lock_key(db.info.dbname, parse_table_name("schema_migrations"))
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield conn, key


def start_runner(database_url, sql_dir) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SCHEMACTL_DIR": str(sql_dir.path),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "schemactl", "migrate", "--lock-timeout", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_runners_apply_each_file_exactly_once(
    database_url, sql_dir, db, lock_holder
):
    holder, key = lock_holder
    sql_dir.write(FILES)
    runners = [start_runner(database_url, sql_dir) for _ in range(RUNNERS)]
    try:
        # Barrier: each runner names its target, then says it waits for the lock.
        target_lines = [r.stderr.readline() if r.stderr else "" for r in runners]
        first_lines = [r.stderr.readline() if r.stderr else "" for r in runners]
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
        outputs = [r.communicate(timeout=120) for r in runners]
    finally:
        for r in runners:
            if r.poll() is None:
                r.kill()
    assert [r.returncode for r in runners] == [0] * RUNNERS, outputs
    assert db.execute(
        "SELECT file, count(*) FROM log GROUP BY file ORDER BY file"
    ).fetchall() == [
        ("001", 1),
        ("002", 1),
        ("003", 1),
    ]
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone() == (3,)
    applied_lines = [
        line
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("applied ") and ".sql" in line
    ]
    assert len(applied_lines) == 3
    holder_pid = holder.info.backend_pid
    dbname = db.info.dbname
    for line in target_lines:
        assert line.startswith("target: ")
        assert line.rstrip().endswith(
            f"/{dbname} (history table public.schema_migrations)"
        )
    for line in first_lines:
        assert line.startswith(
            f"waiting for the migration lock held by pid {holder_pid}, "
            "application test-holder"
        )


def test_lock_timeout_exits_3_and_applies_nothing(
    database_url, sql_dir, db, lock_holder
):
    holder, _ = lock_holder
    sql_dir.write(FILES)
    done = run_subprocess(
        "migrate", "--lock-timeout", "0", database_url=database_url, sql_dir=sql_dir
    )
    assert done.returncode == 3
    assert "timed out after 0 s waiting for the migration lock" in done.stderr
    assert (
        f"held by pid {holder.info.backend_pid}, application test-holder" in done.stderr
    )
    assert db.execute(
        "SELECT to_regclass('log'), to_regclass('schema_migrations')"
    ).fetchone() == (None, None)
