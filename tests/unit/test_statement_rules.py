"""Statement rules used while a file runs: concurrent index names, COPY TO STDOUT,
the retry delays, and how blockers are described."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from schemactl.core.model import Blocker, describe_blockers
from schemactl.core.retry import MAX_BACKOFF_SECONDS, backoff_delays
from schemactl.core.splitting import split_statements
from schemactl.core.statements import (
    ConcurrentIndex,
    concurrent_index,
    copies_to_client,
)


def only(text: str):
    (statement,) = split_statements(text)
    return statement


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CREATE INDEX CONCURRENTLY t_x ON t (x)", ConcurrentIndex("t_x", None, "t")),
        (
            'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Ix" ON s.t (x)',
            ConcurrentIndex("Ix", "s", "t"),
        ),
        ("CREATE INDEX CONCURRENTLY ON t (x)", None),  # no name to look for
        ("CREATE INDEX t_x ON t (x)", None),
        ("DROP INDEX CONCURRENTLY t_x", None),
        ("CREATE TABLE concurrently (x int)", None),
    ],
)
def test_concurrent_index(text, expected):
    assert concurrent_index(only(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("COPY t TO STDOUT", True),
        ("copy (SELECT 1) to stdout with (format csv)", True),
        ("COPY t TO '/tmp/t.csv'", False),
        ("COPY t TO PROGRAM 'cat'", False),
        ("COPY t FROM '/tmp/t.csv'", False),
        ("SELECT 'COPY t TO STDOUT'", False),
    ],
)
def test_copies_to_client(text, expected):
    assert copies_to_client(only(text)) is expected


def test_copy_from_stdin_is_not_copy_to_client():
    statement = split_statements("COPY t FROM stdin;\n1\n\\.\n")[0]
    assert not copies_to_client(statement)


@given(st.integers(min_value=0, max_value=40), st.floats(min_value=0, max_value=100))
@example(0, 1.0)
@example(3, 1.0)
@example(40, 100.0)
def test_backoff_doubles_and_is_capped(retries, first):
    delays = backoff_delays(retries, first)
    assert len(delays) == retries
    assert all(0 <= d <= MAX_BACKOFF_SECONDS for d in delays)
    assert delays == sorted(delays)
    if retries:
        assert delays[0] == min(first, MAX_BACKOFF_SECONDS)


def test_backoff_from_one_second():
    assert backoff_delays(7, 1.0) == [1, 2, 4, 8, 16, 30, 30]


def test_blockers_are_named_with_a_short_query():
    blocker = Blocker(
        42, "psql", "idle in transaction", "SELECT *\n  FROM a" + " x" * 60, 3.25
    )
    text = describe_blockers((blocker,))
    assert text.startswith(
        "pid 42 (application psql, idle in transaction for 3.2 s: SELECT * FROM a x"
    )
    assert text.endswith("...)")
    assert len(text) < 160


def test_no_blocker_seen():
    assert describe_blockers(()) == "a session that was not seen in time to name it"
