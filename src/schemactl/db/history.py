"""The history table: create it only when missing, read it without waiting
forever, record baselines and repairs, and flush this run's commits."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from schemactl.config import Settings, TableName
from schemactl.core.history import (
    APPEND_ONLY_FUNCTION_DDL,
    APPEND_ONLY_TRIGGERS,
    HISTORY_TABLE_DDL,
    LAYOUT_COMMENT,
    LOG_TABLE_DDL,
    guard_function_name,
    log_table_name,
    qualified_name,
)
from schemactl.core.model import (
    Blocker,
    HistoryRow,
    LogRow,
    MigrationFile,
    describe_blockers,
)
from schemactl.db.connection import (
    Connection,
    connect,
    fetch_all,
    is_connection_lost,
    phase,
    reason_of,
    select_row,
)
from schemactl.errors import (
    EXIT_UNAVAILABLE,
    ConnectionLost,
    SchemactlError,
    TableLockTimeout,
)


def table_sql(table: TableName) -> sql.Identifier:
    return sql.Identifier(table.schema, table.name)


def history_table_exists(conn: Connection, table: TableName) -> bool:
    """Return True when the history table exists."""
    qualified = table_sql(table).as_string(conn)
    with phase(conn, "the history check", state="nothing was changed"):
        # Often a connection's first query: its session check rides along.
        (exists,) = select_row(conn, "to_regclass(%s) IS NOT NULL", (qualified,))
    return bool(exists)


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
    return sql.SQL(HISTORY_TABLE_DDL).format(table_sql(table))


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
    ).format(table_sql(table))
    try:
        return list(map(HistoryRow._make, fetch_all(conn, query)))
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
                f"connection lost while reading the history table: {reason_of(exc)}",
                state="nothing was changed",
            ) from None
        raise SchemactlError(
            f"cannot read history table {table}: {reason_of(exc)}",
            hint="is --table naming a table that another tool created?",
        ) from exc


def _table_lock_holders(conn: Connection, table: TableName) -> tuple[Blocker, ...]:
    qualified = table_sql(table).as_string(conn)
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


def record_baseline(
    conn: Connection,
    table: TableName,
    migrations: list[MigrationFile],
    *,
    audit: bool = False,
) -> None:
    """Record migrations as applied without running them, all in one transaction
    (with their audit log rows, when the log exists)."""
    with phase(conn, "record", state="nothing was recorded"), conn.transaction():
        for migration in migrations:
            insert_history(conn, table, migration, execution_ms=0, success=True)
            if audit:
                _log(conn, table, "baseline", migration.version, migration.name,
                     after=migration.checksum, execution_ms=0)  # fmt: skip


def realign_checksums(
    conn: Connection,
    table: TableName,
    realign: list[MigrationFile],
    delete_versions: list[int],
    *,
    audit: bool = False,
) -> None:
    """Store the files' checksums and names, and delete failed rows, atomically
    (each change with its audit log row, when the log exists)."""
    history = table_sql(table)
    update = sql.SQL(
        "UPDATE {} SET checksum = %s, name = %s WHERE version = %s "
        "RETURNING (SELECT checksum FROM {} WHERE version = %s)"
    ).format(history, history)
    delete = sql.SQL(
        "DELETE FROM {} WHERE version = %s RETURNING name, checksum"
    ).format(history)
    with phase(conn, "record", state="the history was not changed"), conn.transaction():
        for m in realign:
            row = conn.execute(
                update, (m.checksum, m.name, m.version, m.version)
            ).fetchone()
            if audit:
                before = row[0] if row else None
                _log(conn, table, "repair", m.version, m.name,
                     before=before, after=m.checksum)  # fmt: skip
        for version in delete_versions:
            gone = conn.execute(delete, (version,)).fetchone()
            if audit and gone:
                _log(conn, table, "repair-delete", version, gone[0], before=gone[1])


def _log(
    conn: Connection,
    table: TableName,
    action: str,
    version: int,
    name: str,
    *,
    before: str | None = None,
    after: str | None = None,
    execution_ms: int | None = None,
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (history_table, action, version, name, "
            "checksum_before, checksum_after, execution_ms, outcome) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'ok')"
        ).format(table_sql(log_table(table))),
        (
            qualified_name(table.schema, table.name),
            action,
            version,
            name,
            before,
            after,
            execution_ms,
        ),
    )


def insert_history(
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
        ).format(table_sql(table)),
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


# --- the audit log (layout 2) --------------------------------------------------


def log_table(table: TableName) -> TableName:
    """Return the audit log of a history table: SCHEMA.NAME_log."""
    return TableName(table.schema, log_table_name(table.name))


def audit_log_exists(conn: Connection, table: TableName) -> bool:
    """Return True when the history table's audit log exists."""
    return history_table_exists(conn, log_table(table))


@dataclass(frozen=True, slots=True)
class AuditLogState:
    """Whether rows can be written to the audit log, and what to say about it."""

    writable: bool
    warning: str | None = None


def ensure_audit_log(conn: Connection, table: TableName) -> AuditLogState:
    """Make sure the history table's audit log exists and can be written:
    create it when missing (the upgrade from layout 1, which had the history
    table only), check it when present.

    A role without the rights keeps working without a log (the least-privilege
    promise); the warning says so.

    Raises:
        ConnectionLost: when the connection ends meanwhile.
    """
    log = log_table(table)
    with phase(conn, "checking the audit log", state="nothing was applied"):
        if history_table_exists(conn, log):
            return _check_audit_log(conn, log)
        may_create = conn.execute(
            "SELECT has_schema_privilege(%s, 'CREATE')", (table.schema,)
        ).fetchone()
        if not (may_create and may_create[0]):
            return AuditLogState(
                False,
                f"this role may not create tables in schema {table.schema}: no "
                f"audit log ({log}) is kept; an owner of the schema can create "
                "it by running any migrate, rollback, repair or baseline once",
            )
        return _create_audit_log(conn, table, log)


def _create_audit_log(
    conn: Connection, table: TableName, log: TableName
) -> AuditLogState:
    function = sql.Identifier(table.schema, guard_function_name(table.name))
    names = {"log": table_sql(log), "function": function}
    try:
        with conn.transaction():
            conn.execute(sql.SQL(APPEND_ONLY_FUNCTION_DDL).format(**names))
            conn.execute(sql.SQL(LOG_TABLE_DDL).format(**names))
            for trigger in APPEND_ONLY_TRIGGERS:
                conn.execute(sql.SQL(trigger).format(**names))
            conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    names["log"], sql.Literal(LAYOUT_COMMENT)
                )
            )
    except psycopg.Error as exc:
        if is_connection_lost(exc, conn):
            raise
        return AuditLogState(
            False,
            f"the audit log {log} could not be created ({reason_of(exc)}): "
            "none is kept",
        )
    return AuditLogState(True)


_LOG_CHECK = """
SELECT obj_description(%(log)s::regclass, 'pg_class'),
       has_table_privilege(%(log)s, 'INSERT'),
       (SELECT count(*) FROM pg_trigger
        WHERE tgrelid = %(log)s::regclass AND tgname LIKE 'schemactl_%%'
          AND tgenabled <> 'D')
"""


def _check_audit_log(conn: Connection, log: TableName) -> AuditLogState:
    qualified = table_sql(log).as_string(conn)
    row = conn.execute(_LOG_CHECK, {"log": qualified}).fetchone()
    comment, may_write, guards = row if row else (None, False, 0)
    if not str(comment or "").startswith("schemactl layout "):
        return AuditLogState(
            False,
            f"{log} exists but is not a schemactl audit log (no layout comment): "
            "no audit log is kept; rename that table, or use another --table",
        )
    if not may_write:
        # A deploy role granted the history table only: it keeps working (the
        # least-privilege promise), and says what it does not record.
        return AuditLogState(
            False,
            f"this role may not write the audit log {log}: this run is not "
            f"logged; grant it INSERT, SELECT on {log}",
        )
    if guards < len(APPEND_ONLY_TRIGGERS):
        return AuditLogState(
            True,
            f"the audit log {log} is no longer append-only: its schemactl "
            "triggers were disabled or dropped",
        )
    return AuditLogState(True)


def read_log(conn: Connection, table: TableName, limit: int | None) -> list[LogRow]:
    """Return the newest `limit` audit log rows of this history table (all:
    None), oldest first. The log must exist (see audit_log_exists)."""
    query = sql.SQL(
        "SELECT * FROM (SELECT id, at, history_table, action, version, name, "
        "checksum_before, "
        "checksum_after, execution_ms, outcome, login_role, application_name, "
        "host(client_addr) FROM {} WHERE history_table = %s ORDER BY id DESC {}) "
        "AS newest ORDER BY id"
    ).format(
        table_sql(log_table(table)),
        sql.SQL("LIMIT {}").format(sql.Literal(limit)) if limit else sql.SQL(""),
    )
    history = qualified_name(table.schema, table.name)
    try:
        with phase(conn, "reading the audit log", state="nothing was changed"):
            return list(map(LogRow._make, fetch_all(conn, query, (history,))))
    except SchemactlError as error:
        if isinstance(error.__cause__, psycopg.errors.LockNotAvailable):
            # As for the history table: exit 3, naming who holds the lock.
            holders = _table_lock_holders(conn, log_table(table))
            raise TableLockTimeout(
                f"timed out reading the audit log {log_table(table)}: it is "
                f"locked by {describe_blockers(holders)}",
                hint="raise --table-lock-timeout (0: wait without limit)",
                state="nothing was changed",
            ) from None
        if not isinstance(error.__cause__, psycopg.errors.InsufficientPrivilege):
            raise
        error.exit_code = EXIT_UNAVAILABLE
        error.hint = f"grant this role SELECT on {log_table(table)}"
        raise
