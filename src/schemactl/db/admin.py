"""The server rather than a migration: is it up, and creating or dropping the
target database (from the server's maintenance database, `postgres`)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

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
    ``key=value`` pairs).

    The query runs as one statement of the extended protocol (several
    statements are refused: none can end the transaction) in a read-only
    transaction that is rolled back, whatever it holds.

    Raises:
        ConnectError: when the server cannot be reached.
        UsageError: when the query fails, lists nothing, or a row holds no text.
    """
    with connect(settings) as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION READ ONLY")
                # The extended protocol (psycopg's stream): one statement,
                # unnamed, so nothing stays prepared on a pooled connection.
                # Not prepare=True: without a prepare threshold (see connect)
                # psycopg would send it as a simple query, several statements
                # and all.
                with conn.cursor() as cursor:
                    rows = list(cursor.stream(query))
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
        if not isinstance(value, str) or not value.strip():
            # Only the type: the value may be a connection string.
            shown = "empty text" if isinstance(value, str) else type(value).__name__
            raise UsageError(
                f"row {number} of the target query has no database name or "
                f"connection string in its first column ({shown})"
            )
        if is_conninfo(value):
            targets.append(Target(mask_url(value), value))
        else:
            targets.append(Target(value, _changed(settings, dbname=value)))
    return targets


def unique_targets(targets: list[Target]) -> list[Target]:
    """Return the targets, each database once (the first time it is listed):
    two spellings of one connection (a URL and ``key=value`` pairs) are one.
    A second run on a database would only wait for the first one's lock.

    Raises:
        UsageError: for a connection string libpq cannot read.
    """
    seen: set[tuple[tuple[str, str], ...]] = set()
    kept = []
    for target in targets:
        try:
            params = conninfo_to_dict(target.conninfo)
        except psycopg.Error:
            raise UsageError(
                f"cannot read the connection string of target {target.label}"
            ) from None
        identity = tuple(
            sorted((k, str(v)) for k, v in params.items() if k in _IDENTITY_KEYS)
        )
        if identity not in seen:
            seen.add(identity)
            kept.append(target)
    return kept


# What names a database; the rest (password, timeouts, options) does not.
# Compared as written: a key left out is filled in by libpq (PGPORT, a service
# file) and may differ, so two targets that only may be one both run (the
# second waits for the first one's lock); none is ever dropped by a guess.
_IDENTITY_KEYS = frozenset({"service", "host", "hostaddr", "port", "dbname", "user"})


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
