"""`schemactl migrate` end to end on a real server."""

from __future__ import annotations

import pytest

from tests.conftest import public_tables, without_progress

ONE = "CREATE TABLE one (id int PRIMARY KEY);\n"
TWO = "CREATE TABLE two (id int);\nINSERT INTO two VALUES (1);\n"
THREE = "CREATE TABLE three (id int);\n"


def history(db):
    return db.execute(
        "SELECT version, name, success FROM schema_migrations ORDER BY version"
    ).fetchall()


def test_applies_pending_migrations_in_order(run_cli, sql_dir, db):
    sql_dir.write({"002_two.sql": TWO, "001_one.sql": ONE, "10_ten.sql": THREE})
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines[:3]] == [
        "applied 001_one.sql",
        "applied 002_two.sql",
        "applied 10_ten.sql",
    ]
    assert lines[-1].startswith("applied 3 migrations in ")
    assert lines[-1].endswith("(database at version 10)")
    assert history(db) == [(1, "one", True), (2, "two", True), (10, "ten", True)]


def test_history_rows_carry_checksum_user_and_duration(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": b"\xef\xbb\xbfCREATE TABLE one (id int);\r\n"})
    assert run_cli("migrate").exit_code == 0
    checksum, applied_by, execution_ms = db.execute(
        "SELECT checksum, applied_by, execution_ms FROM schema_migrations"
    ).fetchone()
    import hashlib

    assert checksum == hashlib.sha256(b"CREATE TABLE one (id int);\n").hexdigest()
    assert applied_by == db.execute("SELECT current_user").fetchone()[0]
    assert execution_ms >= 0


def test_second_run_has_nothing_to_do(run_cli, sql_dir):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate").exit_code == 0
    result = run_cli("migrate")
    assert result.exit_code == 0
    assert result.stdout == "nothing to migrate (database at version 1)\n"


def test_failure_reports_file_line_column_and_keeps_earlier_migrations(
    run_cli, sql_dir, db
):
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "002_two.sql": "CREATE TABLE two (id int);\nINSERT INTO two VALUES (1);\n"
            "INSERT INTO one VALUES (1), (1);\n",
            "003_three.sql": THREE,
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 1
    path = sql_dir.path / "002_two.sql"
    target, first = without_progress(result.stderr)[:2]
    assert target.startswith("target: postgres@")
    assert first == (
        f'{path}:3:1: error: duplicate key value violates unique constraint "one_pkey"'
    )
    assert "  SQLSTATE: 23505" in result.stderr
    assert "  detail: Key (id)=(1) already exists." in result.stderr
    assert "  3 | INSERT INTO one VALUES (1), (1);" in result.stderr
    assert "statement 3 of the file failed" in result.stderr
    assert public_tables(db) == ["one", "schema_migrations"]
    assert history(db) == [(1, "one", True)]


def test_syntax_error_points_at_the_token_with_a_caret(run_cli, sql_dir):
    sql_dir.write(
        {
            "001_one.sql": "-- create\nCREATE TABLE one (\n  id int,\n  name text text\n);\n"
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 1
    path = sql_dir.path / "001_one.sql"
    target, *lines = without_progress(result.stderr)
    assert target.startswith("target: ")
    assert lines[0] == f'{path}:4:13: error: syntax error at or near "text"'
    gutter = "  4 | "
    assert lines[2] == f"{gutter}  name text text"
    assert lines[3] == " " * (len(gutter) + 12) + "^"


def test_dry_run_changes_nothing(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE, "002_two.sql": TWO})
    result = run_cli("migrate", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "would apply 001_one.sql",
        "would apply 002_two.sql",
        "dry run: 2 migrations pending, nothing changed (database at version none)",
    ]
    assert public_tables(db) == []


def test_to_stops_at_the_target(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE, "002_two.sql": TWO, "003_three.sql": THREE})
    assert run_cli("migrate", "--to", "2").exit_code == 0
    assert [v for v, _, _ in history(db)] == [1, 2]


def test_refuses_while_an_applied_file_was_edited(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.sql": ONE + "-- edited\n", "002_two.sql": TWO})
    result = run_cli("migrate")
    assert result.exit_code == 1
    assert "refusing to migrate: drift found in 1 migration" in result.stderr
    assert f"{sql_dir.path / '001_one.sql'}: checksum mismatch" in result.stderr
    assert "two" not in public_tables(db)


def test_refuses_while_an_applied_file_is_missing(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate").exit_code == 0
    sql_dir.remove("001_one.sql")
    sql_dir.write({"002_two.sql": TWO})
    result = run_cli("migrate")
    assert result.exit_code == 1
    assert "version 1: missing file" in result.stderr
    assert "two" not in public_tables(db)


def test_out_of_order_is_refused_unless_allowed(run_cli, sql_dir, db):
    sql_dir.write({"002_two.sql": TWO})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.sql": ONE})
    refused = run_cli("migrate")
    assert refused.exit_code == 1
    assert "out of order" in refused.stderr
    allowed = run_cli("migrate", "--allow-out-of-order")
    assert allowed.exit_code == 0, allowed.output
    assert [v for v, _, _ in history(db)] == [1, 2]


def test_a_failed_no_transaction_row_blocks_migrate(run_cli, sql_dir, db):
    sql_dir.write(
        {
            "001_idx.sql": "-- schemactl:no-transaction\nCREATE TABLE t (id int);\nSELECT 1/0;\n"
        }
    )
    first = run_cli("migrate")
    assert first.exit_code == 1
    assert "statement 2 of this no-transaction file failed" in first.stderr
    assert "statement 1 of it ran and stays applied" in first.stderr
    sql_dir.write({"002_two.sql": TWO})
    second = run_cli("migrate")
    assert second.exit_code == 1
    assert "failed" in second.stderr
    assert history(db) == [(1, "idx", False)]


@pytest.mark.parametrize(
    "args",
    [
        ["--table", "ops.history", "migrate"],
        ["migrate", "--table", "ops.history"],
    ],
    ids=["option before the command", "option after the command"],
)
def test_shared_options_before_or_after_the_command(run_cli, sql_dir, db, args):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli(*args).exit_code == 0
    assert db.execute("SELECT count(*) FROM ops.history").fetchone() == (1,)


def test_command_option_overrides_the_environment(run_cli, sql_dir, tmp_path, db):
    other = tmp_path / "other"
    other.mkdir()
    (other / "001_other.sql").write_text("CREATE TABLE other (id int);\n")
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate", "--dir", str(other)).exit_code == 0
    assert "other" in public_tables(db)
    assert "one" not in public_tables(db)


def test_hostile_table_name_is_only_ever_an_identifier(run_cli, sql_dir, db):
    db.execute("CREATE TABLE victim (id int)")
    sql_dir.write({"001_one.sql": ONE})
    hostile = 'x"; DROP TABLE victim; --'
    assert run_cli("migrate", "--table", hostile).exit_code == 0
    assert run_cli("status", "--table", hostile).exit_code == 0
    assert "victim" in public_tables(db)
    count = db.execute('SELECT count(*) FROM "x""; DROP TABLE victim; --"').fetchone()
    assert count == (1,)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"001_one.sql": ONE, "1_uno.sql": ONE}, "duplicate version 1"),
        ({"001_one.sql": ONE, "notes.sql": ONE}, "not a valid migration file name"),
        ({"001_one.sql": b"SELECT '\xff';"}, "not valid UTF-8"),
        ({"001_one.sql": "SELECT 1;\n\\i two.sql\n"}, "meta-command"),
    ],
    ids=["duplicate version", "stray sql file", "not utf-8", "psql meta-command"],
)
def test_invalid_directory_exits_2_naming_the_file(
    run_cli, sql_dir, db, files, message
):
    sql_dir.write(files)
    result = run_cli("migrate")
    assert result.exit_code == 2
    assert message in result.stderr
    assert str(sql_dir.path) in result.stderr
    assert public_tables(db) == []


def test_invalid_table_option_exits_2(run_cli, sql_dir):
    result = run_cli("migrate", "--table", "a.b.c")
    assert result.exit_code == 2
    assert "invalid --table" in result.stderr


def test_unknown_option_is_a_usage_error(run_cli):
    assert run_cli("migrate", "--bogus").exit_code == 2


def test_dry_run_checks_pending_files_like_a_real_run(run_cli, sql_dir, db):
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "002_idx.sql": "CREATE INDEX CONCURRENTLY i ON one (id);\n",
        }
    )
    result = run_cli("migrate", "--dry-run")
    assert result.exit_code == 2
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction" in result.stderr
    assert public_tables(db) == []
