"""No password in any output (issue 9): every command, every way of giving the
password, failures, successes and --traceback, in-process and as a real process.

The passwords and the forms they are written in (URL user info, URL query,
key=value conninfo quoted and unquoted, PGPASSWORD, and unencoded URLs that libpq
refuses or misreads) come from tests/unit/test_config.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from schemactl.cli import cli
from schemactl.config import Settings
from schemactl.db.connection import describe_target, libpq_secrets
from tests.conftest import MigrationDir
from tests.unit.test_config import (
    ALL_FORMS,
    FORMS,
    Target,
    leaked,
    passwords,
    spellings,
)

UNREACHABLE = Target("127.0.0.1", 1, "u", "db")

# Every command that takes a connection string, in an order that succeeds on a
# real server again and again: empty history, baseline, read, repair, revert,
# apply, script.
COMMANDS: list[list[str]] = [
    ["rollback", "--to", "0"],
    ["baseline", "--version", "1"],
    ["status"],
    ["verify"],
    ["repair", "--yes"],
    ["rollback"],
    ["migrate"],
    ["status", "--json"],
    ["verify", "--strict", "--json"],
    ["sql"],
]
OFFLINE = {"sql"}
# Where the connection string goes: all four reach the same Settings.
PLACES = ("-d before", "-d after", "--database-url=", "DATABASE_URL")
# Variables of the surrounding test run that must not reach an invocation.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(
    ("DATABASE_URL", "PGPASSWORD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE")
)


@pytest.fixture
def migrations(sql_dir: MigrationDir) -> MigrationDir:
    return sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE secrets_one (id int);\n",
            "001_one.down.sql": "DROP TABLE IF EXISTS secrets_one;\n",
        }
    )


def arguments(
    conninfo: str | None, env: dict[str, str], place: str, command: list[str]
) -> tuple[list[str], dict[str, str | None]]:
    """Return the argument list and environment that give conninfo at place."""
    environment: dict[str, str | None] = {**CLEAN_ENV, **env}
    if conninfo is None:
        return command, environment
    if place == "-d before":
        return ["-d", conninfo, *command], environment
    if place == "-d after":
        return [*command, "-d", conninfo], environment
    if place == "--database-url=":
        return [f"--database-url={conninfo}", *command], environment
    environment["DATABASE_URL"] = conninfo
    return command, environment


def invoke(
    conninfo: str | None,
    env: dict[str, str],
    place: str,
    command: list[str],
    directory: MigrationDir,
    *,
    traceback: bool = False,
) -> Result:
    args, environment = arguments(conninfo, env, place, command)
    options = ["--dir", str(directory.path), "--connect-timeout", "3"]
    if traceback:
        options.append("--traceback")
    # catch_exceptions=False: a crash fails the test with its own traceback.
    return CliRunner().invoke(
        cli, [*options, *args], env=environment, catch_exceptions=False
    )


def output_of(result: Result) -> str:
    return result.stdout + result.stderr


# --- every form, every command, failing -------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    password=passwords,
    form=st.sampled_from(sorted(ALL_FORMS)),
    place=st.sampled_from(PLACES),
    traceback=st.booleans(),
)
# The three leaks of issue 9, and their neighbours.
@example(
    password="Sup3r Xy", form="raw url userinfo", place="-d before", traceback=True
)
@example(
    password="Sup3r@Xy", form="raw url userinfo", place="-d after", traceback=False
)
@example(
    password="Sup3r%zz", form="raw url query", place="DATABASE_URL", traceback=True
)
@example(
    password="Sup3r%zz", form="raw url userinfo", place="-d before", traceback=False
)
@example(
    password="ab/cd@ef:gh", form="raw url userinfo", place="-d before", traceback=True
)
@example(
    password="p%a1ssword", form="raw url query", place="-d before", traceback=False
)
@example(
    password="Sup3r&Xy&z", form="raw url query", place="-d before", traceback=False
)
@example(
    password='it\'s a \\ "pw"',
    form="conninfo quoted",
    place="--database-url=",
    traceback=True,
)
@example(
    password="'lead quote\\",
    form="conninfo unquoted",
    place="-d before",
    traceback=False,
)
@example(
    password="\u65e5\u672c \u00e9\U0001f511\u2003x",
    form="url query",
    place="-d after",
    traceback=True,
)
@example(password="Sup3r Xy@:/", form="PGPASSWORD", place="-d before", traceback=True)
def test_no_command_shows_the_password_when_it_fails(
    migrations, password, form, place, traceback
):
    conninfo, env = ALL_FORMS[form](password, UNREACHABLE)
    for command in COMMANDS:
        result = invoke(conninfo, env, place, command, migrations, traceback=traceback)
        shown = output_of(result)
        assert not leaked(password, shown), (command, shown)
        if command[0] in OFFLINE:
            assert result.exit_code == 0, shown
            continue
        assert result.exit_code == 3, (command, shown)
        assert "error: cannot connect to " in result.stderr
        if traceback:
            assert "Traceback (most recent call last)" in result.stderr


# --- every valid form, every command, succeeding on the real server -----------------


@pytest.fixture
def server_target(database_url: str) -> Target:
    params = conninfo_to_dict(database_url)
    return Target(
        str(params.get("host", "127.0.0.1")),
        int(str(params.get("port", 5432))),
        str(params.get("user", "postgres")),
        str(params["dbname"]),
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    password=passwords,
    form=st.sampled_from(sorted(FORMS)),
    place=st.sampled_from(PLACES),
)
@example(password="Sup3r Xy@:/%'\\\u00e9", form="url userinfo", place="-d before")
@example(password="Sup3r Xy@:/%'\\\u00e9", form="url query", place="DATABASE_URL")
@example(password="Sup3r Xy@:/%'\\\u00e9", form="conninfo quoted", place="-d after")
@example(password="Sup3r Xy@:/%'\\\u00e9", form="conninfo unquoted", place="-d after")
@example(password="Sup3r Xy@:/%'\\\u00e9", form="PGPASSWORD", place="-d before")
def test_no_command_shows_the_password_when_it_succeeds(
    migrations, server_target, password, form, place
):
    # Trust authentication: the server ignores the password, the login succeeds.
    conninfo, env = FORMS[form](password, server_target)
    target_line = (
        f"target: {server_target.user}@{server_target.host}:{server_target.port}/"
        f"{server_target.dbname}"
    )
    for command in COMMANDS:
        result = invoke(conninfo, env, place, command, migrations)
        shown = output_of(result)
        assert result.exit_code == 0, (command, shown)
        assert not leaked(password, shown), (command, shown)
        if command[0] in {"migrate", "rollback"}:
            assert target_line in result.stderr.splitlines()[0], shown


def test_server_errors_do_not_show_the_password(migrations, server_target):
    # The server answers, and refuses: a database that does not exist.
    password = "Sup3r Xy@:/%'\\"
    missing = Target(
        server_target.host, server_target.port, server_target.user, "no_such_db_x9"
    )
    for form, write in ALL_FORMS.items():
        conninfo, env = write(password, missing)
        result = invoke(conninfo, env, "-d before", ["migrate"], migrations)
        shown = output_of(result)
        assert result.exit_code == 3, (form, shown)
        assert not leaked(password, shown), (form, shown)


# --- the display form -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:Sup3r Xy@h:1/db", "postgresql://u:****@h:1/db"),
        ("postgresql://u:Sup3r@Xy@h:1/db", "postgresql://u:****@h:1/db"),
        (
            "postgresql://u@h:1/db?password=Sup3r%zz",
            "postgresql://u@h:1/db?password=****",
        ),
        ("host=h port=1 password='Sup3r Xy'", "host=h port=1 password=****"),
        # the user name is shown even when the password is the same word
        (
            "postgresql://postgres:postgres@h/postgres",
            "postgresql://postgres:****@h/postgres",
        ),
    ],
)
def test_describe_target(url, shown):
    assert describe_target(Settings(database_url=url)) == shown


def test_libpq_secrets_are_what_libpq_reads():
    # libpq ends the password at the first '@' and reads the rest as the host.
    found = libpq_secrets("postgresql://u:Sup3r@Xy@h/db")
    assert {"Sup3r", "Xy@h"} <= set(found)
    assert "u" not in found
    assert "db" not in found
    assert libpq_secrets("postgresql://u:Sup3r%zz@h/db") == ()  # libpq refuses it
    assert set(spellings("a b")) & set(libpq_secrets("host=h password='a b'"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://u:Sup3r Xy@127.0.0.1:1/db", 'unexpected spaces found in "****"'),
        (
            "postgresql://u:Sup3r@Xy@127.0.0.1:1/db",
            "failed to resolve host '****'",
        ),
        (
            "postgresql://u@127.0.0.1:1/db?password=Sup3r%zz",
            'invalid percent-encoded token: "****"',
        ),
        ("postgresql://u@127.0.0.1:1/db?password=Sup3r%a1", "is not UTF-8"),
    ],
)
def test_issue_9_leaks_are_gone(migrations, url, reason):
    result = invoke(url, {}, "-d before", ["status"], migrations)
    assert result.exit_code == 3
    assert reason in result.stderr
    assert "Sup3r" not in output_of(result)
    assert "Xy" not in output_of(result)


# --- real processes ----------------------------------------------------------------


def run_schemactl(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return subprocess.run(
        [sys.executable, "-m", "schemactl", *args],
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:Sup3r Xy@127.0.0.1:1/db",
        "postgresql://u:Sup3r@Xy@127.0.0.1:1/db",
        "postgresql://u@127.0.0.1:1/db?password=Sup3r%zz",
        "host=127.0.0.1 port=1 user=u password='Sup3r Xy'",
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["rollback"], ["repair", "--yes"]])
def test_a_real_process_never_shows_the_password(migrations, url, command):
    done = run_schemactl(
        "-d", url, "--dir", str(migrations.path), "--traceback", *command
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "cannot connect to " in done.stderr
    assert "Sup3r" not in done.stdout + done.stderr
    assert "Xy" not in done.stdout + done.stderr


def test_a_real_process_on_the_real_server(migrations, server_target):
    password = "Sup3r Xy@:/%'\\"
    conninfo, _ = FORMS["url userinfo"](password, server_target)
    assert conninfo is not None
    for command in (["migrate"], ["status"], ["rollback"], ["sql"]):
        done = run_schemactl(
            *command, "--dir", str(migrations.path), env={"DATABASE_URL": conninfo}
        )
        assert done.returncode == 0, done.stderr
        assert not leaked(password, done.stdout + done.stderr)
    _, env = FORMS["PGPASSWORD"](password, server_target)
    done = run_schemactl("migrate", "--dir", str(migrations.path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        f"target: {server_target.user}@{server_target.host}:{server_target.port}/"
    )
    assert not leaked(password, done.stdout + done.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["postgresql://u:Sup3rSecret@h/db", "status"],
        ["status", "--connect-timeout", "postgresql://u:Sup3rSecret@h/db"],
        ["--connect-timeout", "postgresql://u:Sup3rSecret@h/db", "status"],
    ],
    ids=["as a command", "as a command option", "as a group option"],
)
def test_usage_errors_do_not_echo_the_password(args):
    done = subprocess.run(
        [sys.executable, "-m", "schemactl", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Sup3rSecret" not in done.stdout + done.stderr
    assert "postgresql://u:****@h/db" in done.stderr
