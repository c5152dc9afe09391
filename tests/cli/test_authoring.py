"""Authoring without traps: empty files, timestamps, hints that lead the right way."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "-- 002_x: describe the change here.\n-- more comments\n", "/* c */;"],
    ids=["empty", "blank", "template", "comment-and-semicolon"],
)
def test_an_empty_migration_is_refused_before_anything_runs(run_cli, sql_dir, db, text):
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int);", "002_x.sql": text})
    result = run_cli("migrate")
    assert result.exit_code == 2
    assert "002_x.sql: error: the file has no statement" in result.output
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
    assert "001_add_users.sql: error: the file has no statement" in result.output


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
