"""`schemactl status` and `schemactl verify` end to end: read-only, states, JSON."""

from __future__ import annotations

import json

ONE = "CREATE TABLE one (id int);\n"
TWO = "CREATE TABLE two (id int);\n"


def history_exists(db):
    return db.execute(
        "SELECT to_regclass('public.schema_migrations') IS NOT NULL"
    ).fetchone()[0]


def test_status_on_a_fresh_database_creates_nothing(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE})
    result = run_cli("status")
    assert result.exit_code == 0
    assert "pending" in result.stdout
    assert not history_exists(db)


def test_status_lists_every_state(run_cli, sql_dir, db):
    sql_dir.write(
        {"001_one.sql": ONE, "002_two.sql": TWO, "003_three.sql": "SELECT 3;"}
    )
    assert run_cli("migrate", "--to", "2").exit_code == 0
    sql_dir.write({"001_one.sql": ONE + "-- edited\n"})
    db.execute(
        "INSERT INTO schema_migrations (version, name, checksum, execution_ms) "
        "VALUES (5, 'gone', 'x', 1)"
    )
    result = run_cli("status", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["table"] == "public.schema_migrations"
    assert document["current_version"] == 5
    assert [(m["version"], m["name"], m["state"]) for m in document["migrations"]] == [
        (1, "one", "checksum mismatch"),
        (2, "two", "applied"),
        (3, "three", "out of order"),
        (5, "gone", "missing file"),
    ]
    applied = document["migrations"][1]
    assert applied["applied_at"] is not None
    assert applied["checksum"] == applied["applied_checksum"]


def test_status_plain_output_when_piped(run_cli, sql_dir):
    sql_dir.write({"001_one.sql": ONE, "002_two.sql": TWO})
    assert run_cli("migrate", "--to", "1").exit_code == 0
    lines = run_cli("status").stdout.splitlines()
    assert lines[0].split() == ["version", "name", "state", "applied", "at"]
    assert lines[1].split()[:3] == ["1", "one", "applied"]
    assert lines[2].split() == ["2", "two", "pending"]
    assert lines[-1] == "public.schema_migrations: database at version 1"
    assert not any(ch in "".join(lines) for ch in "│┃━─")


def test_verify_passes_with_pending_unless_strict(run_cli, sql_dir):
    sql_dir.write({"001_one.sql": ONE, "002_two.sql": TWO})
    assert run_cli("migrate", "--to", "1").exit_code == 0
    relaxed = run_cli("verify")
    assert relaxed.exit_code == 0
    assert (
        relaxed.stdout.splitlines()[-1]
        == "verify ok: 1 applied, 1 pending, 0 with drift"
    )
    strict = run_cli("verify", "--strict")
    assert strict.exit_code == 1
    assert "verify FAILED" in strict.stdout


def test_verify_fails_on_drift_and_says_where(run_cli, sql_dir):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id bigint);\n"})
    result = run_cli("verify", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert [(d["version"], d["state"]) for d in document["drift"]] == [
        (1, "checksum mismatch")
    ]
    assert result.stderr == ""


def test_verify_on_an_empty_database_is_read_only(run_cli, sql_dir, db):
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("verify").exit_code == 0
    assert run_cli("verify", "--strict").exit_code == 1
    assert not history_exists(db)


def test_verify_allow_out_of_order(run_cli, sql_dir):
    sql_dir.write({"002_two.sql": TWO})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_one.sql": ONE})
    assert run_cli("verify").exit_code == 1
    assert run_cli("verify", "--allow-out-of-order").exit_code == 0
