"""wait, create-db and drop-db against a real server (and a server that appears
late, through a TCP proxy started once wait has said it is waiting)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from schemactl.cli import cli
from tests.cli.test_targets import deploy_role, role_url
from tests.conftest import url_for

__all__ = ["deploy_role"]  # the fixture, shared with test_targets


def invoke(*args: str) -> Result:
    env = {"DATABASE_URL": None, "SCHEMACTL_ENV": None, "SCHEMACTL_CONFIG": None}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def exists(server_conninfo: dict[str, Any], name: str) -> bool:
    with psycopg.connect(url_for(server_conninfo, "postgres")) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


@pytest.fixture
def scratch_database(server_conninfo: dict[str, Any]) -> Iterator[str]:
    """A unique database name, dropped at the end whatever the test did."""
    name = f"schemactl_test_admin_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(url_for(server_conninfo, "postgres"), autocommit=True) as c:
        c.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                psycopg.sql.Identifier(name)
            )
        )


def test_create_db_creates_once(server_conninfo, scratch_database):
    url = url_for(server_conninfo, scratch_database)
    created = invoke("-d", url, "create-db")
    assert created.exit_code == 0, created.output
    assert created.stdout == f"created database {scratch_database}\n"
    assert exists(server_conninfo, scratch_database)
    again = invoke("-d", url, "create-db", "--format", "json")
    assert again.exit_code == 0
    doc = json.loads(again.stdout)
    assert (doc["database"], doc["created"]) == (scratch_database, False)


def test_drop_db_asks_for_yes_and_refuses_while_in_use(
    server_conninfo, scratch_database
):
    url = url_for(server_conninfo, scratch_database)
    assert invoke("-d", url, "create-db").exit_code == 0

    unconfirmed = invoke("-d", url, "drop-db")  # stdin is not a terminal
    assert unconfirmed.exit_code == 2
    assert "pass --yes" in unconfirmed.output
    assert exists(server_conninfo, scratch_database)

    with psycopg.connect(url):  # someone is connected: never dropped by force
        in_use = invoke("-d", url, "drop-db", "--yes")
    assert in_use.exit_code == 3
    assert f"cannot drop database '{scratch_database}'" in in_use.output
    assert exists(server_conninfo, scratch_database)

    dropped = invoke("-d", url, "drop-db", "--yes")
    assert dropped.exit_code == 0
    assert dropped.stdout == f"dropped database {scratch_database}\n"
    assert not exists(server_conninfo, scratch_database)
    gone = invoke("-d", url, "drop-db", "--yes")
    assert (gone.exit_code, gone.stdout) == (
        0,
        f"database {scratch_database} does not exist\n",
    )


@pytest.mark.parametrize("name", ["postgres", "template1"])
def test_drop_db_never_drops_the_server_s_own_databases(server_conninfo, name):
    result = invoke("-d", url_for(server_conninfo, name), "drop-db", "--yes")
    assert result.exit_code == 2
    assert f"refusing to drop '{name}'" in result.output


def test_wait_returns_at_once_when_the_server_is_up(server_conninfo):
    # The database need not exist: wait is about the server (as pg_isready).
    url = url_for(server_conninfo, f"missing_{uuid.uuid4().hex[:8]}")
    result = invoke("-d", url, "wait", "--timeout", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ready after ")


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wait_gives_up_after_its_timeout():
    url = f"host=127.0.0.1 port={free_port()} user=nobody"
    result = invoke("-d", url, "wait", "--timeout", "0.5")
    assert result.exit_code == 3
    assert "did not accept connections within 0.5 s" in result.output


@contextmanager
def proxy(port: int, server: dict[str, Any]) -> Iterator[None]:
    """Forward 127.0.0.1:port to the real server, one thread per direction."""
    listener = socket.create_server(("127.0.0.1", port))
    target = (server.get("host", "127.0.0.1"), int(server.get("port", 5432)))

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        # The other direction's thread may close both sockets first.
        with closing(source), closing(sink), suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield
    finally:
        listener.close()


def test_wait_returns_once_the_server_starts_accepting(server_conninfo):
    port = free_port()
    params = {**server_conninfo, "host": "127.0.0.1", "port": port}
    url = url_for(params, "postgres")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "schemactl", "-d", url, "wait", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        first = waiting.stderr.readline()  # the barrier: it has tried and failed
        assert first.startswith("waiting for "), first
        with proxy(port, server_conninfo):
            out, _ = waiting.communicate(timeout=60)
        assert waiting.returncode == 0
        assert out.startswith("ready after ")
    finally:
        waiting.kill()
        waiting.wait()


def test_a_refusal_by_the_server_exits_3(
    server_conninfo, scratch_database, deploy_role
):
    # A role without CREATEDB: the database could not be used, nothing changed.
    url = role_url(server_conninfo, scratch_database, deploy_role.name)
    result = invoke("-d", url, "create-db")
    assert result.exit_code == 3, result.output
    assert "permission denied to create database" in result.output
    assert not exists(server_conninfo, scratch_database)
