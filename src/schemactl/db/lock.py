"""The migration lock, held by a connection of its own for the whole run, and the
watch on who blocks the worker's running statement."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import psycopg
from psycopg import sql

from schemactl.config import Settings, TableName
from schemactl.core.model import Blocker, LockHolder
from schemactl.db.connection import (
    Connection,
    connect,
    phase,
    select_row,
    server_database,
    server_pid,
)
from schemactl.errors import LockTimeout

LOCK_POLL_SECONDS = 0.2
# In the error MigrationLock.guard_sql() raises when the migration lock is gone.
LOCK_LOST_MARKER = "schemactl: the migration lock is no longer held"


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
        """Return the server backend pid of the connection holding the lock
        (through a pooler, not the one libpq was given)."""
        return server_pid(self.conn)

    def guard_sql(self) -> str:
        """Return a statement that fails unless the lock connection holds the lock.

        Sent in the same transaction as a file's history row, just before COMMIT:
        once the lock connection is gone another runner may hold the lock, so the
        file must not commit. Plain SQL rather than a DO block, which costs
        three times as much per file: the failing branch casts a text that is
        not a number (not a constant, so it is evaluated only when taken), and
        `is_lock_lost` recognises that error.
        """
        classid, objid = _lock_key_parts(self.key)
        guard = sql.SQL(
            "SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid = {} "
            "AND classid = {} AND objid = {} AND objsubid = 1) "
            "THEN 0 ELSE ({} || pg_catalog.pg_backend_pid())::int END"
        ).format(
            sql.Literal(self.pid),
            sql.Literal(classid),
            sql.Literal(objid),
            sql.Literal(f"{LOCK_LOST_MARKER} "),
        )
        return guard.as_string(self.conn)


def is_lock_lost(exc: psycopg.Error) -> bool:
    """Return True for the error of MigrationLock.guard_sql()."""
    return exc.sqlstate == "22P02" and LOCK_LOST_MARKER in (
        exc.diag.message_primary or ""
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
    conn = connect(settings, like=worker)
    try:
        with phase(
            conn, "the wait for the migration lock", state="nothing was changed"
        ):
            # The server's name of the database: a pooler's name for it may
            # differ, and runners through it and direct ones share one lock.
            key = advisory_lock_key(server_database(worker), settings.table)
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
    # The first try carries the lock connection's session check.
    (locked,) = select_row(conn, "pg_try_advisory_lock(%s)", (key,))
    return bool(locked)


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
