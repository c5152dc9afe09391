"""Which runs a live process is driving, as the server sees it.

Each store holds one connection of its own (outside the pool) and, on it, a
session advisory lock per run it drives. When the process dies, the server
closes the connection and drops its locks: a `running` row whose lock is free
was abandoned, and another process may take it over. While the lock is held,
no other store resumes or recovers the run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import AsyncConnection

# The first key of every run lock (the second is the run id's hash), so they
# never meet an application's own advisory locks on one int8 key.
RUN_LOCK_SPACE = 727_211
TRY_LOCK = "SELECT pg_try_advisory_lock(%s, hashtext(%s::text))"
UNLOCK = "SELECT pg_advisory_unlock(%s, hashtext(%s::text))"


class RunLocks:
    """Advisory locks of the runs this process drives, on one connection."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def try_hold(self, run_id: Any) -> bool:
        """Take ``run_id``'s lock; False when a live process holds it.

        If the server closed the connection, the locks on it are gone: a new
        connection takes this one (the others' runs go on unguarded).
        """
        async with self._lock:
            for attempt in (1, 2):
                try:
                    conn = await self._connection()
                    cursor = await conn.execute(TRY_LOCK, (RUN_LOCK_SPACE, str(run_id)))
                    row = await cursor.fetchone()
                    return bool(row and row[0])
                except psycopg.OperationalError:
                    await self._drop()
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    async def release(self, run_id: Any) -> None:
        """Let ``run_id`` go (a lost connection has let it go already)."""
        async with self._lock:
            if self._conn is None or self._conn.closed:
                return
            try:
                await self._conn.execute(UNLOCK, (RUN_LOCK_SPACE, str(run_id)))
            except psycopg.OperationalError:
                await self._drop()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await AsyncConnection.connect(self._conninfo, autocommit=True)
        return self._conn
