"""The only package that talks to PostgreSQL (psycopg 3). No click, no rich.

Every psycopg error that leaves it is a SchemactlError naming the phase it
happened in (connect, lock, history, FILE:LINE:COLUMN, record, flush) and the
state it left, with the contract's exit code. Messages never carry a password.

A migrating run uses two connections. The *worker* runs the files
(session.py). The *lock connection* (lock.py) holds the session advisory lock
for the whole run, where nothing a file does (``DISCARD ALL``,
``pg_advisory_unlock_all()``) can release it, and watches who blocks the
worker's statement. Before a file commits, the worker checks in the same
transaction that the lock connection still holds the lock.
"""

from schemactl.db.connection import (
    Connection,
    connect,
    describe_connection,
    describe_target,
    refuse_read_only,
)
from schemactl.db.history import (
    ensure_history_table,
    history_table_exists,
    read_history,
    realign_checksums,
    record_baseline,
)
from schemactl.db.lock import (
    advisory_lock_key,
    migration_lock,
    wait_for_advisory_lock,
)
from schemactl.db.session import MigrationSession, no_transaction_state

__all__ = [
    "Connection",
    "MigrationSession",
    "advisory_lock_key",
    "connect",
    "describe_connection",
    "describe_target",
    "ensure_history_table",
    "history_table_exists",
    "migration_lock",
    "no_transaction_state",
    "read_history",
    "realign_checksums",
    "record_baseline",
    "refuse_read_only",
    "wait_for_advisory_lock",
]
