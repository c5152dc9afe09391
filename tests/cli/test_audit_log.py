"""The audit log (layout 2): a row per change to the history, in the same
transaction; append-only; created by the upgrade from layout 1; shown by log."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import sql

from schemactl.core.history import HISTORY_TABLE_DDL, LAYOUT_COMMENT
from tests.cli.test_targets import deploy_role, grant_deploy_privileges

__all__ = ["deploy_role"]  # the fixture, shared with test_targets

LOG = "schema_migrations_log"


def log_rows(db: Any) -> list[tuple[Any, ...]]:
    return list(
        db.execute(
            "SELECT action, version, name, checksum_before IS NOT NULL, "
            "checksum_after IS NOT NULL, outcome, login_role, application_name "
            f"FROM {LOG} ORDER BY id"
        ).fetchall()
    )


def exists(db: Any, name: str) -> bool:
    return bool(db.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0])


def test_every_change_is_logged_with_who_and_what(run_cli, sql_dir, db):
    user = db.info.user
    sql_dir.write(
        {
            "001_a.sql": "CREATE TABLE a (id int);",
            "001_a.down.sql": "DROP TABLE a;",
            "002_b.sql": "-- schemactl:no-transaction\nCREATE TABLE b (id int);\n",
        }
    )
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int); -- reviewed"})
    assert run_cli("repair", "--yes").exit_code == 0
    sql_dir.remove("002_b.sql")
    assert run_cli("repair", "--yes").exit_code == 0  # version 2: file missing
    db.execute("DELETE FROM schema_migrations WHERE version = 2")
    assert run_cli("rollback").exit_code == 0
    who = (user, "schemactl")
    assert log_rows(db) == [
        ("apply", 1, "a", False, True, "ok", *who),
        ("apply", 2, "b", False, True, "started", *who),  # no-transaction: first
        ("apply", 2, "b", False, True, "ok", *who),
        ("repair", 1, "a", True, True, "ok", *who),  # checksum before -> after
        ("rollback", 1, "a", True, False, "ok", *who),
    ]
    assert db.execute(
        f"SELECT obj_description('{LOG}'::regclass, 'pg_class')"
    ).fetchone() == (LAYOUT_COMMENT,)


def test_a_failed_migration_leaves_no_log_row(run_cli, sql_dir, db):
    sql_dir.write(
        {"001_a.sql": "SELECT 1;", "002_b.sql": "CREATE TABLE b (id int);\nSELECT 1/0;"}
    )
    assert run_cli("migrate").exit_code == 1
    assert [(r[0], r[1]) for r in log_rows(db)] == [("apply", 1)]


def test_a_no_transaction_failure_shows_as_started_only(run_cli, sql_dir, db):
    sql_dir.write(
        {"001_a.sql": "-- schemactl:no-transaction\nSELECT 1;\nSELECT 1/0;\n"}
    )
    assert run_cli("migrate").exit_code == 1
    assert [(r[0], r[5]) for r in log_rows(db)] == [("apply", "started")]


def test_baseline_is_logged(run_cli, sql_dir, db):
    sql_dir.write({"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    assert run_cli("baseline", "--version", "2").exit_code == 0
    assert [(r[0], r[1]) for r in log_rows(db)] == [("baseline", 1), ("baseline", 2)]


@pytest.mark.parametrize(
    "change",
    [f"UPDATE {LOG} SET outcome = 'x'", f"DELETE FROM {LOG}", f"TRUNCATE {LOG}"],
)
def test_the_log_is_append_only(run_cli, sql_dir, db, change):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    assert run_cli("migrate").exit_code == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute(change)
    assert len(log_rows(db)) == 1


def test_upgrade_from_a_database_of_the_release_before(run_cli, sql_dir, db):
    # Layout 1, as the release before this one left it: the history table
    # only, with its rows.
    db.execute(
        sql.SQL(HISTORY_TABLE_DDL).format(sql.Identifier("public", "schema_migrations"))
    )
    db.execute(
        "INSERT INTO schema_migrations (version, name, checksum, execution_ms) "
        "VALUES (1, 'a', %s, 3)",
        ("c8d1b4fd9ab3d2c4bfa1f2c4ad61c0b44cb9b9b0c6a1cf37d9a5a0e1d0e4c4f7",),
    )
    sql_dir.write({"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    # Read-only commands change no layout.
    assert run_cli("status").exit_code == 0
    assert not exists(db, LOG)
    # The row of version 1 was written by hand: realign it, then migrate.
    assert run_cli("repair", "--yes").exit_code == 0
    assert exists(db, LOG)
    assert run_cli("migrate").exit_code == 0
    assert db.execute(
        "SELECT version, execution_ms FROM schema_migrations ORDER BY 1"
    ).fetchall()[0] == (1, 3)  # the old row, kept
    assert [(r[0], r[1]) for r in log_rows(db)] == [("repair", 1), ("apply", 2)]


def test_a_role_that_cannot_create_the_log_works_without_it(
    run_cli, sql_dir, db, deploy_role
):
    db.execute(
        sql.SQL(HISTORY_TABLE_DDL).format(sql.Identifier("public", "schema_migrations"))
    )
    grant_deploy_privileges(db, deploy_role.name)
    sql_dir.write({"001_a.sql": "CREATE TABLE app.t (id int);"})
    result = run_cli("migrate", env={"DATABASE_URL": deploy_role.url})
    assert result.exit_code == 0, result.output
    assert "warning: this role may not create tables in schema public" in result.stderr
    assert not exists(db, LOG)


def test_a_role_without_insert_on_an_existing_log_works_and_says_so(
    run_cli, sql_dir, db, deploy_role
):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    assert run_cli("migrate").exit_code == 0  # the owner: creates the log
    grant_deploy_privileges(db, deploy_role.name)
    sql_dir.write({"002_b.sql": "CREATE TABLE app.t (id int);"})
    result = run_cli("migrate", env={"DATABASE_URL": deploy_role.url})
    assert result.exit_code == 0, result.output
    assert f"may not write the audit log public.{LOG}" in result.stderr
    assert [(r[0], r[1]) for r in log_rows(db)] == [("apply", 1)]


def test_log_command(run_cli, sql_dir, db):
    empty = run_cli("log")
    assert empty.exit_code == 0
    assert empty.stdout.startswith(f"no audit log (public.{LOG}) yet")
    sql_dir.write({"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    assert run_cli("migrate").exit_code == 0
    text = run_cli("log", "--limit", "1")
    lines = text.stdout.splitlines()
    assert lines[0].split() == [
        "at",
        "action",
        "version",
        "name",
        "outcome",
        "by",
        "checksum",
    ]
    assert lines[1].split()[2:6] == ["apply", "2", "b", "ok"]
    assert lines[-1] == (
        f"public.{LOG}: 1 row, the newest (--limit 1; --all for every row)"
    )
    both = run_cli("log", "--limit", "3", "--all")
    assert both.exit_code == 2
    doc = json.loads(run_cli("log", "--json").stdout)
    assert [(r["action"], r["version"]) for r in doc["rows"]] == [
        ("apply", 1),
        ("apply", 2),
    ]
    assert doc["rows"][0]["login_role"] == db.info.user


def test_a_table_that_only_has_the_log_s_name_is_left_alone(run_cli, sql_dir, db):
    db.execute(f"CREATE TABLE {LOG} (id serial, msg text)")
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    assert "is not a schemactl audit log" in result.stderr
    assert db.execute(f"SELECT count(*) FROM {LOG}").fetchone() == (0,)


def test_disabled_guards_are_reported(run_cli, sql_dir, db):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    assert run_cli("migrate").exit_code == 0
    db.execute(f"ALTER TABLE {LOG} DISABLE TRIGGER USER")
    sql_dir.write({"002_b.sql": "SELECT 2;"})
    result = run_cli("migrate")
    assert result.exit_code == 0
    assert "is no longer append-only" in result.stderr
    assert len(log_rows(db)) == 2  # still written


def test_two_history_tables_in_one_schema_have_their_own_logs(run_cli, sql_dir, db):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    for table in ("hist_a", "hist_b"):
        assert run_cli("migrate", "--table", table).exit_code == 0
    for table in ("hist_a", "hist_b"):
        assert exists(db, f"{table}_log")
        guards = db.execute(
            "SELECT DISTINCT p.proname FROM pg_trigger t JOIN pg_proc p "
            "ON p.oid = t.tgfoid WHERE t.tgrelid = %s::regclass",
            (f"{table}_log",),
        ).fetchall()
        assert guards == [(f"{table}_log_append_only",)]
    shown = json.loads(run_cli("log", "--table", "hist_b", "--json").stdout)
    assert [r["history_table"] for r in shown["rows"]] == ['"public"."hist_b"']
