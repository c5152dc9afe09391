"""Which runs a live process is driving, as the server sees it.

Each store holds one connection of its own (outside the pool) and, on it, a
session advisory lock per run it drives. When the process dies, the server
closes the connection and drops its locks: a `running` row whose lock is free
was abandoned, and another process may take it over. While the lock is held,
no other store resumes or recovers the run; within one store, a run it drives
is refused too (an advisory lock is re-entrant on its own connection, so the
store keeps its own list).

If the lock connection itself is lost (an idle timeout, a failover), the
locks are gone while the runs go on. A heartbeat notices within seconds and
takes every lock again on a new connection; a run whose lock another process
took meanwhile is marked lost, and its final write is refused rather than
overwrite what that process wrote.
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
    """Advisory locks of the runs this process drives, on one connection."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._held: set[str] = set()
        self._lost: set[str] = set()
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
            self._lost.discard(key)
            self._start_heartbeat()
            return True

    async def confirm(self, run_id: Any) -> bool:
        """True while this store still holds ``run_id``'s lock: its connection
        answers, or a new one took the lock again. False when another process
        took it while the lock connection was away."""
        key = run_key(run_id)
        async with self._lock:
            with contextlib.suppress(psycopg.OperationalError):
                if self._conn is not None and not self._conn.closed:
                    await self._conn.execute("SELECT 1")
                    return key not in self._lost
            await self._drop()
            await self._connection()
            return key not in self._lost

    async def release(self, run_id: Any) -> None:
        """Let ``run_id`` go (a lost connection has let it go already)."""
        key = run_key(run_id)
        async with self._lock:
            self._held.discard(key)
            self._lost.discard(key)
            if self._conn is None or self._conn.closed:
                return
            try:
                await self._conn.execute(UNLOCK, (RUN_LOCK_SPACE, key))
            except psycopg.OperationalError:
                await self._drop()

    async def close(self) -> None:
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
        """The lock connection; a new one takes every held lock again first
        (the old one's went with it), marking those another process took."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
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
