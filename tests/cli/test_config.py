"""Settings from a configuration file: option > env var > file > default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from schemactl.cli import cli

SECRET = "pa55-in-the-file"
# Every variable a setting can come from, unset: each test says what it sets.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    (
        "DATABASE_URL",
        "SCHEMACTL_DIR",
        "SCHEMACTL_TABLE",
        "SCHEMACTL_CONNECT_TIMEOUT",
        "SCHEMACTL_LOCK_TIMEOUT",
        "SCHEMACTL_TABLE_LOCK_TIMEOUT",
        "SCHEMACTL_TABLE_LOCK_RETRIES",
        "SCHEMACTL_TABLE_LOCK_BACKOFF",
        "SCHEMACTL_STATEMENT_TIMEOUT",
        "SCHEMACTL_POOLER",
        "SCHEMACTL_ENV",
        "SCHEMACTL_CONFIG",
    )
)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False
    )


def settings_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = invoke(*args, "config", "--json", env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a schemactl.toml; the test runs from a subdirectory."""
    (tmp_path / "schemactl.toml").write_text(
        'dir = "db/migrations"\n'
        'table = "app.file_history"\n'
        "lock-timeout = 30\n"
        "[environments.staging]\n"
        f'database-url = "postgresql://app:{SECRET}@db.example/app"\n'
        "table-lock-timeout = 2\n"
    )
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    return tmp_path


def test_each_setting_says_where_it_came_from(project):
    document = settings_json("--env", "staging")
    assert document["config_file"] == str(project / "schemactl.toml")
    assert document["environment"] == "staging"
    settings = document["settings"]
    assert settings["directory"] == {
        "value": str(project / "db" / "migrations"),
        "source": "schemactl.toml",
    }
    assert settings["table_lock_timeout"] == {
        "value": 2.0,
        "source": "schemactl.toml [environments.staging]",
    }
    assert settings["database_url"]["source"] == (
        "schemactl.toml [environments.staging] database-url"
    )
    assert settings["connect_timeout"] == {"value": 10.0, "source": "default"}
    assert settings["statement_timeout"] == {"value": None, "source": "default"}


@pytest.mark.parametrize(
    ("setting", "option", "variable", "from_file", "from_env", "from_flag"),
    [
        ("table", "--table", "SCHEMACTL_TABLE", "app.file_history", "a.env", "a.flag"),
        ("lock_timeout", "--lock-timeout", "SCHEMACTL_LOCK_TIMEOUT", 30.0, "7", "9"),
    ],
)
def test_flag_beats_env_beats_file(
    project, setting, option, variable, from_file, from_env, from_flag
):
    def value_and_source(*args: str, env: dict[str, str] | None = None) -> Any:
        found = settings_json(*args, env=env)["settings"][setting]
        return found["value"], found["source"]

    assert value_and_source() == (from_file, "schemactl.toml")
    with_env = {variable: from_env}
    expected_env = from_env if setting == "table" else float(from_env)
    assert value_and_source(env=with_env) == (expected_env, f"env {variable}")
    result = invoke("config", "--json", option, from_flag, env=with_env)
    found = json.loads(result.stdout)["settings"][setting]
    expected_flag = from_flag if setting == "table" else float(from_flag)
    assert (found["value"], found["source"]) == (expected_flag, f"option {option}")


def test_the_pooler_setting_comes_from_flag_env_file_or_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def pooler(*args: str, env: dict[str, str] | None = None) -> Any:
        return settings_json(*args, env=env)["settings"]["pooler"]

    assert pooler() == {"value": "auto", "source": "default"}
    (tmp_path / "schemactl.toml").write_text('pooler = "session"\n')
    assert pooler() == {"value": "session", "source": "schemactl.toml"}
    with_env = {"SCHEMACTL_POOLER": "auto"}
    assert pooler(env=with_env) == {"value": "auto", "source": "env SCHEMACTL_POOLER"}
    result = invoke("config", "--json", "--pooler", "session", env=with_env)
    assert json.loads(result.stdout)["settings"]["pooler"] == {
        "value": "session",
        "source": "option --pooler",
    }
    text = invoke("config").stdout.splitlines()
    assert [line.split() for line in text if line.startswith("pooler ")] == [
        ["pooler", "session", "schemactl.toml"]
    ]
    (tmp_path / "schemactl.toml").write_text('pooler = "transaction"\n')
    refused = invoke("config")
    assert refused.exit_code == 2, refused.output
    assert "pooler in schemactl.toml must be one of auto, session" in refused.output


def test_without_a_file_everything_is_a_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    document = settings_json()
    assert document["config_file"] is None
    assert {s["source"] for s in document["settings"].values()} == {"default"}
    assert document["settings"]["table"]["value"] == "public.schema_migrations"


def test_the_password_is_never_shown(project):
    for args in (["config"], ["config", "--json"]):
        result = invoke("--env", "staging", *args)
        assert result.exit_code == 0
        assert SECRET not in result.output
        assert "postgresql://app:****@db.example/app" in result.output


def test_env_options_work_before_and_after_the_command(project):
    before = invoke("--env", "staging", "config", "--json")
    after = invoke("config", "--json", "--env", "staging")
    from_variable = invoke("config", "--json", env={"SCHEMACTL_ENV": "staging"})
    assert before.stdout == after.stdout == from_variable.stdout


def test_an_unknown_environment_is_a_usage_error(project):
    result = invoke("--env", "prod", "status")
    assert result.exit_code == 2
    assert "no environment 'prod' (environments: staging)" in result.output


def test_env_without_a_file_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("--env", "staging", "config")
    assert result.exit_code == 2
    assert "--env staging: no configuration file found" in result.output


def test_a_named_file_is_used_wherever_the_command_runs(tmp_path, monkeypatch):
    named = tmp_path / "conf" / "ci.toml"
    named.parent.mkdir()
    named.write_text('table = "ci.history"\n')
    monkeypatch.chdir(tmp_path)
    assert settings_json("--config", str(named))["settings"]["table"] == {
        "value": "ci.history",
        "source": "ci.toml",
    }
    missing = invoke("--config", str(tmp_path / "nope.toml"), "config")
    assert missing.exit_code == 2
    assert "nope.toml: cannot read" in missing.output


def test_a_broken_file_stops_every_command_with_exit_2(project):
    (project / "schemactl.toml").write_text("tabel = 'x'\n")
    for command in ("status", "migrate", "new", "config"):
        args = [command, "x"] if command == "new" else [command]
        result = invoke(*args)
        assert result.exit_code == 2, command
        assert "unknown key 'tabel'" in result.output


def test_migrate_and_status_run_from_the_file(project, database_url, db):
    # The URL comes through database-url-env, the directory and the table from
    # the file: no option at all on the command line.
    (project / "schemactl.toml").write_text(
        'dir = "db/migrations"\n'
        'table = "ops.history"\n'
        'database-url-env = "TEST_DATABASE_URL"\n'
    )
    migrations = project / "db" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "001_users.sql").write_text("CREATE TABLE users (id int);\n")
    db.execute("CREATE SCHEMA ops")
    env = {"TEST_DATABASE_URL": database_url}

    migrated = invoke("migrate", env=env)
    assert migrated.exit_code == 0, migrated.output
    rows = db.execute("SELECT version, name FROM ops.history").fetchall()
    assert rows == [(1, "users")]

    status = invoke("status", env=env)
    assert status.exit_code == 0, status.output
    assert "ops.history: database at version 1" in status.output


def test_an_unset_database_url_env_matters_only_when_it_is_used(
    tmp_path, monkeypatch, database_url
):
    (tmp_path / "schemactl.toml").write_text(
        'database-url-env = "PROD_DATABASE_URL"\n'
        "[environments.local]\n"
        f'database-url = "{database_url}"\n'
    )
    (tmp_path / "sql").mkdir()
    monkeypatch.chdir(tmp_path)
    # Another source names the database: the variable is never read.
    assert invoke("status", "-d", database_url).exit_code == 0
    assert invoke("status", env={"DATABASE_URL": database_url}).exit_code == 0
    assert invoke("--env", "local", "status").exit_code == 0
    # Commands that need no database run; config says what is missing.
    assert invoke("new", "x").exit_code == 0
    (tmp_path / "sql" / "001_x.sql").write_text("SELECT 1;\n")
    assert invoke("sql").exit_code == 0
    shown = settings_json()["settings"]["database_url"]
    assert shown["value"] is None
    assert shown["source"] == (
        "schemactl.toml database-url-env PROD_DATABASE_URL (not set)"
    )
    # A command that would use it stops, naming the variable.
    result = invoke("status")
    assert result.exit_code == 2
    assert "environment variable PROD_DATABASE_URL is not set" in result.output


def test_database_url_beating_an_explicit_env_is_warned_about(project):
    env = {"DATABASE_URL": "postgresql://someone@elsewhere/db"}
    result = invoke("--env", "staging", "config", env=env)
    assert result.exit_code == 0
    assert (
        "warning: the database of environment 'staging' is overridden by "
        "DATABASE_URL (unset it, or pass -d)"
    ) in result.stderr
    quiet = invoke("--env", "staging", "config", "-d", "postgresql://x@y/z")
    assert "warning" not in quiet.stderr  # both typed: no surprise


def test_schemactl_env_without_a_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("config", env={"SCHEMACTL_ENV": "ci"})
    assert result.exit_code == 2
    assert "SCHEMACTL_ENV ci: no configuration file found" in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "2147484"])
def test_timeouts_refuse_what_postgresql_cannot_take(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    result = invoke("config", "--lock-timeout", value)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
