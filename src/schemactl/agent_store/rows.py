"""Reading one value back from the database."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row


async def scalar(conn: AsyncConnection[Any], query: str, params: Any) -> Any:
    """The first column of the query's first row, or None when it has none
    (whatever row factory the application's pool set)."""
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute(query, params)
    row = await cursor.fetchone()
    return None if row is None else row[0]
