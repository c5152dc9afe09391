"""The SDK's Session protocol over the shipped `sessions` and `session_items`.

Each call is one transaction on a connection from the store's pool. Writers
(add, pop, clear) first lock the session's row, so two processes writing one
session take turns: a batch of items stays contiguous, and two pops never
return the same item. Readers never wait for writers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.memory import SessionABC
from agents.memory.session_settings import SessionSettings, resolve_session_limit

from schemactl.agent_store.jsonsafe import dumps, escape_text, unescape_nul
from schemactl.agent_store.rows import scalar

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

LIVE_SESSION_ID = """
    SELECT id FROM sessions WHERE session_key = %s AND deleted_at IS NULL"""
CREATE_SESSION = """
    INSERT INTO sessions (session_key) VALUES (%s)
    ON CONFLICT (session_key) WHERE deleted_at IS NULL DO NOTHING"""
LOCK_SESSION = """
    SELECT id FROM sessions WHERE session_key = %s AND deleted_at IS NULL
    FOR NO KEY UPDATE"""
# Positions come from the table's trigger (sql/003), in the order of the batch.
ADD_ITEMS = """
    INSERT INTO session_items (session_id, run_id, item_data)
    SELECT %s, %s, item FROM unnest(%s::jsonb[]) WITH ORDINALITY AS batch (item, n)
    ORDER BY n"""
ALL_ITEMS = """
    SELECT item_data FROM session_items WHERE session_id = %s ORDER BY position"""
LATEST_ITEMS = """
    SELECT item_data FROM (
        SELECT item_data, position FROM session_items WHERE session_id = %s
        ORDER BY position DESC LIMIT %s
    ) AS latest ORDER BY position"""
POP_ITEM = """
    DELETE FROM session_items WHERE id = (
        SELECT id FROM session_items WHERE session_id = %s
        ORDER BY position DESC LIMIT 1
    ) RETURNING item_data"""
CLEAR_ITEMS = "DELETE FROM session_items WHERE session_id = %s"


class PostgresSession(SessionABC):
    """Conversation history in PostgreSQL, for ``Runner.run(..., session=)``.

    ``clear_session`` removes the items but keeps the session's row, so the
    runs that used it keep their link. ``limit`` reads as in the SDK's
    SQLiteSession: None or a negative number for everything, 0 for nothing.
    """

    def __init__(
        self,
        session_id: str,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        *,
        session_settings: SessionSettings | None = None,
        run_id: Any = None,
    ) -> None:
        if not session_id:
            raise ValueError("session_id must not be empty")
        self.session_id = session_id
        self.session_settings = session_settings or SessionSettings()
        self._pool = pool
        self._key = escape_text(session_id)
        self._run_id = run_id

    def for_run(self, run_id: Any) -> PostgresSession:
        """The same session, tagging what it adds with ``run_id`` (what the
        store hands the SDK, so each item names the run that added it)."""
        return PostgresSession(
            self.session_id,
            self._pool,
            session_settings=self.session_settings,
            run_id=run_id,
        )

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """Return the history in order; with ``limit``, only its last items."""
        limit = resolve_session_limit(limit, self.session_settings)
        if limit is not None and limit < 0:
            limit = None
        if limit == 0:
            return []
        async with self._pool.connection() as conn:
            session = await scalar(conn, LIVE_SESSION_ID, (self._key,))
            if session is None:
                return []
            if limit is None:
                cursor = await conn.execute(ALL_ITEMS, (session,))
            else:
                cursor = await conn.execute(LATEST_ITEMS, (session, limit))
            return [unescape_nul(row[0]) for row in await cursor.fetchall()]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` after every item already there, as one batch."""
        if not items:
            return
        async with self._pool.connection() as conn:
            session = await self._lock(conn, create=True)
            batch = [dumps(item) for item in items]
            await conn.execute(ADD_ITEMS, (session, self._run_id, batch))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item, or None when there is none."""
        async with self._pool.connection() as conn:
            session = await self._lock(conn, create=False)
            if session is None:
                return None
            item = await scalar(conn, POP_ITEM, (session,))
            return None if item is None else unescape_nul(item)

    async def clear_session(self) -> None:
        """Remove every item of the session."""
        async with self._pool.connection() as conn:
            session = await self._lock(conn, create=False)
            if session is not None:
                await conn.execute(CLEAR_ITEMS, (session,))

    async def session_row_id(self) -> Any:
        """Return the id of the session's row, creating the row if needed."""
        async with self._pool.connection() as conn:
            return await self._lock(conn, create=True)

    async def _lock(self, conn: AsyncConnection[Any], *, create: bool) -> Any:
        if create:
            await conn.execute(CREATE_SESSION, (self._key,))
        return await scalar(conn, LOCK_SESSION, (self._key,))
