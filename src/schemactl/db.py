"""The only module that talks to PostgreSQL (psycopg 3). No click, no rich.

Every psycopg error that leaves this module is translated into a SchemactlError
that names the phase it happened in (connect, lock, history, FILE:LINE:COLUMN,
record, flush), with the contract's exit code. A connection error is redacted and
not chained: its text may hold the conninfo. Messages never carry a password.

A migrating run uses two connections. The *worker* runs the files. The *lock
connection* holds the session advisory lock for the whole run, where nothing a
file does (``DISCARD ALL``, ``pg_advisory_unlock_all()``) can release it; it also
watches who blocks the worker's statement. Before a file commits, the worker
checks in the same transaction that the lock connection still holds the lock.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from schemactl.config import APPLICATION_NAME, Settings, TableName, mask_url, redact
from schemactl.core.history import (
    HISTORY_TABLE_DDL,
    history_insert_sql,
    qualified_name,
    quote_identifier,
)
from schemactl.core.model import (
    Blocker,
    HistoryRow,
    LockHolder,
    MigrationFile,
    ServerMessage,
    describe_blockers,
)
from schemactl.core.retry import backoff_delays
from schemactl.core.splitting import Statement, line_at, position_to_line_column
from schemactl.core.statements import ConcurrentIndex, concurrent_index
from schemactl.core.validation import ParsedSource
from schemactl.errors import (
    ConnectError,
    ConnectionLost,
    LockTimeout,
    MigrationFailed,
    MigrationLockLost,
    ReadOnlyTarget,
    SchemactlError,
    TableLockTimeout,
)
from schemactl.observer import MigrateObserver

LOCK_POLL_SECONDS = 0.2
# libpq rounds connect_timeout down to whole seconds and treats 1 as 2.
MIN_CONNECT_TIMEOUT = 2
# PostgreSQL 14+: how often a backend running a statement checks that its client
# is still there. A killed runner's statement (and its transaction) then ends
# within this interval instead of running on, holding its locks.
CLIENT_CHECK_INTERVAL_MS = 1000
LOCK_NOT_AVAILABLE = "55P03"
# Raised by the guard below when the migration lock is gone.
LOCK_LOST_SQLSTATE = "SCLCK"

Connection = psycopg.Connection[Any]
T = TypeVar("T")


# --- connections -------------------------------------------------------------


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
        reason = _reason(exc)
        if is_connection_lost(exc, conn):
            raise ConnectionLost(
                f"connection lost during {name}: {reason}", state=state
            ) from None
        raise SchemactlError(f"{name} failed: {reason}", state=state) from exc


def _reason(exc: psycopg.Error) -> str:
    text = exc.diag.message_primary or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else text


def _settle(conn: Connection) -> None:
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


# --- the migration lock -------------------------------------------------------


def advisory_lock_key(database: str, table: TableName) -> int:
    """Return the signed 64-bit lock key for one history table in one database."""
    digest = hashlib.sha256(
        f"schemactl\0{database}\0{table.schema}\0{table.name}".encode()
    )
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


def _lock_key_parts(key: int) -> tuple[int, int]:
    # A bigint advisory key shows in pg_locks as classid (high 32 bits),
    # objid (low 32 bits) and objsubid = 1.
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


@dataclass
class MigrationLock:
    """The migration lock, held by its own connection for the whole run."""

    conn: Connection
    key: int

    @property
    def pid(self) -> int:
        """Return the backend pid of the connection holding the lock."""
        return self.conn.info.backend_pid

    def guard_sql(self) -> str:
        """Return a statement that fails (SQLSTATE SCLCK) unless the lock is held.

        Sent in the same transaction as a file's history row, just before COMMIT:
        once the lock connection is gone another runner may hold the lock, so the
        file must not commit. Only integers are interpolated.
        """
        classid, objid = _lock_key_parts(self.key)
        return (
            "DO $schemactl_guard$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_locks "
            f"WHERE locktype = 'advisory' AND granted AND pid = {int(self.pid)} "
            f"AND classid = {classid} AND objid = {objid} AND objsubid = 1) THEN "
            "RAISE EXCEPTION 'the migration lock is no longer held' "
            f"USING ERRCODE = '{LOCK_LOST_SQLSTATE}'; END IF; END $schemactl_guard$"
        )


@contextmanager
def migration_lock(
    settings: Settings,
    worker: Connection,
    *,
    on_wait: Callable[[LockHolder | None], None] | None = None,
) -> Iterator[MigrationLock]:
    """Open the lock connection and hold the migration lock while the block runs.

    Polls ``pg_try_advisory_lock``: a blocking ``pg_advisory_lock`` in a waiting
    runner deadlocks with ``CREATE INDEX CONCURRENTLY`` in the runner holding it
    (reported against Flyway and golang-migrate). Closing the connection releases
    the lock, also when the run ends with an error.

    Raises:
        LockTimeout: when another session still holds the lock after the timeout.
        ConnectionLost: when the lock connection ends while waiting.
    """
    conn = connect(settings)
    try:
        with phase(
            conn, "the wait for the migration lock", state="nothing was changed"
        ):
            if conn.info.server_version >= 140000:
                # The lock connection idles for the whole run: a server-wide
                # idle_session_timeout must not end it (and release the lock).
                conn.execute("SET idle_session_timeout = 0")
            key = advisory_lock_key(worker.info.dbname, settings.table)
            wait_for_advisory_lock(
                conn,
                key,
                table=settings.table,
                timeout=settings.lock_timeout,
                on_wait=on_wait,
            )
        yield MigrationLock(conn, key)
        # Released explicitly: closing alone ends the backend, and the lock with
        # it, only some time after close() returns. A lock connection lost by now
        # has released it already.
        with suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        conn.close()


def wait_for_advisory_lock(
    conn: Connection,
    key: int,
    *,
    table: TableName,
    timeout: float,
    on_wait: Callable[[LockHolder | None], None] | None = None,
) -> None:
    """Poll until this connection holds the session advisory lock `key`.

    Raises:
        LockTimeout: when the lock is still held by another session after timeout.
    """
    deadline = time.monotonic() + timeout
    while not _try_lock(conn, key):
        holder = find_lock_holder(conn, key)
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"timed out after {timeout:g} s waiting for the migration lock on "
                f"{table}{_describe_holder(holder)}; nothing was changed",
                hint="another schemactl run is in progress; raise --lock-timeout "
                "to wait longer",
            )
        if on_wait is not None:
            on_wait(holder)
        time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _try_lock(conn: Connection, key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def find_lock_holder(conn: Connection, key: int) -> LockHolder | None:
    """Return the session that holds the advisory lock key, if it is visible."""
    classid, objid = _lock_key_parts(key)
    row = conn.execute(
        """
        SELECT a.pid, a.application_name, host(a.client_addr),
               extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.classid = %s AND l.objid = %s
          AND l.database = (SELECT oid FROM pg_database
                            WHERE datname = current_database())
        """,
        (classid, objid),
    ).fetchone()
    if row is None:
        return None
    return LockHolder(
        pid=row[0],
        application_name=row[1] or "",
        client_addr=row[2],
        held_seconds=float(row[3] or 0),
    )


def _describe_holder(holder: LockHolder | None) -> str:
    return "" if holder is None else f" (held by {holder.describe()})"


# --- who blocks a running statement ------------------------------------------

_BLOCKERS_SQL = """
SELECT pid, application_name, state, query,
       extract(epoch FROM now() - xact_start)::float8
FROM pg_stat_activity WHERE pid = ANY (pg_blocking_pids(%s)) ORDER BY pid
"""


class BlockerWatch:
    """Samples, from the lock connection, who blocks the worker's statement.

    A statement that gives up on a table lock (55P03) can no longer say who held
    it, so the watch looks while it waits: a thread wakes every `interval`
    seconds and, once the current statement has run that long, asks
    ``pg_blocking_pids``. Fast statements never cost a query. The main thread
    does not use the lock connection while the watch runs.
    """

    def __init__(
        self,
        conn: Connection,
        worker_pid: int,
        interval: float,
        on_blocked: Callable[[str, tuple[Blocker, ...], float], None],
    ) -> None:
        self._conn = conn
        self._worker_pid = worker_pid
        self._interval = interval
        self._on_blocked = on_blocked
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="schemactl-blocker-watch", daemon=True
        )
        self._describe: Callable[[], str] | None = None
        self._since = 0.0
        self.blockers: tuple[Blocker, ...] = ()

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def statement(self, describe: Callable[[], str]) -> Iterator[None]:
        """Mark a statement as running while the block runs; describe() names it
        (called only when it is blocked)."""
        self.blockers = ()
        self._since = time.monotonic()
        self._describe = describe
        try:
            yield
        finally:
            self._describe = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            describe = self._describe
            waited = time.monotonic() - self._since
            if describe is None or waited < self._interval:
                continue
            try:
                rows = self._conn.execute(_BLOCKERS_SQL, (self._worker_pid,)).fetchall()
            except psycopg.Error:
                return  # the lock connection is gone: the guard reports it
            blockers = tuple(
                Blocker(r[0], r[1] or "", r[2] or "unknown", r[3] or "", r[4])
                for r in rows
            )
            if blockers and describe is self._describe:
                changed = {b.pid for b in blockers} != {b.pid for b in self.blockers}
                self.blockers = blockers
                if changed:
                    self._on_blocked(describe(), blockers, waited)


def watch_interval(table_lock_timeout: float) -> float:
    """Sample a few times within the lock timeout; once a second without one."""
    if table_lock_timeout <= 0:
        return 1.0
    return max(0.05, min(1.0, table_lock_timeout / 4))


# --- the history table ---------------------------------------------------------


def _table_sql(table: TableName) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


def history_table_exists(conn: Connection, table: TableName) -> bool:
    """Return True when the history table exists."""
    qualified = _table_sql(table).as_string(conn)
    with phase(conn, "the history check", state="nothing was changed"):
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (qualified,)
        ).fetchone()
    return bool(row and row[0])


def ensure_history_table(conn: Connection, table: TableName) -> None:
    """Create the history table (and its schema) unless the table exists.

    No DDL at all when it exists: a deploy role may read and write the table
    without CREATE on its schema (PostgreSQL 15's default for ``public``).
    """
    if history_table_exists(conn, table):
        return
    with phase(conn, "creating the history table", state="nothing was applied"):
        schema_exists = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (table.schema,)
        ).fetchone()
        if schema_exists is None:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(table.schema)
                )
            )
        conn.execute(history_table_ddl(table))


def history_table_ddl(table: TableName) -> sql.Composed:
    """Return the idempotent CREATE TABLE of the history table."""
    return sql.SQL(HISTORY_TABLE_DDL).format(_table_sql(table))


def read_history(conn: Connection, table: TableName) -> list[HistoryRow]:
    """Return every history row, ascending; a missing table reads as no rows.

    Waits for a lock on the table no longer than the table lock timeout.

    Raises:
        TableLockTimeout: when another session holds the table locked (exit 3).
        SchemactlError: when the table exists but is not a schemactl history table.
    """
    if not history_table_exists(conn, table):
        return []
    query = sql.SQL(
        "SELECT version, name, checksum, applied_at, applied_by, execution_ms, success "
        "FROM {} ORDER BY version"
    ).format(_table_sql(table))
    try:
        with conn.cursor() as cur:
            return [HistoryRow(*row) for row in cur.execute(query)]
    except psycopg.errors.LockNotAvailable:
        holders = _table_lock_holders(conn, table)
        raise TableLockTimeout(
            f"timed out reading the history table {table}: it is locked by "
            f"{describe_blockers(holders)}",
            hint="raise --table-lock-timeout (0: wait without limit)",
            state="nothing was changed",
        ) from None
    except psycopg.Error as exc:
        if is_connection_lost(exc, conn):
            raise ConnectionLost(
                f"connection lost while reading the history table: {_reason(exc)}",
                state="nothing was changed",
            ) from None
        raise SchemactlError(
            f"cannot read history table {table}: {_reason(exc)}",
            hint="is --table naming a table that another tool created?",
        ) from exc


def _table_lock_holders(conn: Connection, table: TableName) -> tuple[Blocker, ...]:
    qualified = _table_sql(table).as_string(conn)
    rows = conn.execute(
        """
        SELECT DISTINCT a.pid, a.application_name, a.state, a.query,
               extract(epoch FROM now() - a.xact_start)::float8
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.relation = to_regclass(%s) AND l.granted
          AND l.pid <> pg_backend_pid()
        ORDER BY a.pid
        """,
        (qualified,),
    ).fetchall()
    return tuple(Blocker(r[0], r[1] or "", r[2] or "", r[3] or "", r[4]) for r in rows)


def history_row_success(
    conn: Connection, table: TableName, version: int
) -> bool | None:
    """Return the row's success flag for version, or None when it has no row."""
    query = sql.SQL("SELECT success FROM {} WHERE version = %s").format(
        _table_sql(table)
    )
    with phase(conn, "the history check", state="unknown"):
        row = conn.execute(query, (version,)).fetchone()
    return None if row is None else bool(row[0])


def record_baseline(
    conn: Connection, table: TableName, migrations: list[MigrationFile]
) -> None:
    """Record migrations as applied without running them, all in one transaction."""
    with phase(conn, "record", state="nothing was recorded"), conn.transaction():
        for migration in migrations:
            _insert_history(conn, table, migration, execution_ms=0, success=True)


def realign_checksums(
    conn: Connection,
    table: TableName,
    realign: list[MigrationFile],
    delete_versions: list[int],
) -> None:
    """Store the files' checksums and names, and delete failed rows, atomically."""
    update = sql.SQL(
        "UPDATE {} SET checksum = %s, name = %s WHERE version = %s"
    ).format(_table_sql(table))
    delete = sql.SQL("DELETE FROM {} WHERE version = %s").format(_table_sql(table))
    with phase(conn, "record", state="the history was not changed"), conn.transaction():
        for migration in realign:
            conn.execute(
                update, (migration.checksum, migration.name, migration.version)
            )
        for version in delete_versions:
            conn.execute(delete, (version,))


def _insert_history(
    conn: Connection,
    table: TableName,
    migration: MigrationFile,
    *,
    execution_ms: int,
    success: bool,
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (version, name, checksum, execution_ms, success) "
            "VALUES (%s, %s, %s, %s, %s)"
        ).format(_table_sql(table)),
        (migration.version, migration.name, migration.checksum, execution_ms, success),
    )


def flush_commits(conn: Connection, settings: Settings) -> None:
    """Make every asynchronously committed migration durable.

    A synchronous commit that writes WAL waits until the WAL up to its commit
    record, and so every earlier commit, is flushed to disk. Any connection will
    do: when the worker is gone, a new one flushes.

    Raises:
        ConnectionLost: when no connection can be had to flush.
    """
    flush = "BEGIN; SET LOCAL synchronous_commit TO on; SELECT txid_current(); COMMIT"
    if not (conn.closed or conn.broken):
        with phase(conn, "flush", state="earlier migrations may not be durable yet"):
            conn.execute(flush)
        return
    try:
        with connect(settings) as fresh:
            fresh.execute(flush)
    except (psycopg.Error, SchemactlError):
        raise ConnectionLost(
            "connection lost, and no new connection could be made to make the "
            "applied migrations durable",
            state="migrations committed in this run survive unless the server "
            "crashed; run `schemactl status` when it is reachable",
        ) from None


# --- running files --------------------------------------------------------------

# Everything a file can leave in its session, reset as a new `psql -f` session
# would find it. This is DISCARD ALL taken apart: DISCARD ALL cannot run inside a
# transaction block, and these pieces can, so they commit with the file. The
# migration lock lives on another connection, out of reach of
# pg_advisory_unlock_all().
_RESET_IDENTITY = "RESET SESSION AUTHORIZATION;\nRESET ROLE"
_RESET_SESSION = (
    "CLOSE ALL;\nDEALLOCATE ALL;\nUNLISTEN *;\nSELECT pg_advisory_unlock_all();\n"
    "DISCARD PLANS;\nDISCARD TEMP;\nDISCARD SEQUENCES;\nRESET ALL"
)
_BEGIN = "BEGIN;\n"
# Measured by the server: now() is the start of the migration's transaction.
_SERVER_ELAPSED_MS = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer"


@dataclass(frozen=True, slots=True)
class _Message:
    """One simple-protocol message: a statement, maybe with BEGIN glued before it."""

    text: str
    statement: Statement | None
    number: int = 0
    lead: int = 0


@dataclass
class FileProgress:
    """How far the file being run has got; read after a failure or a signal."""

    migration: MigrationFile
    path: Path
    total: int
    transactional: bool
    source: ParsedSource | None = None
    statement_number: int = 0
    statement: Statement | None = None

    def at(self, number: int, statement: Statement | None) -> None:
        """Note that statement `number` (0: BEGIN alone) is about to run."""
        self.statement_number = number
        self.statement = statement

    def location(self) -> str:
        """Return FILE:LINE:COLUMN of the current statement (computed on demand:
        counting lines up to every statement would make big files quadratic)."""
        if self.source is None or self.statement is None:
            return str(self.path)
        line, column = position_to_line_column(self.source.text, self.statement.offset)
        return f"{self.path}:{line}:{column}"


class _LockWaitTimedOut(Exception):
    """One attempt gave up on a table lock; the caller retries or gives up."""

    def __init__(self, location: str, blockers: tuple[Blocker, ...]) -> None:
        super().__init__(location)
        self.location = location
        self.blockers = blockers


@dataclass
class MigrationSession:
    """Runs files on the worker connection while the lock connection holds the
    migration lock; reports progress to the observer."""

    conn: Connection
    settings: Settings
    lock: MigrationLock
    observer: MigrateObserver = field(default_factory=MigrateObserver)
    progress: FileProgress | None = None
    _watch: BlockerWatch | None = None
    _session_sql: str = ""
    _guard_sql: str = ""

    @property
    def table(self) -> TableName:
        """Return the history table."""
        return self.settings.table

    @contextmanager
    def running(self) -> Iterator[MigrationSession]:
        """Watch for blockers and show server notices while the block runs."""
        self._session_sql = session_settings_sql(self.conn, self.settings)
        self._guard_sql = self.lock.guard_sql()
        self.conn.add_notice_handler(self._on_notice)
        watch = BlockerWatch(
            self.lock.conn,
            self.conn.info.backend_pid,
            watch_interval(self.settings.table_lock_timeout),
            self.observer.statement_blocked,
        )
        with watch:
            self._watch = watch
            try:
                yield self
            finally:
                self._watch = None
                self.conn.remove_notice_handler(self._on_notice)

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        progress = self.progress
        location = None
        if progress is not None and progress.statement is not None:
            location = progress.location()
        self.observer.server_message(
            ServerMessage(
                diag.severity or "NOTICE", diag.message_primary or "", location
            )
        )

    # -- apply and revert --

    def apply(self, migration: MigrationFile, source: ParsedSource) -> int:
        """Run one migration file and record it; return its duration in ms.

        A transactional file and its history row commit together; on a table
        lock timeout the file is rolled back and retried. A no-transaction file
        runs one statement at a time: its row is written first with
        ``success = false`` and marked successful at the end. Call `flush` once
        after the last migration.

        Raises:
            MigrationFailed: naming FILE:LINE:COLUMN of the failing statement.
            TableLockTimeout: when a lock wait outlasted every retry (exit 3).
            MigrationLockLost, ConnectionLost: exit 3, file not committed.
        """
        started = time.perf_counter()
        self.progress = FileProgress(
            migration,
            migration.path,
            len(source.statements),
            transactional=not migration.no_transaction,
            source=source,
        )
        if migration.no_transaction:
            self._insert_failed_row(migration)
            self._run_no_transaction(source)
            update = sql.SQL(
                "UPDATE {} SET success = true, execution_ms = {} WHERE version = {}"
            ).format(
                _table_sql(self.table),
                sql.Literal(_elapsed_ms(started)),
                sql.Literal(migration.version),
            )
            self._record(update.as_string(self.conn), commit=False)
        else:
            record = history_insert_sql(
                qualified_name(self.table.schema, self.table.name),
                migration,
                _SERVER_ELAPSED_MS,
                success=True,
            )
            self._with_retries(lambda: self._run_transaction(source, record))
        self.progress = None
        return _elapsed_ms(started)

    def revert(
        self, migration: MigrationFile, down_path: Path, source: ParsedSource
    ) -> int:
        """Run a down file and delete the migration's history row; return ms.

        A transactional down file and the row's removal commit together. A
        no-transaction down file first marks the row failed, so a failure
        part-way leaves it visible until `repair`.

        Raises:
            MigrationFailed: naming FILE:LINE:COLUMN in the down file.
            TableLockTimeout, MigrationLockLost, ConnectionLost: as for apply.
        """
        started = time.perf_counter()
        table = _table_sql(self.table)
        delete = sql.SQL("DELETE FROM {} WHERE version = {}").format(
            table, sql.Literal(migration.version)
        )
        self.progress = FileProgress(
            migration,
            down_path,
            len(source.statements),
            transactional=not source.no_transaction,
            source=source,
        )
        if source.no_transaction:
            with phase(self.conn, "record", state="nothing of the down file ran"):
                self.conn.execute(
                    sql.SQL("UPDATE {} SET success = false WHERE version = %s").format(
                        table
                    ),
                    (migration.version,),
                )
            self._run_no_transaction(source)
            self._record(delete.as_string(self.conn), commit=False)
        else:
            record = delete.as_string(self.conn)
            self._with_retries(lambda: self._run_transaction(source, record))
        self.progress = None
        return _elapsed_ms(started)

    def flush(self) -> None:
        """Make this run's migrations durable (see `flush_commits`)."""
        flush_commits(self.conn, self.settings)

    def outcome(self, version: int) -> bool | None:
        """Return the history row's success flag for version (None: no row),
        from the worker or, when it is gone, a new connection."""
        if not (self.conn.closed or self.conn.broken):
            return history_row_success(self.conn, self.table, version)
        with connect(self.settings) as fresh:
            return history_row_success(fresh, self.table, version)

    # -- one transactional attempt --

    def _run_transaction(self, source: ParsedSource, record: str) -> None:
        progress = self.progress
        assert progress is not None
        try:
            with self.conn.cursor() as cur:
                for message in _statement_messages(source):
                    progress.at(message.number, message.statement)
                    self._send_statement(cur, message, source)
            self._record(record, commit=True)
        except BaseException:
            _settle(self.conn)
            raise

    def _record(self, record: str, *, commit: bool) -> None:
        """Send the bookkeeping message: reset the identity, check the lock, write
        the row, reset the session; then COMMIT in a transactional file.

        It is its own message, sent only once every statement's result is back,
        so a runner that dies mid-file never has COMMIT waiting on the server,
        and an error here is never blamed on the file's last statement.
        """
        progress = self.progress
        assert progress is not None
        progress.at(progress.statement_number, None)
        parts = [_RESET_IDENTITY, self._guard_sql, record, _RESET_SESSION]
        parts.append(self._session_sql)
        if commit:
            parts.append("SET LOCAL synchronous_commit TO off;\nCOMMIT")
        try:
            self.conn.execute(";\n".join(parts))
        except psycopg.Error as exc:
            raise self._record_failed(exc) from None

    def _record_failed(self, exc: psycopg.Error) -> SchemactlError:
        progress = self.progress
        assert progress is not None
        name = progress.path.name
        if progress.transactional:
            state = f"{name} was rolled back"
        else:
            state = f"{name} ran; its history row stays marked failed"
        if is_connection_lost(exc, self.conn):
            return ConnectionLost(
                f"connection lost while recording {name}: {_reason(exc)}",
                state=state,
            )
        if exc.sqlstate == LOCK_NOT_AVAILABLE:
            return TableLockTimeout(
                f"timed out waiting for a lock on the history table {self.table} "
                f"to record {name}",
                state=state,
            )
        if exc.sqlstate == LOCK_LOST_SQLSTATE:
            return MigrationLockLost(
                f"the migration lock was lost before {name} could be recorded: its "
                "connection ended, so another runner may hold it now",
                state=state,
            )
        return SchemactlError(
            f"could not record {name} in the history table {self.table}: "
            f"{_reason(exc)}",
            state=state,
        )

    def _send_statement(
        self, cur: psycopg.Cursor[Any], message: _Message, source: ParsedSource
    ) -> None:
        """Send one statement; translate its failure."""
        progress = self.progress
        assert progress is not None
        assert self._watch is not None
        try:
            with self._watch.statement(progress.location):
                _send(cur, message)
        except psycopg.Error as exc:
            self._raise_statement_error(exc, message, source)

    def _raise_statement_error(
        self, exc: psycopg.Error, message: _Message, source: ParsedSource
    ) -> None:
        progress = self.progress
        assert progress is not None
        name = progress.path.name
        location = progress.location()
        if is_connection_lost(exc, self.conn):
            state = (
                f"{name} was not committed"
                if progress.transactional
                else no_transaction_state(progress)
            )
            raise ConnectionLost(
                f"connection lost while running {location}: {_reason(exc)}",
                state=state,
            ) from None
        if exc.sqlstate == LOCK_NOT_AVAILABLE:
            assert self._watch is not None
            raise _LockWaitTimedOut(location, self._watch.blockers) from exc
        if message.statement is None:
            raise SchemactlError(f"starting {name} failed: {_reason(exc)}") from exc
        raise _migration_failed(
            exc,
            progress.path,
            source,
            message.statement,
            message.number,
            progress.transactional,
            lead=message.lead,
        ) from exc

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        """Run attempt; after a table lock timeout, wait and run it again."""
        delays = backoff_delays(
            self.settings.table_lock_retries, self.settings.table_lock_backoff
        )
        for number, delay in enumerate(delays, start=1):
            try:
                return attempt()
            except _LockWaitTimedOut as wait:
                self.observer.lock_retry(
                    wait.location, wait.blockers, number, len(delays), delay
                )
                time.sleep(delay)
        try:
            return attempt()
        except _LockWaitTimedOut as wait:
            raise self._lock_wait_exhausted(wait, len(delays)) from None

    def _lock_wait_exhausted(
        self, wait: _LockWaitTimedOut, retries: int
    ) -> TableLockTimeout:
        progress = self.progress
        assert progress is not None
        name = progress.path.name
        state = (
            f"nothing of {name} was applied"
            if progress.transactional
            else no_transaction_state(progress)
        )
        tries = "once" if retries == 0 else f"{retries + 1} times"
        return TableLockTimeout(
            f"{wait.location}: gave up waiting for a table lock "
            f"({self.settings.table_lock_timeout:g} s, tried {tries}); blocked by "
            f"{describe_blockers(wait.blockers)}",
            hint="end the blocking session, or raise --table-lock-timeout / "
            "--table-lock-retries",
            state=state,
        )

    # -- no-transaction files --

    def _insert_failed_row(self, migration: MigrationFile) -> None:
        with phase(self.conn, "record", state=f"nothing of {migration.label} ran"):
            _insert_history(
                self.conn, self.table, migration, execution_ms=0, success=False
            )

    def _run_no_transaction(self, source: ParsedSource) -> None:
        progress = self.progress
        assert progress is not None
        with self.conn.cursor() as cur:
            for number, statement in enumerate(source.statements, start=1):
                progress.at(number, statement)
                message = _Message(statement.text, statement, number)
                index = concurrent_index(statement)
                self._with_retries(
                    partial(self._run_autocommit, cur, message, source, index)
                )

    def _run_autocommit(
        self,
        cur: psycopg.Cursor[Any],
        message: _Message,
        source: ParsedSource,
        index: ConcurrentIndex | None,
    ) -> None:
        """Run one statement of a no-transaction file: before it, and after it
        fails, drop the INVALID index a failed concurrent build left behind (a
        re-run would trip over it, or skip it with IF NOT EXISTS)."""
        if index is not None:
            self._drop_invalid_index(index)
        try:
            self._send_statement(cur, message, source)
        except BaseException:
            if index is not None and not (self.conn.closed or self.conn.broken):
                _settle(self.conn)
                self._drop_invalid_index(index)
            raise

    def _drop_invalid_index(self, index: ConcurrentIndex) -> None:
        progress = self.progress
        assert progress is not None
        table = (
            quote_identifier(index.table)
            if index.table_schema is None
            else qualified_name(index.table_schema, index.table)
        )
        state = no_transaction_state(progress)
        with phase(self.conn, "dropping an INVALID index", state=state):
            found = self.conn.execute(
                """
                SELECT i.indexrelid::regclass::text FROM pg_index i
                JOIN pg_class c ON c.oid = i.indexrelid
                WHERE NOT i.indisvalid AND c.relname = %s
                  AND i.indrelid = to_regclass(%s)
                """,
                (index.name, table),
            ).fetchone()
            if found is None:
                return
            # found[0] is regclass output: already quoted and qualified as needed.
            self.conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {found[0]}")
        self.observer.invalid_index_dropped(progress.location(), found[0])


def no_transaction_state(progress: FileProgress) -> str:
    """Say how far a no-transaction file got: what ran stays, the row is failed."""
    name, number = progress.path.name, progress.statement_number
    done = number - 1
    if done <= 0:
        ran = "no statement of it ran"
    elif done == 1:
        ran = "statement 1 ran and stays applied"
    else:
        ran = f"statements 1-{done} ran and stay applied"
    return (
        f"{name} (no-transaction) stopped at statement {number} of "
        f"{progress.total}: {ran}; its history row is marked failed until "
        "`schemactl repair`"
    )


def _statement_messages(source: ParsedSource) -> list[_Message]:
    """Return one message per statement, BEGIN glued onto the first, so a
    one-statement migration costs one round trip before its bookkeeping.

    COPY FROM STDIN needs the copy protocol, so BEGIN is then sent alone.
    """
    messages = [
        _Message(s.text, s, number) for number, s in enumerate(source.statements, 1)
    ]
    first = messages[0] if messages else None
    if first is None or (first.statement and first.statement.is_copy_from_stdin):
        return [_Message(_BEGIN, None), *messages]
    messages[0] = replace(first, text=_BEGIN + first.text, lead=len(_BEGIN))
    return messages


def _send(cur: psycopg.Cursor[Any], message: _Message) -> None:
    # File text is the one query that is not a literal: the user's SQL, sent
    # unchanged and without parameters (simple protocol, `%` not interpreted).
    if message.statement is not None and message.statement.is_copy_from_stdin:
        with cur.copy(message.text) as copy:
            copy.write(message.statement.copy_data or "")
        return
    cur.execute(message.text)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _migration_failed(
    exc: psycopg.Error,
    path: Path,
    source: ParsedSource,
    statement: Statement,
    number: int,
    transactional: bool,
    *,
    lead: int = 0,
) -> MigrationFailed:
    diag = exc.diag
    offset = statement.offset
    position = diag.statement_position
    if position and 0 <= int(position) - 1 - lead < len(statement.text):
        # The position counts from the start of the message, which may carry
        # `lead` characters of BEGIN before the statement's own text.
        offset += int(position) - 1 - lead
    line, column = position_to_line_column(source.text, offset)
    detail = "\n".join(part for part in (diag.message_detail, diag.context) if part)
    return MigrationFailed(
        diag.message_primary or str(exc).strip(),
        path=path,
        line=line,
        column=column,
        statement_number=number,
        statements_done=number - 1,
        sqlstate=diag.sqlstate,
        detail=detail or None,
        hint=diag.message_hint,
        source_line=line_at(source.text, line),
        transactional=transactional,
    )
