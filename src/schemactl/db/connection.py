"""Connections: open one set up for migrating, refuse read-only targets, and turn
psycopg errors into typed errors that name the phase and the state left.

A connection error is redacted and not chained: its text may hold the conninfo.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from schemactl.config import APPLICATION_NAME, Settings
from schemactl.errors import (
    ConnectError,
    ConnectionLost,
    ReadOnlyTarget,
    SchemactlError,
)
from schemactl.redaction import (
    SECRET_KEYWORDS,
    known_secrets,
    mask_url,
    redact,
    secret_forms,
    secret_fragments,
)

# libpq rounds connect_timeout down to whole seconds and treats 1 as 2.
MIN_CONNECT_TIMEOUT = 2
# PostgreSQL 14+: how often a backend running a statement checks that its client
# is still there. A killed runner's statement (and its transaction) then ends
# within this interval instead of running on, holding its locks.
CLIENT_CHECK_INTERVAL_MS = 1000

Connection = psycopg.Connection[Any]


def describe_target(settings: Settings) -> str:
    """Return the connection target for messages, password masked.

    ``postgresql://app:****@db/app`` or ``host=db password=****`` (see
    redaction.mask_url).
    """
    url = settings.database_url
    if not url:
        return "the server given by libpq defaults (PGHOST, PGPORT, PGDATABASE, ...)"
    shown = mask_url(url)
    # libpq has the last word on what the password is: anything it reads as one
    # that mask_url's reading missed is removed as well. (Not every secret: a
    # password that equals the user name must not mask the user name too.)
    written = set(known_secrets(url))
    missed = [secret for secret in libpq_secrets(url) if secret not in written]
    return redact(shown, missed) if missed else shown


def libpq_secrets(conninfo: str | None) -> tuple[str, ...]:
    """Return what libpq itself reads as secret in a connection string.

    libpq's own parser (PQconninfoParse, via conninfo_to_dict) gives the
    password it would send, and every other value it read out of a password span
    (an unencoded '@' in a URL's password ends it early, and the rest becomes the
    host). Nothing when libpq cannot parse the string: config's reading stands.
    """
    if not conninfo:
        return ()
    try:
        params = conninfo_to_dict(conninfo)
    except (psycopg.Error, UnicodeError):
        return ()
    found: list[str] = []
    others: list[str] = []
    for key, value in params.items():
        if key in SECRET_KEYWORDS:
            found += secret_forms(str(value))
        else:
            others.append(str(value))
    return tuple(dict.fromkeys(found + secret_fragments(conninfo, others)))


def connection_secrets(settings: Settings) -> tuple[str, ...]:
    """Return every secret a message about this connection must not show:
    the settings' own, the passwords written in the URL and PGPASSWORD, and what
    libpq reads as secret in the URL."""
    url = settings.database_url
    return (*settings.secrets, *known_secrets(url), *libpq_secrets(url))


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
        try:
            return _connect(settings, timeout, modern=True)
        except psycopg.OperationalError as exc:
            if _UNKNOWN_PARAMETER not in str(exc):
                raise
            # PostgreSQL 13 or older: no client_connection_check_interval nor
            # idle_session_timeout (see README: what remains on old servers).
            return _connect(settings, timeout, modern=False)
    except (psycopg.Error, UnicodeDecodeError, UnicodeEncodeError) as exc:
        # libpq's parse errors echo the string or a piece of it; its connect
        # errors name the host, port and database it read. psycopg decodes what
        # libpq parsed as UTF-8: a value percent-encoded otherwise (%a1) fails
        # there, with a UnicodeDecodeError rather than a psycopg.Error.
        text = (
            "a value of the connection string is not UTF-8 (a percent-encoded "
            f"byte?): {exc.reason}"
            if isinstance(exc, UnicodeDecodeError | UnicodeEncodeError)
            else str(exc).strip()
        )
        reason = redact(
            text,
            connection_secrets(settings),
            conninfo=settings.database_url,
        )
        raise ConnectError(
            f"cannot connect to {describe_target(settings)}: {reason}"
        ) from None


_UNKNOWN_PARAMETER = "unrecognized configuration parameter"


def _connect(settings: Settings, timeout: int, *, modern: bool) -> Connection:
    # The session settings travel in the startup packet: they are then the
    # session's own defaults, which RESET ALL (in a file, or in the reset after
    # each file) returns to rather than undoes. libpq takes `options` from the
    # connection string, else from PGOPTIONS: the user's come first, ours after.
    url = settings.database_url or ""
    user_options = conninfo_to_dict(url).get("options") or os.environ.get(
        "PGOPTIONS", ""
    )
    options = " ".join(
        filter(None, [str(user_options), session_options(settings, modern=modern)])
    )
    return psycopg.connect(
        url,
        autocommit=True,
        application_name=APPLICATION_NAME,
        connect_timeout=timeout,
        client_encoding="UTF8",
        options=options,
    )


def session_options(settings: Settings, *, modern: bool) -> str:
    """Return the ``-c name=value`` settings every schemactl session starts with.

    modern: the server is PostgreSQL 14 or newer.
    """
    settings_list = [f"lock_timeout={_milliseconds(settings.table_lock_timeout)}"]
    if settings.statement_timeout is not None:
        # Only when asked: otherwise a role's or database's own setting stands.
        settings_list.append(
            f"statement_timeout={_milliseconds(settings.statement_timeout)}"
        )
    # Files are read with standard_conforming_strings on (see splitting.py),
    # whatever the server's default.
    settings_list.append("standard_conforming_strings=on")
    if modern:
        settings_list.append(
            f"client_connection_check_interval={CLIENT_CHECK_INTERVAL_MS}"
        )
        # The lock connection idles for the whole run, the worker while files
        # are checked: a server-wide idle_session_timeout must not end either.
        settings_list.append("idle_session_timeout=0")
    return " ".join(f"-c {setting}" for setting in settings_list)


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
