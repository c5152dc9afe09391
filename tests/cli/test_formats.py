"""--format json (one document on stdout, also on failure) and --format github
(annotations on the file and line), for every command."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from schemactl.cli import cli
from schemactl.errors import EXIT_PENDING
from schemactl.machine import FORMAT_VERSION, annotation

FRAME = {"format_version", "command", "ok", "exit_code", "error"}


def document(result: Any) -> dict[str, Any]:
    """The one JSON document on stdout (json.loads refuses anything more)."""
    doc = json.loads(result.stdout)
    assert set(doc) >= FRAME
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["exit_code"] == result.exit_code
    assert doc["ok"] is (result.exit_code == 0)
    return dict(doc)


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["migrate", "--dry-run"],
        ["status"],
        ["verify"],
        ["rollback"],
        ["repair", "--yes"],
        ["new", "next_one"],
        ["sql"],
        ["config"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_command_prints_one_document(run_cli, sql_dir, args):
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int);"})
    result = run_cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = document(result)
    assert doc["command"] == args[0]
    assert doc["error"] is None


def test_a_failed_migrate_keeps_what_was_applied_and_locates_the_error(
    run_cli, sql_dir, db
):
    sql_dir.write(
        {
            "001_a.sql": "CREATE TABLE a (id int);",
            "002_b.sql": "SELECT 1;\nINSERT INTO missing VALUES (1);\n",
        }
    )
    result = run_cli("migrate", "--format", "json")
    assert result.exit_code == 1
    doc = document(result)
    assert doc["target"].endswith(f":{db.info.port}/{db.info.dbname}")
    assert doc["table"] == "public.schema_migrations"
    assert [m["version"] for m in doc["applied"]] == [1]
    error = doc["error"]
    assert error["type"] == "MigrationFailed"
    assert error["sqlstate"] == "42P01"
    assert (error["file"], error["line"], error["column"]) == (
        str(sql_dir.path / "002_b.sql"),
        2,
        13,
    )
    # Progress and the human error went to stderr; stdout held the document.
    assert "applied 001_a.sql" in result.stderr
    assert "002_b.sql:2:13: error" in result.stderr


def test_a_connection_error_is_a_document_too(run_cli):
    secret = "s3cret-pw"
    result = run_cli(
        "status",
        "--json",
        "-d",
        f"postgresql://app:{secret}@127.0.0.1:1/app",
    )
    assert result.exit_code == 3
    doc = document(result)
    assert doc["error"]["type"] == "ConnectError"
    assert secret not in result.output


def test_drift_is_listed_in_the_error_of_migrate(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int);"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id bigint);"})
    doc = document(run_cli("migrate", "--format", "json"))
    assert doc["error"]["type"] == "DriftError"
    assert [d["state"] for d in doc["error"]["drift"]] == ["checksum mismatch"]


def test_format_before_the_command_and_from_the_environment(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    before = run_cli("--format", "json", "status")
    from_env = run_cli("status", env={"SCHEMACTL_FORMAT": "json"})
    assert document(before)["migrations"] == document(from_env)["migrations"]
    text = run_cli("status", "--format", "text", env={"SCHEMACTL_FORMAT": "json"})
    assert text.stdout.startswith("version")  # the option beats the variable


def test_status_exit_code_tells_pending_from_drift(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    assert run_cli("status", "--exit-code").exit_code == EXIT_PENDING
    assert run_cli("status").exit_code == 0  # without the flag: always 0
    assert run_cli("migrate").exit_code == 0
    assert run_cli("status", "--exit-code").exit_code == 0
    sql_dir.write({"001_a.sql": "SELECT 2;", "002_b.sql": "SELECT 3;"})
    assert run_cli("status", "--exit-code").exit_code == 1  # drift beats pending


def test_github_annotates_the_failing_statement(run_cli, sql_dir, monkeypatch):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(sql_dir.path.parent))
    sql_dir.write({"001_a.sql": "SELECT 1;\nSELECT * FROM missing;\n"})
    result = run_cli("migrate", "--format", "github")
    assert result.exit_code == 1
    assert (
        "::error file=sql/001_a.sql,line=2,col=15,title=migration failed::"
        'relation "missing" does not exist (SQLSTATE 42P01)'
    ) in result.stdout.splitlines()


def test_github_annotates_drift_and_pending(run_cli, sql_dir, monkeypatch):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(sql_dir.path.parent))
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "SELECT 2;", "002_b.sql": "SELECT 3;"})
    result = run_cli("verify", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert (
        "::error file=sql/001_a.sql,line=1,title=drift::version 1 (a): "
        "checksum mismatch"
    ) in lines
    assert (
        "::warning file=sql/002_b.sql,line=1,title=pending migration::"
        "version 2 (b) is pending"
    ) in lines


def test_github_annotates_an_invalid_file(run_cli, sql_dir, monkeypatch):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(sql_dir.path.parent))
    sql_dir.write({"001_a.sql": "SELECT 'unterminated;\n"})
    result = run_cli("migrate", "--format", "github")
    assert result.exit_code == 2
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("::error")]
    assert line.startswith("::error file=sql/001_a.sql,line=1,col=8,title=")


def test_annotations_escape_what_the_runner_would_read_as_syntax():
    line = annotation(
        "error", "50% done\nnext line", title="a: b, c", file="x,y.sql", line=3
    )
    assert line == (
        "::error file=x%2Cy.sql,line=3,title=a%3A b%2C c::50%25 done%0Anext line"
    )


def test_cli_help_lists_the_formats():
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["status", "--help"])
    assert "--format [text|json|github]" in result.output


def test_repair_documents_its_plan_and_what_it_did(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    assert run_cli("migrate").exit_code == 0
    sql_dir.write({"001_a.sql": "SELECT 1; -- edited"})
    result = run_cli("repair", "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = document(result)
    assert [e["version"] for e in doc["plan"]["realign"]] == [1]
    assert doc["repaired"] is True


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "--lock-timeout", "nan", "--format", "json"],
        ["--format", "json", "rollback", "--steps", "0"],
        ["--json", "no-such-command"],
        ["new", "--format=json"],  # NAME missing
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_are_documents_too(run_cli, args):
    result = run_cli(*args)
    assert result.exit_code == 2
    doc = document(result)
    assert doc["error"]["type"] == "UsageError"
    assert doc["error"]["exit_code"] == 2


def test_the_format_variable_is_read_in_any_case(run_cli, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;"})
    result = run_cli("status", env={"SCHEMACTL_FORMAT": "JSON"})
    assert document(result)["command"] == "status"


def test_a_table_lock_timeout_is_located_in_json_and_github(
    run_cli, sql_dir, db, database_url, monkeypatch
):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(sql_dir.path.parent))
    db.execute("CREATE TABLE t (a int)")
    sql_dir.write({"001_a.sql": "SELECT 1;\nALTER TABLE t ADD COLUMN b int;\n"})
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # held: no commit
        waits = ("--table-lock-timeout", "0.2", "--table-lock-retries", "0")
        doc = document(run_cli("migrate", *waits, "--format", "json"))
        github = run_cli("migrate", *waits, "--format", "github")
    error = doc["error"]
    assert (error["type"], error["exit_code"]) == ("TableLockTimeout", 3)
    assert (error["file"], error["line"], error["column"]) == (
        str(sql_dir.path / "001_a.sql"),
        2,
        1,
    )
    assert any(
        line.startswith("::error file=sql/001_a.sql,line=2,col=1::")
        for line in github.stdout.splitlines()
    )
