"""Real PgBouncer processes for the pooler tests, started and stopped by them.

The binary comes from $PGBOUNCER (the Makefile sets it from
scripts/ensure-pgbouncer.sh); without it, the script is run here, and installs
Debian's package when it is missing. No binary fails the tests: they never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def pgbouncer_binary() -> str:
    """Return the PgBouncer binary's path; install it if need be."""
    found = os.environ.get("PGBOUNCER")
    if found:
        return found
    return subprocess.run(
        [str(ROOT / "scripts" / "ensure-pgbouncer.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PgBouncer:
    """A running PgBouncer on 127.0.0.1:port in front of the test server."""

    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    user: str

    def url(self, dbname: str, **params: Any) -> str:
        """Return a conninfo for dbname through this PgBouncer."""
        return make_conninfo(
            "",
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname=dbname,
            **params,
        )

    def log(self) -> str:
        return (self.directory / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: PgBouncer's immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _value(value: str) -> str:
    # A libpq-style value in PgBouncer's [databases] connection strings.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def start_pgbouncer(
    server: Mapping[str, Any],
    *,
    settings: Mapping[str, str],
    databases: Mapping[str, Mapping[str, str]] | None = None,
    port: int | None = None,
) -> PgBouncer:
    """Start PgBouncer in front of the test server and wait until it listens.

    settings: the [pgbouncer] section (pool_mode, default_pool_size, ...) over
    ours. databases: named entries (NAME -> extra keys such as dbname,
    pool_mode); a fallback ``*`` entry sends any other database name to the
    same database on the server. port: listen there (with so_reuseport = 1,
    several processes may share one port), else on a free one. Runs as the ``postgres`` OS user when root
    (PgBouncer refuses to run as root).
    """
    binary = pgbouncer_binary()
    user = str(server.get("user") or "postgres")
    server_keys = {
        "host": str(server.get("host") or "127.0.0.1"),
        "port": str(server.get("port") or 5432),
        "user": user,
    }
    if server.get("password"):
        server_keys["password"] = str(server["password"])
    directory = Path(tempfile.mkdtemp(prefix="schemactl-pgbouncer-"))
    directory.chmod(0o755)  # readable by the postgres OS user
    users = directory / "users.txt"
    users.write_text(f'"{user}" ""\n')
    lines = ["[databases]"]
    for name, extra in {**(databases or {}), "*": {}}.items():
        keys = {**server_keys, **extra}
        lines.append(
            f"{name} = " + " ".join(f"{k}={_value(v)}" for k, v in keys.items())
        )
    port = port or free_port()
    section = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "trust",
        "auth_file": str(users),
        "max_client_conn": "200",
        "logfile": "",
        **settings,
    }
    lines += ["[pgbouncer]", *(f"{k} = {v}" for k, v in section.items())]
    ini = directory / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    for path in (users, ini):
        path.chmod(0o644)
    command = [binary, str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    with (directory / "pgbouncer.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=directory
        )
    bouncer = PgBouncer(port, process, directory, user)
    try:
        _wait_until_listening(bouncer)
    except BaseException:
        bouncer.stop()
        raise
    return bouncer


def _wait_until_listening(bouncer: PgBouncer) -> None:
    # Polling a server that is starting up, not a test's condition.
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if bouncer.process.poll() is not None:
            raise RuntimeError(
                f"pgbouncer exited with {bouncer.process.returncode}:\n{bouncer.log()}"
            )
        try:
            socket.create_connection(("127.0.0.1", bouncer.port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pgbouncer did not listen within {START_TIMEOUT} s:\n"
                    f"{bouncer.log()}"
                ) from None
            time.sleep(0.02)


def warm_up(url: str, connections: int) -> list[int]:
    """Make the pool hold `connections` idle server connections (open that many
    transactions at once, then end them); return their server pids."""
    clients = [psycopg.connect(url, autocommit=True) for _ in range(connections)]
    try:
        pids = []
        for client in clients:
            client.execute("BEGIN")
            row = client.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            pids.append(int(row[0]))
        for client in clients:
            client.execute("COMMIT")
    finally:
        for client in clients:
            client.close()
    assert len(set(pids)) == connections, pids
    return pids
