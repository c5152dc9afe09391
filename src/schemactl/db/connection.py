"""Connections: open one set up for migrating, refuse read-only targets, and turn
psycopg errors into typed errors that name the phase and the state left.

A connection error is redacted and not chained: its text may hold the conninfo.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from schemactl.config import APPLICATION_NAME, Settings, mask_url, redact
from schemactl.errors import (
    ConnectError,
    ConnectionLost,
    ReadOnlyTarget,
    SchemactlError,
)

# libpq rounds connect_timeout down to whole seconds and treats 1 as 2.
MIN_CONNECT_TIMEOUT = 2
# PostgreSQL 14+: how often a backend running a statement checks that its client
# is still there. A killed runner's statement (and its transaction) then ends
# within this interval instead of running on, holding its locks.
CLIENT_CHECK_INTERVAL_MS = 1000

Connection = psycopg.Connection[Any]


def describe_target(settings: Settings) -> str:
    """Return the connection target for messages, password masked."""
    if settings.database_url:
        return mask_url(settings.database_url)
    return "the server given by libpq defaults (PGHOST, PGPORT, PGDATABASE, ...)"


def connect(settings: Settings) -> Connection:
    """Open an autocommit connection named ``schemactl``, set up for migrating.

    The client encoding is UTF-8 whatever the database's (files are UTF-8), and
    every statement runs under the table lock and statement timeouts.

    Raises:
        ConnectError: when the server is unreachable within the connect timeout or
            refuses the login; the message masks the password.
    """
    timeout = max(MIN_CONNECT_TIMEOUT, math.ceil(settings.connect_timeout))
    try:
        conn = psycopg.connect(
            settings.database_url or "",
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=timeout,
            client_encoding="UTF8",
        )
    except psycopg.Error as exc:
        reason = redact(str(exc).strip(), settings.secrets)
        raise ConnectError(
            f"cannot connect to {describe_target(settings)}: {reason}"
        ) from None
    with phase(conn, "connect", state="nothing was changed"):
        conn.execute(session_settings_sql(conn, settings))
    return conn


def session_settings_sql(conn: Connection, settings: Settings) -> str:
    """Return the SETs every file's session starts with (re-applied after each
    file's reset, which would otherwise undo them)."""
    sets = [f"SET lock_timeout = {_milliseconds(settings.table_lock_timeout)}"]
    if settings.statement_timeout is not None:
        # Only when asked: otherwise a role's or database's own setting stands.
        sets.append(
            f"SET statement_timeout = {_milliseconds(settings.statement_timeout)}"
        )
    if conn.info.server_version >= 140000:
        sets.append(
            f"SET client_connection_check_interval = {CLIENT_CHECK_INTERVAL_MS}"
        )
        # The lock connection idles for the whole run, the worker while files
        # are checked: a server-wide idle_session_timeout must not end either.
        sets.append("SET idle_session_timeout = 0")
    return ";\n".join(sets)


def _milliseconds(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def describe_connection(conn: Connection) -> str:
    """Return user@host:port/dbname of an open connection (never the password)."""
    info = conn.info
    return f"{info.user}@{info.host}:{info.port}/{info.dbname}"


def refuse_read_only(conn: Connection) -> None:
    """Refuse a standby or a database whose transactions are read-only by default.

    Raises:
        ReadOnlyTarget: before anything is changed.
    """
    with phase(conn, "connect", state="nothing was changed"):
        row = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        ).fetchone()
    assert row is not None
    target = describe_connection(conn)
    if row[0]:
        raise ReadOnlyTarget(
            f"{target} is a read-only standby (in recovery); nothing was changed",
            hint="connect to the primary",
        )
    if row[1] == "on":
        raise ReadOnlyTarget(
            f"{target} only allows read-only transactions "
            "(default_transaction_read_only is on); nothing was changed",
            hint="connect to a writable database, or as a role without "
            "default_transaction_read_only",
        )


def is_connection_lost(exc: psycopg.Error, conn: Connection) -> bool:
    """Return True when exc means the connection is gone (terminated, lost)."""
    sqlstate = exc.sqlstate or ""
    return conn.broken or conn.closed or sqlstate.startswith(("08", "57P"))


@contextmanager
def phase(conn: Connection, name: str, *, state: str) -> Iterator[None]:
    """Translate psycopg errors raised in the block into typed errors.

    `name` is the phase for the message; `state` says what the database holds if
    the block fails (e.g. "nothing was changed").

    Raises:
        ConnectionLost: when the connection ended (exit 3).
        SchemactlError: for any other server error (exit 1).
    """
    try:
        yield
    except psycopg.Error as exc:
        reason = reason_of(exc)
        if is_connection_lost(exc, conn):
            raise ConnectionLost(
                f"connection lost during {name}: {reason}", state=state
            ) from None
        raise SchemactlError(f"{name} failed: {reason}", state=state) from exc


def reason_of(exc: psycopg.Error) -> str:
    text = exc.diag.message_primary or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else text


def settle(conn: Connection) -> None:
    """Leave no transaction open after a failure or an interruption.

    A statement still marked running (nobody will read its result) cannot be
    rolled back from here: the connection is closed and the server rolls the
    transaction back. Errors are swallowed: the caller is already raising.
    """
    if conn.closed or conn.broken:
        return
    status = conn.info.transaction_status
    try:
        if status == TransactionStatus.ACTIVE:
            conn.close()
        elif status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        conn.close()
