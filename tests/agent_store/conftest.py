"""The agent store's tests: a fresh database with the shipped schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest


@pytest.fixture
def db(schema_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the test's database, to look at what the store wrote."""
    with psycopg.connect(schema_url, autocommit=True) as conn:
        yield conn


def rows(conn: psycopg.Connection[Any], query: str, params: Any = ()) -> list[Any]:
    return conn.execute(query, params).fetchall()
