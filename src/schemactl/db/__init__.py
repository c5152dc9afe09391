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

Each connection's first query also checks its server session (the server's own
pid and database, schemactl's settings in force; connection.py): behind a
pooler those differ from what libpq was told. The commands that take the lock
first refuse a read-only target or a transaction pooler (target.py).

Callers import from the modules themselves: `status` and `verify` load only
connection.py and history.py, not the session, the lock or the splitter.
"""
