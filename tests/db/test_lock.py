"""The advisory lock: exclusive, reported while waiting, bounded by the timeout."""

from __future__ import annotations

import psycopg
import pytest

from schemactl.config import parse_table_name
from schemactl.db.lock import advisory_lock_key, migration_lock, wait_for_advisory_lock
from schemactl.errors import LockTimeout

TABLE = parse_table_name("schema_migrations")


def lock_key(conn) -> int:
    return advisory_lock_key(conn.info.dbname, TABLE)


@pytest.fixture
def holder(database_url):
    with psycopg.connect(
        database_url, autocommit=True, application_name="other-runner"
    ) as conn:
        yield conn


def test_lock_is_held_by_its_own_connection_and_released(db, holder, settings):
    key = lock_key(db)
    with migration_lock(settings, db) as lock:
        assert lock.pid != db.info.backend_pid
        assert holder.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (
            False,
        )
        # Nothing a file does on the worker releases it.
        db.execute("DISCARD ALL")
        db.execute("SELECT pg_advisory_unlock_all()")
        assert holder.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (
            False,
        )
    assert holder.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (
        True,
    )


def test_timeout_names_the_holder(db, holder):
    holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(db),))
    with pytest.raises(LockTimeout) as caught:
        wait_for_advisory_lock(db, lock_key(db), table=TABLE, timeout=0)
    message = caught.value.message
    assert f"pid {holder.info.backend_pid}" in message
    assert "application other-runner" in message
    assert caught.value.exit_code == 3


def test_waiter_reports_the_holder_then_gets_the_lock(db, holder):
    key = lock_key(db)
    holder.execute("SELECT pg_advisory_lock(%s)", (key,))
    seen: list[int | None] = []

    def on_wait(who):
        # The release happens inside the waiter's own poll: a barrier, not a sleep.
        seen.append(who.pid if who else None)
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))

    wait_for_advisory_lock(db, key, table=TABLE, timeout=30, on_wait=on_wait)
    assert holder.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (
        False,
    )
    assert seen == [holder.info.backend_pid]


def test_lock_keys_differ_per_table_and_database():
    a = advisory_lock_key("app", parse_table_name("schema_migrations"))
    b = advisory_lock_key("app", parse_table_name("ops.schema_migrations"))
    c = advisory_lock_key("other", parse_table_name("schema_migrations"))
    assert len({a, b, c}) == 3
    assert all(-(2**63) <= k < 2**63 for k in (a, b, c))
