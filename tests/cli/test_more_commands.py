"""rollback, baseline, repair, new and no-transaction files, end to end."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from schemactl.cli import cli
from tests.conftest import public_tables

ONE = "CREATE TABLE one (id int);\n"
ONE_DOWN = "DROP TABLE one;\n"
TWO = "CREATE TABLE two (id int);\n"
TWO_DOWN = "DROP TABLE two;\n"


def versions(db) -> list[int]:
    rows = db.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def write_two(sql_dir) -> None:
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "001_one.down.sql": ONE_DOWN,
            "002_two.sql": TWO,
            "002_two.down.sql": TWO_DOWN,
        }
    )


def test_rollback_reverts_the_newest_by_default(run_cli, sql_dir, db):
    write_two(sql_dir)
    assert run_cli("migrate").exit_code == 0
    result = run_cli("rollback")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(
        "reverted 002_two.sql with 002_two.down.sql ("
    )
    assert public_tables(db) == ["one", "schema_migrations"]
    assert versions(db) == [1]


def test_rollback_to_zero_then_migrate_again(run_cli, sql_dir, db):
    write_two(sql_dir)
    assert run_cli("migrate").exit_code == 0
    assert run_cli("rollback", "--to", "0").exit_code == 0
    assert versions(db) == []
    assert public_tables(db) == ["schema_migrations"]
    assert run_cli("migrate").exit_code == 0
    assert versions(db) == [1, 2]


def test_rollback_refuses_when_a_down_file_is_missing(run_cli, sql_dir, db):
    sql_dir.write(
        {"001_one.sql": ONE, "001_one.down.sql": ONE_DOWN, "002_two.sql": TWO}
    )
    assert run_cli("migrate").exit_code == 0
    result = run_cli("rollback", "--steps", "2")
    assert result.exit_code == 2
    assert (
        f"{sql_dir.path / '002_two.sql'}: error: cannot roll back version 2"
        in result.stderr
    )
    assert "002_two.down.sql is missing" in result.stderr
    assert versions(db) == [1, 2]


def test_failing_down_file_keeps_the_row_and_the_schema(run_cli, sql_dir, db):
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "001_one.down.sql": "DROP TABLE one;\nSELECT 1/0;\n",
        }
    )
    assert run_cli("migrate").exit_code == 0
    result = run_cli("rollback")
    assert result.exit_code == 1
    assert (
        f"{sql_dir.path / '001_one.down.sql'}:2:1: error: division by zero"
        in result.stderr
    )
    assert "one" in public_tables(db)
    assert versions(db) == [1]


def test_rollback_steps_and_to_are_exclusive(run_cli, sql_dir):
    write_two(sql_dir)
    assert run_cli("rollback", "--steps", "1", "--to", "0").exit_code == 2


def test_baseline_records_without_running(run_cli, sql_dir, db):
    write_two(sql_dir)
    sql_dir.write({"003_three.sql": "CREATE TABLE three (id int);\n"})
    db.execute(ONE + TWO)  # built by hand, as with psql -f
    result = run_cli("baseline", "--version", "2")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[-1]
        == "baselined 2 migrations (database at version 2)"
    )
    assert versions(db) == [1, 2]
    assert db.execute("SELECT execution_ms FROM schema_migrations").fetchall() == [
        (0,),
        (0,),
    ]
    assert run_cli("migrate").exit_code == 0
    assert public_tables(db) == ["one", "schema_migrations", "three", "two"]


def test_baseline_refuses_a_non_empty_history(run_cli, sql_dir, db):
    write_two(sql_dir)
    assert run_cli("migrate", "--to", "1").exit_code == 0
    result = run_cli("baseline", "--version", "2")
    assert result.exit_code == 1
    assert "refusing to baseline: the history already has 1 row" in result.stderr
    assert versions(db) == [1]


def test_repair_needs_yes_off_a_terminal_and_shows_the_plan(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.sql": ONE + "-- a comment added later\n"})
    result = run_cli("repair")
    assert result.exit_code == 2
    assert (
        f"store the checksum of {sql_dir.path / '001_one.sql'} for version 1"
        in result.stdout
    )
    assert "pass --yes" in result.stderr
    assert run_cli("verify").exit_code == 1


def test_repair_realigns_checksums(run_cli, sql_dir):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.sql": ONE + "-- a comment added later\n"})
    result = run_cli("repair", "--yes")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "history repaired"
    assert run_cli("verify").exit_code == 0
    assert run_cli("repair", "--yes").stdout == "nothing to repair\n"


def test_no_transaction_failure_then_repair_then_migrate(run_cli, sql_dir, db):
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "002_idx.sql": "-- schemactl:no-transaction\n"
            "CREATE INDEX CONCURRENTLY one_id ON one (id);\n"
            "CREATE INDEX CONCURRENTLY one_bad ON one (nope);\n",
        }
    )
    failed = run_cli("migrate")
    assert failed.exit_code == 1
    assert f"{sql_dir.path / '002_idx.sql'}:3:" in failed.stderr
    assert "statement 1 of it ran and stays applied" in failed.stderr
    assert run_cli("verify").exit_code == 1
    assert run_cli("migrate").exit_code == 1
    sql_dir.write(
        {
            "002_idx.sql": "-- schemactl:no-transaction\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS one_id ON one (id);\n"
        }
    )
    repaired = run_cli("repair", "--yes")
    assert "delete the failed row of version 2 (idx)" in repaired.stdout
    assert run_cli("migrate").exit_code == 0
    assert db.execute(
        "SELECT success FROM schema_migrations WHERE version = 2"
    ).fetchone() == (True,)


def test_concurrent_index_in_a_transactional_file_is_caught_before_running(
    run_cli, sql_dir, db
):
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "002_idx.sql": "CREATE INDEX CONCURRENTLY i ON one (id);\n",
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 2
    assert (
        f"{sql_dir.path / '002_idx.sql'}:1:1: error: CREATE INDEX CONCURRENTLY "
        "cannot run inside a transaction"
    ) in result.stderr
    assert "hint: add '-- schemactl:no-transaction'" in result.stderr
    assert public_tables(db) == []


def test_new_needs_no_database(tmp_path: Path):
    directory = tmp_path / "migrations"
    env = {"DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:1/none"}
    runner = CliRunner()
    first = runner.invoke(
        cli, ["new", "create users", "--dir", str(directory)], env=env
    )
    second = runner.invoke(
        cli, ["--dir", str(directory), "new", "add_index", "--down"], env=env
    )
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert first.stdout == f"created {directory / '001_create_users.sql'}\n"
    assert sorted(p.name for p in directory.iterdir()) == [
        "001_create_users.sql",
        "002_add_index.down.sql",
        "002_add_index.sql",
    ]


def test_new_refuses_an_invalid_directory(tmp_path: Path):
    (tmp_path / "notes.sql").write_text("SELECT 1;")
    result = CliRunner().invoke(cli, ["new", "x", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "notes.sql" in result.stderr


def test_rollback_checks_every_down_file_before_reverting_any(run_cli, sql_dir, db):
    write_two(sql_dir)
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.down.sql": "\\echo not SQL\nDROP TABLE one;\n"})
    result = run_cli("rollback", "--to", "0")
    assert result.exit_code == 2
    assert f"{sql_dir.path / '001_one.down.sql'}:1:1: error:" in result.stderr
    assert "meta-command" in result.stderr
    assert versions(db) == [1, 2]
    assert public_tables(db) == ["one", "schema_migrations", "two"]
