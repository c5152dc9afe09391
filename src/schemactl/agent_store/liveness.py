"""Which runs a live process is driving, as the server sees it.

Each store holds one connection of its own (outside the pool) and, on it, a
session advisory lock per run it drives. When the process dies, the server
closes the connection and drops its locks: a `running` row whose lock is free
was abandoned, and another process may take it over. While the lock is held,
no other store resumes or recovers the run; within one store, a run it drives
is refused too (an advisory lock is re-entrant on its own connection, so the
store keeps its own list).

If the lock connection itself is lost (an idle timeout, a failover), the
locks go with it while the runs go on. The heartbeat (or the next use) takes
them again on a new connection; a run whose lock another process holds by
then is lost: it starts no more tools and is not written. A run another
process took over or recovered and let go in the gap is caught by the run's
fence instead (its attempt_id is no longer this process's). Closing the
store loses the runs it still drives the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo

# The first key of every run lock (the second is the run id's hash), so they
# never meet an application's own advisory locks on one int8 key.
RUN_LOCK_SPACE = 727_211
TRY_LOCK = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
UNLOCK = "SELECT pg_advisory_unlock(%s, hashtext(%s))"
HEARTBEAT_SECONDS = 5.0
# A lock connection that stops answering is given up on, rather than waited for;
# it names itself in pg_stat_activity.
LOCK_CONNECTION: dict[str, str | int] = {
    "application_name": "schemactl-agent-store-locks",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "connect_timeout": 10,
}


def run_key(run_id: Any) -> str:
    """The one spelling of a run id (any spelling of a uuid is the same run)."""
    return str(uuid.UUID(str(run_id)))


class RunLocks:
    """Advisory locks of the runs this process drives, on one connection.

    A store and its locks live in one event loop (as its pool does).
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._closed = False
        self._heartbeat: asyncio.Task[None] | None = None

    async def try_hold(self, run_id: Any) -> bool:
        """Take ``run_id``'s lock; False when this store or another live
        process holds it."""
        key = run_key(run_id)
        async with self._lock:
            if key in self._held:
                return False
            if not await self._take(key):
                return False
            self._held.add(key)
            self._start_heartbeat()
            return True

    async def confirm(self, run_id: Any) -> bool:
        """True while this store holds ``run_id``'s lock: its connection
        answers, or a new one took the lock again."""
        key = run_key(run_id)
        async with self._lock:
            if key not in self._held or key in self._lost:
                return False
            try:
                conn = await self._connection()
                await conn.execute("SELECT 1")
            except psycopg.OperationalError:
                await self._drop()
                try:
                    await self._connection()
                except psycopg.OperationalError:
                    return False
            return key not in self._lost

    async def release(self, run_id: Any) -> None:
        """Let ``run_id`` go (a lost connection has let it go already)."""
        key = run_key(run_id)
        async with self._lock:
            self._held.discard(key)
            lost = key in self._lost
            self._lost.discard(key)
            if lost or self._conn is None or self._conn.closed:
                return
            try:
                await self._conn.execute(UNLOCK, (RUN_LOCK_SPACE, key))
            except psycopg.OperationalError:
                await self._drop()

    async def close(self) -> None:
        """Let every lock go: the runs still held are lost (see above)."""
        self._closed = True
        self._lost |= self._held
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        async with self._lock:
            await self._drop()

    async def _take(self, key: str) -> bool:
        for attempt in (1, 2):
            try:
                conn = await self._connection()
                return await _try_lock(conn, key)
            except psycopg.OperationalError:
                await self._drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            async with self._lock:
                if not self._held:
                    continue
                with contextlib.suppress(psycopg.OperationalError):
                    if self._conn is not None and not self._conn.closed:
                        await self._conn.execute("SELECT 1")
                        continue
                await self._drop()
                # The server is away: the next beat tries again.
                with contextlib.suppress(psycopg.OperationalError):
                    await self._connection()

    async def _connection(self) -> AsyncConnection[Any]:
        """The lock connection. A new one takes every held lock again first
        (the old one's went with it); one another process holds is lost."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._closed:
            raise psycopg.OperationalError("the store is closed")
        conninfo = make_conninfo(self._conninfo, **LOCK_CONNECTION)
        conn = await AsyncConnection.connect(conninfo, autocommit=True)
        for key in sorted(self._held - self._lost):
            if not await _try_lock(conn, key):
                self._lost.add(key)
        self._conn = conn
        return conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None


async def _try_lock(conn: AsyncConnection[Any], key: str) -> bool:
    cursor = await conn.execute(TRY_LOCK, (RUN_LOCK_SPACE, key))
    row = await cursor.fetchone()
    return bool(row and row[0])
