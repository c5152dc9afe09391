"""Connection failures exit 3 and never show a password."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from schemactl import cli as cli_module
from schemactl import reports
from schemactl.cli import cli
from tests.conftest import run_subprocess, without_progress

SECRET = "hunter2-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A socket that accepts TCP connections and never answers the startup packet."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def invoke(*args: str, env: dict[str, str | None] | None = None):
    # DATABASE_URL of the surrounding test run must not reach these invocations.
    isolated: dict[str, str | None] = {"DATABASE_URL": None, **(env or {})}
    return CliRunner().invoke(cli, list(args), env=isolated, catch_exceptions=False)


@pytest.mark.parametrize("command", ["migrate", "status", "verify"])
def test_refused_connection_exits_3_with_masked_url(sql_dir, command):
    url = f"postgresql://app:{SECRET}@127.0.0.1:{free_port()}/app"
    result = invoke("-d", url, "--dir", str(sql_dir.path), command)
    assert result.exit_code == 3
    assert "cannot connect to postgresql://app:****@127.0.0.1:" in result.stderr
    assert SECRET not in result.output


def test_silent_server_times_out_with_exit_3(sql_dir, silent_server):
    url = f"postgresql://app:{SECRET}@127.0.0.1:{silent_server}/app"
    result = invoke(
        "status", "-d", url, "--dir", str(sql_dir.path), "--connect-timeout", "2"
    )
    assert result.exit_code == 3
    assert "timeout" in result.stderr.lower()
    assert SECRET not in result.output


def test_conninfo_password_is_masked(sql_dir):
    conninfo = f"host=127.0.0.1 port={free_port()} user=app password={SECRET}"
    result = invoke("status", "-d", conninfo, "--dir", str(sql_dir.path))
    assert result.exit_code == 3
    assert "password=****" in result.stderr
    assert SECRET not in result.output


def test_password_from_pgpassword_never_shows(sql_dir):
    env: dict[str, str | None] = {
        "PGPASSWORD": SECRET,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(free_port()),
    }
    result = invoke("status", "--dir", str(sql_dir.path), env=env)
    assert result.exit_code == 3
    assert SECRET not in result.output


def test_successful_run_shows_no_password(database_url, sql_dir):
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    # Trust authentication accepts and ignores the password, so the run succeeds.
    with_password = make_conninfo(database_url, password=SECRET)
    assert conninfo_to_dict(with_password)["password"] == SECRET
    sql_dir.write({"001_one.sql": "SELECT 1;"})
    for command in (
        ["migrate"],
        ["status"],
        ["verify", "--json"],
        ["status", "--json"],
    ):
        result = invoke("-d", with_password, "--dir", str(sql_dir.path), *command)
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output


def test_real_process_exit_code_and_streams(database_url, sql_dir):
    # A runtime error carries no position: the statement's start is reported.
    sql_dir.write({"001_one.sql": "SELECT 1/0;"})
    done = run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir)
    assert done.returncode == 1
    target, first = without_progress(done.stderr)[:2]
    assert target.startswith("target: ")
    assert first == f"{sql_dir.path / '001_one.sql'}:1:1: error: division by zero"
    assert done.stdout == ""


def test_an_unexpected_crash_prints_a_traceback_without_the_password(
    sql_dir, monkeypatch, capsys
):
    url = f"postgresql://app:{SECRET}@127.0.0.1:5432/app"

    def crash(settings):
        raise RuntimeError(f"unexpected failure talking to {url} ({SECRET})")

    monkeypatch.setattr(reports, "status", crash)
    monkeypatch.setattr(
        "sys.argv", ["schemactl", "-d", url, "--dir", str(sql_dir.path), "status"]
    )
    with pytest.raises(SystemExit) as exited:
        cli_module.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: unexpected failure talking to postgresql://app:****@" in err
    assert SECRET not in err
