"""The only module that talks to PostgreSQL (psycopg 3). No click, no rich.

Every psycopg error that leaves this module is translated into a SchemactlError with
the cause kept (``raise ... from exc``), except a connection error, whose text may
hold the conninfo: it is redacted into the message and not chained. Messages never
carry a password.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from schemactl.config import APPLICATION_NAME, Settings, TableName, mask_url, redact
from schemactl.core.history import (
    HISTORY_TABLE_DDL,
    history_insert_sql,
    qualified_name,
)
from schemactl.core.model import HistoryRow, LockHolder, MigrationFile
from schemactl.core.splitting import Statement, line_at, position_to_line_column
from schemactl.core.validation import ParsedSource
from schemactl.errors import ConnectError, LockTimeout, MigrationFailed, SchemactlError

LOCK_POLL_SECONDS = 0.2
# libpq rounds connect_timeout down to whole seconds and treats 1 as 2.
MIN_CONNECT_TIMEOUT = 2

Connection = psycopg.Connection[Any]


def describe_target(settings: Settings) -> str:
    """Return the connection target for messages, password masked."""
    if settings.database_url:
        return mask_url(settings.database_url)
    return "the server given by libpq defaults (PGHOST, PGPORT, PGDATABASE, ...)"


def connect(settings: Settings) -> Connection:
    """Open an autocommit connection named ``schemactl``.

    Raises:
        ConnectError: when the server is unreachable within the connect timeout or
            refuses the login; the message masks the password.
    """
    timeout = max(MIN_CONNECT_TIMEOUT, math.ceil(settings.connect_timeout))
    try:
        return psycopg.connect(
            settings.database_url or "",
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=timeout,
        )
    except psycopg.Error as exc:
        reason = redact(str(exc).strip(), settings.secrets)
        raise ConnectError(
            f"cannot connect to {describe_target(settings)}: {reason}"
        ) from None


def advisory_lock_key(database: str, table: TableName) -> int:
    """Return the signed 64-bit lock key for one history table in one database."""
    digest = hashlib.sha256(
        f"schemactl\0{database}\0{table.schema}\0{table.name}".encode()
    )
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


def _table_sql(table: TableName) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


@contextmanager
def advisory_lock(
    conn: Connection,
    table: TableName,
    *,
    timeout: float,
    on_wait: Callable[[LockHolder | None], None] | None = None,
) -> Iterator[None]:
    """Hold the session advisory lock for the history table while the block runs.

    Polls ``pg_try_advisory_lock``: a blocking ``pg_advisory_lock`` in a waiting
    runner deadlocks with ``CREATE INDEX CONCURRENTLY`` in the runner holding it
    (reported against Flyway and golang-migrate).

    Raises:
        LockTimeout: when the lock is still held by another session after timeout.
    """
    key = advisory_lock_key(conn.info.dbname, table)
    deadline = time.monotonic() + timeout
    while not _try_lock(conn, key):
        holder = find_lock_holder(conn, key)
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"timed out after {timeout:g} s waiting for the migration lock on "
                f"{table}{_describe_holder(holder)}",
                hint="another schemactl run is in progress; raise --lock-timeout "
                "to wait longer",
            )
        if on_wait is not None:
            on_wait(holder)
        time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _try_lock(conn: Connection, key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def find_lock_holder(conn: Connection, key: int) -> LockHolder | None:
    """Return the session that holds the advisory lock key, if it is visible."""
    # A bigint advisory key shows in pg_locks as classid (high 32 bits),
    # objid (low 32 bits) and objsubid = 1.
    unsigned = key & 0xFFFFFFFFFFFFFFFF
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
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
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


def history_table_exists(conn: Connection, table: TableName) -> bool:
    """Return True when the history table exists."""
    qualified = _table_sql(table).as_string(conn)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
    return bool(row and row[0])


def ensure_history_table(conn: Connection, table: TableName) -> None:
    """Create the history table (and its schema) unless they exist."""
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

    Raises:
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
    except psycopg.Error as exc:
        raise SchemactlError(
            f"cannot read history table {table}: {exc.diag.message_primary or exc}",
            hint="is --table naming a table that another tool created?",
        ) from exc


def apply_migration(
    conn: Connection, table: TableName, migration: MigrationFile, source: ParsedSource
) -> int:
    """Run one migration file and record it; return its duration in milliseconds.

    A transactional file and its history row commit together. A no-transaction file
    runs one statement at a time in autocommit: its row is written first with
    ``success = false`` and marked successful at the end, so a failure part-way stays
    visible until ``repair``. Call ``flush_commits`` once after the last migration.

    Raises:
        MigrationFailed: naming FILE:LINE:COLUMN of the failing statement.
    """
    started = time.perf_counter()
    if migration.no_transaction:
        _apply_no_transaction(conn, table, migration, source, started)
    else:
        _apply_transactional(conn, table, migration, source)
    return _elapsed_ms(started)


@dataclass(frozen=True, slots=True)
class _Message:
    """One simple-protocol message: a statement with bookkeeping glued around it."""

    text: str
    statement: Statement | None
    number: int = 0
    lead: int = 0


# Each migration commits asynchronously: a crash can lose whole, recent migrations
# together with their history rows, never half of one; flush_commits() makes them
# all durable before schemactl exits. This removes one WAL flush per migration.
_BEGIN = "BEGIN;\nSET LOCAL synchronous_commit TO off;\n"


def _transaction_messages(source: ParsedSource, record: str) -> list[_Message]:
    """Glue BEGIN onto the first statement and the history row and COMMIT onto
    the last, so a one-statement migration costs one round trip, as in psql.

    COPY FROM STDIN needs the copy protocol, so it is never glued to anything.
    """
    commit = f"{record};\nCOMMIT;\nRESET ALL"
    statements = source.statements
    if not statements:
        return [_Message(_BEGIN + commit, None)]
    messages = [
        _Message(s.text, s, number) for number, s in enumerate(statements, start=1)
    ]
    if statements[0].is_copy_from_stdin:
        messages.insert(0, _Message(_BEGIN, None))
    else:
        first = messages[0]
        messages[0] = replace(first, text=_BEGIN + first.text, lead=len(_BEGIN))
    if statements[-1].is_copy_from_stdin:
        messages.append(_Message(commit, None))
    else:
        # A newline first: the statement's text may end in a `--` comment.
        last = messages[-1]
        messages[-1] = replace(last, text=f"{last.text}\n;\n{commit}")
    return messages


def _apply_transactional(
    conn: Connection, table: TableName, migration: MigrationFile, source: ParsedSource
) -> None:
    record = history_insert_sql(
        qualified_name(table.schema, table.name),
        migration,
        _SERVER_ELAPSED_MS,
        success=True,
    )
    with conn.cursor() as cur:
        for message in _transaction_messages(source, record):
            try:
                _send(cur, message)
            except psycopg.Error as exc:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise _failure_of(exc, migration.path, source, message) from exc


# Measured by the server: now() is the start of the migration's transaction.
_SERVER_ELAPSED_MS = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer"


def _send(cur: psycopg.Cursor[Any], message: _Message) -> None:
    # File text is the one query that is not a literal: the user's SQL, sent
    # unchanged and without parameters (simple protocol, `%` not interpreted).
    if message.statement is not None and message.statement.is_copy_from_stdin:
        with cur.copy(message.text) as copy:
            copy.write(message.statement.copy_data or "")
        return
    cur.execute(message.text)


def _failure_of(
    exc: psycopg.Error, path: Path, source: ParsedSource, message: _Message
) -> SchemactlError:
    statement = message.statement
    position = exc.diag.statement_position
    in_statement = statement is not None and (
        not position or int(position) - 1 - message.lead < len(statement.text)
    )
    if statement is None or not in_statement:
        return SchemactlError(
            f"could not record {path.name} in the history table: "
            f"{exc.diag.message_primary or str(exc).strip()}"
        )
    return _migration_failed(
        exc, path, source, statement, message.number, True, lead=message.lead
    )


def flush_commits(conn: Connection) -> None:
    """Make every asynchronously committed migration durable.

    A synchronous commit that writes WAL waits until the WAL up to its commit
    record, and so every earlier commit, is flushed to disk.
    """
    conn.execute("SET synchronous_commit TO on")
    conn.execute("SELECT txid_current()")
    conn.execute("RESET synchronous_commit")


def _apply_no_transaction(
    conn: Connection,
    table: TableName,
    migration: MigrationFile,
    source: ParsedSource,
    started: float,
) -> None:
    _insert_history(conn, table, migration, execution_ms=0, success=False)
    _run_statements(conn, migration.path, source, transactional=False)
    conn.execute(
        sql.SQL(
            "UPDATE {} SET success = true, execution_ms = %s WHERE version = %s"
        ).format(_table_sql(table)),
        (_elapsed_ms(started), migration.version),
    )
    # Session settings must not leak into the next file (psql -f gives each its own).
    conn.execute("RESET ALL")


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


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


def _run_statements(
    conn: Connection, path: Path, source: ParsedSource, *, transactional: bool
) -> None:
    with conn.cursor() as cur:
        for number, statement in enumerate(source.statements, start=1):
            try:
                _send(cur, _Message(statement.text, statement, number))
            except psycopg.Error as exc:
                raise _migration_failed(
                    exc, path, source, statement, number, transactional
                ) from exc


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
    if diag.statement_position:
        # The position counts from the start of the message, which may carry
        # `lead` characters of BEGIN before the statement's own text.
        offset += int(diag.statement_position) - 1 - lead
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


def revert_migration(
    conn: Connection,
    table: TableName,
    migration: MigrationFile,
    down_path: Path,
    source: ParsedSource,
) -> int:
    """Run a down file and delete the migration's history row; return milliseconds.

    A transactional down file and the row's removal commit together. A
    no-transaction down file first marks the row failed, so a failure part-way
    leaves it visible until `repair`.

    Raises:
        MigrationFailed: naming FILE:LINE:COLUMN in the down file.
    """
    started = time.perf_counter()
    delete = sql.SQL("DELETE FROM {} WHERE version = %s").format(_table_sql(table))
    if source.no_transaction:
        conn.execute(
            sql.SQL("UPDATE {} SET success = false WHERE version = %s").format(
                _table_sql(table)
            ),
            (migration.version,),
        )
        _run_statements(conn, down_path, source, transactional=False)
        conn.execute(delete, (migration.version,))
    else:
        with conn.transaction():
            _run_statements(conn, down_path, source, transactional=True)
            conn.execute(delete, (migration.version,))
    conn.execute("RESET ALL")
    return _elapsed_ms(started)


def record_baseline(
    conn: Connection, table: TableName, migrations: list[MigrationFile]
) -> None:
    """Record migrations as applied without running them, all in one transaction."""
    with conn.transaction():
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
    with conn.transaction():
        for migration in realign:
            conn.execute(
                update, (migration.checksum, migration.name, migration.version)
            )
        for version in delete_versions:
            conn.execute(delete, (version,))
