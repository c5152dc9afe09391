"""The server rather than a migration: is it up, and creating or dropping the
target database (from the server's maintenance database, `postgres`)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo

from schemactl.config import Settings
from schemactl.core.fleet import Target, is_conninfo
from schemactl.db.connection import (
    Connection,
    connect,
    connection_secrets,
    describe_target,
    reason_of,
)
from schemactl.errors import ConnectError, SchemactlError, UsageError
from schemactl.redaction import mask_url, redact

MAINTENANCE_DATABASE = "postgres"
# Databases a server cannot do without (and the one create/drop connects to).
PROTECTED_DATABASES = frozenset({MAINTENANCE_DATABASE, "template0", "template1"})


def server_accepts_connections(settings: Settings) -> bool:
    """Return True when the server answers and accepts connections, whether
    or not the database exists and the login would succeed (libpq's PQping,
    as pg_isready uses it).

    Raises:
        UsageError: when the connection string cannot be read.
    """
    conninfo = _changed(
        settings, connect_timeout=max(2, round(settings.connect_timeout))
    )
    answer = pq.PGconn.ping(conninfo.encode())
    if answer == pq.Ping.NO_ATTEMPT:
        raise UsageError(
            f"cannot read the connection string {describe_target(settings)}"
        )
    return bool(answer == pq.Ping.OK)


def target_database(settings: Settings) -> str:
    """Return the name of the database the settings connect to, as libpq
    itself resolves it (dbname, a service file, PGDATABASE, the user name).

    Raises:
        UsageError: when libpq cannot read the connection string.
    """
    conninfo = settings.database_url or ""
    # Starting a connection makes libpq resolve every option (the service
    # file included); it is closed at once.
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        name = pgconn.db.decode()
        reason = "" if name else pgconn.error_message.decode(errors="replace")
    finally:
        pgconn.finish()
    if not name:
        detail = redact(reason.strip(), connection_secrets(settings), conninfo=conninfo)
        raise UsageError(
            f"cannot read the connection string {describe_target(settings)}"
            + (f": {detail}" if detail else "")
        )
    return name


def list_targets(settings: Settings, query: str) -> list[Target]:
    """Return the targets a query lists: each row's first column is a database
    on the settings' server, or a whole connection string (a URL, or
    ``key=value`` pairs). The query runs in a read-only transaction.

    Raises:
        ConnectError: when the server cannot be reached.
        UsageError: when the query fails, lists nothing, or a row holds no text.
    """
    with connect(settings) as conn:
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                cursor = conn.execute(query)
                rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            reason = redact(reason_of(exc), connection_secrets(settings))
            raise UsageError(f"the target query failed: {reason}") from None
    if not rows:
        raise UsageError(
            "the target query listed no database: nothing to do",
            hint="check its WHERE clause (a typo there must not pass as success)",
        )
    targets = []
    for number, row in enumerate(rows, 1):
        value = row[0] if row else None
        if not isinstance(value, str) or not value:
            raise UsageError(
                f"row {number} of the target query has no database name or "
                f"connection string in its first column ({value!r})"
            )
        if is_conninfo(value):
            targets.append(Target(mask_url(value), value))
        else:
            targets.append(Target(value, _changed(settings, dbname=value)))
    return targets


def create_database(settings: Settings, name: str) -> bool:
    """Create the database unless it exists; return True when it was created.

    Raises:
        ConnectError: when the maintenance database cannot be reached.
        SchemactlError: when the server refuses (e.g. no CREATEDB privilege).
    """
    with _maintenance(settings) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False
        except psycopg.Error as exc:
            raise _refused("create", name, exc, settings) from None
    return True


def drop_database(settings: Settings, name: str) -> bool:
    """Drop the database if it exists; return True when it was dropped. Never
    with FORCE: a database someone is connected to is refused.

    Raises:
        UsageError: for the server's own databases.
        ConnectError: when the maintenance database cannot be reached.
        SchemactlError: when the server refuses (in use, not the owner).
    """
    if name in PROTECTED_DATABASES:
        raise UsageError(f"refusing to drop {name!r}: the server needs it")
    with _maintenance(settings) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if exists is None:
            return False
        try:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise _refused("drop", name, exc, settings) from None
    return True


def _maintenance(settings: Settings) -> Connection:
    """Connect to the maintenance database of the target's server."""
    url = _changed(settings, dbname=MAINTENANCE_DATABASE)
    maintenance = Settings(
        database_url=url,
        connect_timeout=settings.connect_timeout,
        table_lock_timeout=settings.table_lock_timeout,
        statement_timeout=settings.statement_timeout,
        # The original string's secrets: libpq may read the rewritten one
        # differently (a password with an unencoded '@').
        secrets=connection_secrets(settings),
    )
    try:
        return connect(maintenance)
    except ConnectError as exc:
        message = (
            f"{exc.message} (create-db and drop-db connect to the "
            f"{MAINTENANCE_DATABASE!r} database of the target's server)"
        )
        # The rewritten string may show what libpq took from the original's
        # password: the original's secrets are removed again.
        raise ConnectError(
            redact(message, connection_secrets(settings)), hint=exc.hint
        ) from None


def _changed(settings: Settings, **changes: Any) -> str:
    """Return the settings' connection string with some keywords changed.

    Raises:
        UsageError: when the connection string cannot be read.
    """
    try:
        return make_conninfo(settings.database_url or "", **changes)
    except psycopg.Error:
        raise UsageError(
            f"cannot read the connection string {describe_target(settings)}"
        ) from None


def _refused(
    verb: str, name: str, exc: psycopg.Error, settings: Settings
) -> SchemactlError:
    reason = redact(
        (exc.diag.message_primary or str(exc)).strip(), connection_secrets(settings)
    )
    error = SchemactlError(
        f"cannot {verb} database {name!r}: {reason}",
        hint=exc.diag.message_hint,
        state="nothing was changed",
    )
    # The server refused (in use, no CREATEDB, not the owner): the database
    # could not be used, exit 3 as the contract has it.
    error.exit_code = ConnectError.exit_code
    return error
