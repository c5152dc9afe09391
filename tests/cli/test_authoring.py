"""Authoring without traps: empty files, timestamps, hints that lead the right way."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys

import pytest

from schemactl.config import parse_table_name
from schemactl.db.lock import advisory_lock_key
from tests.conftest import runner_env


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "-- 002_x: describe the change here.\n-- more comments\n", "/* c */;"],
    ids=["empty", "blank", "template", "comment-and-semicolon"],
)
def test_an_empty_migration_is_refused_before_anything_runs(run_cli, sql_dir, db, text):
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int);", "002_x.sql": text})
    result = run_cli("migrate")
    assert result.exit_code == 2
    assert "002_x.sql:1:1: error: the file has no statement" in result.output
    assert "-- schemactl:allow-empty" in result.output
    # Checked before the first file ran: nothing applied, no history table.
    assert db.execute("SELECT to_regclass('a')").fetchone() == (None,)


def test_an_empty_migration_marked_as_such_is_applied(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "-- schemactl:allow-empty\n-- reserved number\n"})
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    assert "applied 001_a.sql" in result.output


def test_new_then_migrate_does_not_record_the_untouched_template(run_cli, sql_dir):
    assert run_cli("new", "add_users").exit_code == 0
    result = run_cli("migrate")
    assert result.exit_code == 2
    assert "001_add_users.sql:1:1: error: the file has no statement" in result.output


def test_the_sql_script_refuses_an_empty_migration_too(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "-- nothing yet\n"})
    result = run_cli("sql")
    assert result.exit_code == 2
    assert "the file has no statement" in result.output


def test_an_edited_file_leads_to_restoring_it_not_to_repair(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int);"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id bigint);"})
    for command in ("migrate", "verify"):
        result = run_cli(command)
        assert result.exit_code == 1
        assert "restore each edited file as it was applied" in result.output
        assert "put the change in a new migration" in result.output
        assert "runs none of its SQL" in result.output


def test_rollback_refusals_say_rollback(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;", "001_a.down.sql": "SELECT 2;"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "SELECT 3;"})
    result = run_cli("rollback")
    assert result.exit_code == 1
    assert "refusing to roll back: drift found in 1 migration" in result.output


def test_rollback_dry_run_changes_nothing(run_cli, sql_dir, db):
    sql_dir.write(
        {
            "001_a.sql": "CREATE TABLE a (id int);",
            "001_a.down.sql": "DROP TABLE a;",
            "002_b.sql": "CREATE TABLE b (id int);",
            "002_b.down.sql": "DROP TABLE b;",
        }
    )
    assert run_cli("migrate").exit_code == 0
    result = run_cli("rollback", "--to", "0", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "would revert 002_b.sql with 002_b.down.sql",
        "would revert 001_a.sql with 001_a.down.sql",
        "dry run: 2 migrations to revert, nothing changed",
    ]
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone() == (2,)
    assert db.execute("SELECT to_regclass('b')").fetchone() != (None,)
    as_json = run_cli("rollback", "--to", "0", "--dry-run", "--format", "json")
    doc = json.loads(as_json.stdout)
    assert [m["version"] for m in doc["planned"]] == [2, 1]


class Terminal:
    """A real schemactl process whose stdin and stderr are a terminal (a pty),
    to answer its questions; stdout stays a pipe."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "schemactl", *args],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            text=True,
        )
        os.close(slave)
        self.seen = ""

    def wait_for(self, text: str) -> str:
        """Read the terminal until text appears (the barrier)."""
        while text not in self.seen:
            ready, _, _ = select.select([self.master], [], [], 30)
            assert ready, f"no {text!r} within 30 s; saw {self.seen!r}"
            self.seen += os.read(self.master, 4096).decode()
        return self.seen

    def answer(self, reply: str) -> None:
        os.write(self.master, f"{reply}\n".encode())

    def finish(self) -> tuple[int, str]:
        out, _ = self.process.communicate(timeout=60)
        with contextlib.suppress(OSError):
            while chunk := os.read(self.master, 4096):
                self.seen += chunk.decode()
        os.close(self.master)
        return self.process.returncode, out


def hold_migration_lock(db) -> None:
    key = advisory_lock_key(db.info.dbname, parse_table_name("schema_migrations"))
    db.execute("SELECT pg_advisory_lock(%s)", (key,))


def test_rollback_asks_before_the_lock_and_no_means_nothing(
    run_cli, sql_dir, db, database_url
):
    sql_dir.write(
        {
            "001_a.sql": "SELECT 1;",
            "001_a.down.sql": "SELECT 1;",
            "002_b.sql": "SELECT 2;",
            "002_b.down.sql": "SELECT 2;",
        }
    )
    assert run_cli("migrate").exit_code == 0
    hold_migration_lock(db)  # the question must not wait for it
    terminal = Terminal("rollback", "--to", "0", env=runner_env(database_url, sql_dir))
    shown = terminal.wait_for("roll back these 2 migrations? [y/N]")
    assert "revert 002_b.sql with 002_b.down.sql" in shown
    terminal.answer("n")
    code, out = terminal.finish()
    assert code == 0
    assert out == "nothing rolled back\n"
    assert "waiting for the migration lock" not in terminal.seen
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone() == (2,)


def test_repair_asks_before_the_lock_and_refuses_a_changed_plan(
    run_cli, sql_dir, db, database_url
):
    sql_dir.write({"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "SELECT 1; -- edited"})
    hold_migration_lock(db)
    terminal = Terminal("repair", env=runner_env(database_url, sql_dir))
    terminal.wait_for("apply these changes? [y/N]")
    # While the question waits, the history changes under it.
    db.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 2")
    db.execute("SELECT pg_advisory_unlock_all()")
    terminal.answer("y")
    code, out = terminal.finish()
    assert code == 1
    assert "run no SQL of any file" in out  # the plan, shown before the question
    assert "changed while repair waited for your answer" in terminal.seen
    checksums = db.execute(
        "SELECT version, checksum FROM schema_migrations ORDER BY version"
    ).fetchall()
    assert checksums[1] == (2, "x")  # nothing repaired: not what was approved


def test_repair_leaves_a_version_taken_by_another_migration_alone(run_cli, sql_dir, db):
    # Two branches both added 002: the applied one is gone, another has its number.
    sql_dir.write({"001_a.sql": "SELECT 1;", "002_tmp_col.sql": "SELECT 2;"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.remove("002_tmp_col.sql")
    sql_dir.write({"002_other.sql": "CREATE TABLE other (id int);"})
    status = run_cli("status")
    assert (
        "applied as tmp_col: another migration now has this version"
        not in status.stdout
    )
    verify = run_cli("verify")
    assert (
        "(applied as tmp_col: another migration now has this version; renumber it)"
        in verify.stdout
    )
    repaired = run_cli("repair", "--yes")
    assert repaired.exit_code == 0
    assert "leave version 2 as is: it was applied as tmp_col" in repaired.stdout
    assert repaired.stdout.splitlines()[-1] == "nothing to repair"
    assert db.execute(
        "SELECT name FROM schema_migrations WHERE version = 2"
    ).fetchone() == ("tmp_col",)


def test_rollback_names_every_missing_down_file_at_once(run_cli, sql_dir):
    sql_dir.write({f"00{v}_m{v}.sql": "SELECT 1;" for v in (1, 2, 3)})
    assert run_cli("migrate").exit_code == 0
    result = run_cli("rollback", "--to", "0", "--dry-run")
    assert result.exit_code == 2
    assert "down file 003_m3.down.sql is missing" in result.output
    assert "(missing too: 002_m2.down.sql, 001_m1.down.sql)" in result.output
