"""Connections: open one set up for migrating (directly or through a pooler),
learn what server session is behind it, and turn psycopg errors into typed
errors that name the phase and the state left.

A connection error is redacted and not chained: its text may hold the conninfo.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from schemactl.config import APPLICATION_NAME, Settings
from schemactl.errors import (
    ConnectError,
    ConnectionLost,
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


def connect(settings: Settings, *, like: Connection | None = None) -> Connection:
    """Open an autocommit connection named ``schemactl``, set up for migrating.

    The client encoding is UTF-8 whatever the database's (files are UTF-8), and
    every statement runs under the table lock and statement timeouts: sent in
    the startup packet, or, through a pooler that refuses startup options
    (PgBouncer), with SET once it is known to be safe (see `select_row`).

    like: a connection to the same target, made by this function: how it
    connected (with startup options or not) and what was found out about its
    pooler are taken over rather than found out again.

    Raises:
        ConnectError: when the server is unreachable within the connect timeout or
            refuses the login; the message masks the password.
    """
    timeout = max(MIN_CONNECT_TIMEOUT, math.ceil(settings.connect_timeout))
    known = _SESSIONS.get(like) if like is not None else None
    try:
        if known is not None:
            conn = _connect(settings, timeout, startup=known.startup)
            _SESSIONS[conn] = known.sibling(settings)
            return conn
        try:
            conn = _connect(settings, timeout, startup=_MODERN)
            _SESSIONS[conn] = _Session(settings, modern=True, startup=_MODERN)
            return conn
        except psycopg.OperationalError as exc:
            if _UNKNOWN_PARAMETER in str(exc):
                # PostgreSQL 13 or older: no client_connection_check_interval
                # nor idle_session_timeout (see README: what remains on old
                # servers).
                conn = _connect(settings, timeout, startup=_OLD)
                _SESSIONS[conn] = _Session(settings, modern=False, startup=_OLD)
                return conn
            if _OPTIONS_REFUSED not in str(exc):
                raise
            _refuse_user_options(settings)
        # A pooler that takes no `options` (PgBouncer): our settings are SET
        # once it is known that they stay in this session (see select_row).
        conn = _connect(settings, timeout, startup=None)
        modern = conn.info.server_version >= _MODERN_SERVER
        _SESSIONS[conn] = _Session(settings, modern=modern, startup=None)
        return conn
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
# PgBouncer: "unsupported startup parameter: options" (and, in later versions,
# "unsupported startup parameter in options: NAME").
_OPTIONS_REFUSED = "unsupported startup parameter"
_MODERN_SERVER = 140000
# What goes in the startup packet's `options`: the settings of PostgreSQL 14+,
# those of older servers, or nothing (a pooler that refuses the parameter).
_MODERN = "modern"
_OLD = "old"


def _user_options(settings: Settings) -> str:
    # libpq takes `options` from the connection string, else from PGOPTIONS.
    url = settings.database_url or ""
    return str(conninfo_to_dict(url).get("options") or os.environ.get("PGOPTIONS", ""))


def _refuse_user_options(settings: Settings, *, dropped: bool = False) -> None:
    """Without `options`, the user's own options would be lost: say so rather
    than run without them.

    dropped: the server took the parameter but the settings it carried are not
    in force (PgBouncer's ignore_startup_parameters = options).
    """
    if _user_options(settings).strip():
        how = (
            "it drops the startup parameter `options` (a connection pooler such "
            "as PgBouncer with ignore_startup_parameters = options?)"
            if dropped
            else "it refuses the startup parameter `options` (a connection "
            "pooler such as PgBouncer?)"
        )
        raise ConnectError(
            f"cannot connect to {describe_target(settings)}: {how}, and "
            "your connection string or PGOPTIONS sets options, which would be "
            "lost",
            hint="remove the options (PGOPTIONS, options= in the connection "
            "string), or set them for the role (ALTER ROLE ... SET) instead",
        )


def _connect(settings: Settings, timeout: int, *, startup: str | None) -> Connection:
    # The session settings travel in the startup packet: they are then the
    # session's own defaults, which RESET ALL (in a file, or in the reset after
    # each file) returns to rather than undoes. The user's options come first,
    # ours after. startup=None: no options at all (libpq sends none when empty).
    options = ""
    if startup is not None:
        options = " ".join(
            filter(
                None,
                [
                    _user_options(settings),
                    session_options(settings, modern=startup == _MODERN),
                ],
            )
        )
    return psycopg.connect(
        settings.database_url or "",
        autocommit=True,
        application_name=APPLICATION_NAME,
        connect_timeout=timeout,
        client_encoding="UTF8",
        options=options,
        # No server-side prepared statements: through a pooler they stay on a
        # pooled server connection (PgBouncer does not reset them without
        # server_reset_query), where the next client's `_pg3_0` collides.
        prepare_threshold=None,
    )


def session_options(settings: Settings, *, modern: bool) -> str:
    """Return the ``-c name=value`` settings every schemactl session starts with.

    modern: the server is PostgreSQL 14 or newer.
    """
    return " ".join(
        f"-c {name}={value}" for name, value, _ in session_settings(settings, modern)
    )


def session_settings(settings: Settings, modern: bool) -> list[tuple[str, str, str]]:
    """Return schemactl's session settings: (name, value, the value as
    current_setting() shows it)."""
    lock_timeout = _milliseconds(settings.table_lock_timeout)
    found = [("lock_timeout", str(lock_timeout), _shown_ms(lock_timeout))]
    if settings.statement_timeout is not None:
        # Only when asked: otherwise a role's or database's own setting stands.
        statement_timeout = _milliseconds(settings.statement_timeout)
        found.append(
            ("statement_timeout", str(statement_timeout), _shown_ms(statement_timeout))
        )
    # Files are read with standard_conforming_strings on (see splitting.py),
    # whatever the server's default.
    found.append(("standard_conforming_strings", "on", "on"))
    if modern:
        found.append(
            (
                "client_connection_check_interval",
                str(CLIENT_CHECK_INTERVAL_MS),
                _shown_ms(CLIENT_CHECK_INTERVAL_MS),
            )
        )
        # The lock connection idles for the whole run, the worker while files
        # are checked: a server-wide idle_session_timeout must not end either.
        found.append(("idle_session_timeout", "0", "0"))
    return found


def _milliseconds(seconds: float) -> int:
    return math.ceil(seconds * 1000)


# How PostgreSQL shows a time setting kept in milliseconds: in the largest unit
# that divides it (guc.c's time unit table), "0" for zero.
_TIME_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000))


def _shown_ms(milliseconds: int) -> str:
    if milliseconds == 0:
        return "0"
    for unit, size in _TIME_UNITS:
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


# --- the server session behind a connection: poolers -------------------------
#
# Directly connected, a session is what it looks like: the pid libpq was given
# (BackendKeyData) is the backend's, and the settings sent in the startup
# packet are in force. Through a pooler neither need hold: PgBouncer gives its
# own pid, refuses `options` (or, with ignore_startup_parameters = options,
# drops them silently), and in transaction pooling hands the server connection
# to another client after each transaction. So the first query on a connection
# carries a session check (no round trip of its own): the server's pid and
# database, and whether the settings are in force. What is done about a pooler
# is decided where its pooling mode matters (db/target.py).


@dataclass
class _Session:
    """What is known about the server session behind one connection."""

    settings: Settings
    modern: bool
    # How it connected: _MODERN or _OLD (the settings in the startup packet's
    # options), or None (no options: a pooler refused them).
    startup: str | None
    # From the session check: the server's own pid and database name.
    server_pid: int | None = None
    database: str | None = None
    # The pid libpq was given is not the server's: a pooler answered.
    pooled: bool = False
    # The pooler's mode once probed (db/target.py): "session", "transaction"
    # or "statement"; None: not probed.
    pooling: str | None = None
    # schemactl's settings are in force in the session (assumed when they went
    # in the startup packet, until the check says otherwise); SET by hand: they
    # were SET after connecting, and every RESET ALL must be followed by them.
    in_force: bool = field(init=False)
    set_by_hand: bool = False

    def __post_init__(self) -> None:
        self.in_force = self.startup is not None

    def sibling(self, settings: Settings) -> _Session:
        """Return the state of another connection made the same way: the same
        pooler, its session not checked yet."""
        return _Session(
            settings,
            modern=self.modern,
            startup=self.startup,
            pooled=self.pooled,
            pooling=self.pooling,
        )

    @property
    def checked(self) -> bool:
        return self.server_pid is not None


_SESSIONS: weakref.WeakKeyDictionary[Connection, _Session] = weakref.WeakKeyDictionary()


def _check_sql(state: _Session) -> sql.Composable:
    """Return the session check's columns: the server's pid, its database, and
    whether every schemactl setting has its value."""
    expected = session_settings(state.settings, state.modern)
    in_force = sql.SQL(" AND ").join(
        sql.SQL("pg_catalog.current_setting({}) = {}").format(
            sql.Literal(name), sql.Literal(shown)
        )
        for name, _, shown in expected
    )
    return sql.SQL(
        "pg_catalog.pg_backend_pid(), pg_catalog.current_database(), {}"
    ).format(in_force if state.in_force else sql.SQL("false"))


_CHECK_COLUMNS = 3


def select_row(
    conn: Connection,
    columns: str,
    params: tuple[Any, ...] | dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Return the one row of ``SELECT columns`` (no FROM).

    On a connection whose session has not been checked yet, the check rides
    along in the same statement, so it costs no round trip of its own.
    """
    state = _SESSIONS.get(conn)
    if state is None or state.checked:
        row = conn.execute(f"SELECT {columns}", params).fetchone()
        assert row is not None
        return tuple(row)
    query = sql.SQL("SELECT {}, {}").format(sql.SQL(columns), _check_sql(state))
    row = conn.execute(query, params).fetchone()
    assert row is not None
    _take_check(conn, state, row[-_CHECK_COLUMNS:])
    return tuple(row[:-_CHECK_COLUMNS])


def check_session(conn: Connection) -> None:
    """Run the session check now, unless it ran already."""
    _checked_state(conn)


def _checked_state(conn: Connection) -> _Session | None:
    """Return the connection's session state, its check run (None: a
    connection connect() did not open)."""
    state = _SESSIONS.get(conn)
    if state is not None and not state.checked:
        select_row(conn, "1")
    return state


def _take_check(conn: Connection, state: _Session, values: tuple[Any, ...]) -> None:
    pid, database, in_force = values
    state.server_pid = int(pid)
    state.database = str(database)
    state.pooled = state.pooled or state.server_pid != conn.info.backend_pid
    if not in_force:
        if state.in_force and state.pooled:
            # The options went in the startup packet and a pooler dropped
            # them: the user's own went with them.
            _refuse_user_options(state.settings, dropped=True)
        state.in_force = False
        _set_settings_if_safe(conn, state)


def _set_settings_if_safe(conn: Connection, state: _Session) -> None:
    """SET the settings when they stay with this session: directly connected,
    or through a session pooler. Through a pooler in another mode a SET would
    stay on a server connection that other clients get next."""
    if state.in_force or (state.pooled and state.pooling != "session"):
        return
    conn.execute(_set_statements(state, local=False))
    state.in_force = True
    state.set_by_hand = True


def _set_statements(state: _Session, *, local: bool) -> str:
    verb = "SET LOCAL" if local else "SET"
    return ";\n".join(
        f"{verb} {name} = {value}"
        for name, value, _ in session_settings(state.settings, state.modern)
    )


def set_pooling(conn: Connection, mode: str) -> None:
    """Record the pooling mode found for this connection's pooler (and SET the
    settings, if they are missing and a session pooler keeps them)."""
    state = _SESSIONS.get(conn)
    if state is not None:
        state.pooling = mode
        _set_settings_if_safe(conn, state)


def is_pooled(conn: Connection) -> bool:
    """Return True when a pooler stands between this connection and the server
    (known once the session was checked)."""
    state = _SESSIONS.get(conn)
    return state is not None and state.pooled


def pooling_of(conn: Connection) -> str | None:
    """Return the pooling mode found for this connection's pooler, if probed."""
    state = _SESSIONS.get(conn)
    return None if state is None else state.pooling


def server_pid(conn: Connection) -> int:
    """Return the pid of the server backend behind the connection.

    Not ``conn.info.backend_pid``: through a pooler that is the pooler's own
    number, which no server view (pg_locks, pg_stat_activity) knows.
    """
    state = _checked_state(conn)
    if state is None:
        return conn.info.backend_pid
    assert state.server_pid is not None
    return state.server_pid


def server_database(conn: Connection) -> str:
    """Return the name of the database the server session is in (through a
    pooler, ``conn.info.dbname`` is the pooler's name for it)."""
    state = _checked_state(conn)
    if state is None:
        return conn.info.dbname
    assert state.database is not None
    return state.database


def settings_after_reset(conn: Connection) -> str:
    """Return the statements that put schemactl's settings back after a RESET
    ALL ('' when RESET ALL returns to them by itself: they came in the startup
    packet).

    Through a pooler that includes the application name and the client
    encoding: PgBouncer SETs them on a server connection for each client, so
    RESET ALL returns to what that server connection started with.
    """
    state = _SESSIONS.get(conn)
    if state is None:
        return ""
    statements = []
    if state.pooled:
        statements += [
            f"SET application_name = {_quoted(APPLICATION_NAME)}",
            "SET client_encoding = 'UTF8'",
        ]
    if state.set_by_hand:
        statements.append(_set_statements(state, local=False))
    return ";\n".join(statements)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def fetch_all(
    conn: Connection,
    query: sql.Composed,
    params: tuple[Any, ...] | None = None,
) -> list[tuple[Any, ...]]:
    """Return the rows of a query that may wait for a table lock, under
    schemactl's lock_timeout.

    On a connection whose session lacks the settings (a transaction pooler:
    they cannot be SET there), they are sent with the query, as SET LOCAL in the
    same message: one implicit transaction, on one server connection.
    """
    state = _SESSIONS.get(conn)
    if state is None or state.in_force:
        with conn.cursor() as cur:
            return cur.execute(query, params).fetchall()
    local = _set_statements(state, local=True)
    with psycopg.ClientCursor(conn) as cur:
        cur.execute(sql.SQL(local + ";\n") + query, params)
        for _ in range(local.count("SET LOCAL")):
            cur.nextset()
        return cur.fetchall()


def describe_connection(conn: Connection) -> str:
    """Return user@host:port/dbname of an open connection (never the password)."""
    info = conn.info
    return f"{info.user}@{info.host}:{info.port}/{info.dbname}"


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
