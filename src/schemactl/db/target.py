"""Refuse a target that a migrating run cannot use safely, before anything is
changed: a read-only standby, a database or role whose transactions are
read-only by default, and a connection pooler, unless the user declares that it
pools sessions (--pooler session): through transaction or statement pooling the
session advisory lock cannot keep runners apart, and the pooling mode cannot be
proven from the client (several poolers behind one address share no pools).

Only the commands that change the database (and take the migration lock) ask:
status, verify and log read through any pooler.
"""

from __future__ import annotations

import os
import socket
import threading

import psycopg

from schemactl.config import Settings
from schemactl.db.connection import (
    MIN_CONNECT_TIMEOUT,
    Connection,
    connect,
    describe_connection,
    is_pooled,
    phase,
    pooling_of,
    reason_of,
    select_row,
    server_pid,
    set_pooling,
)
from schemactl.errors import PoolerNotSupported, ReadOnlyTarget, SchemactlError

POOLER_HINT = (
    "connect to PostgreSQL directly (not through the pooler), or use session "
    "pooling (pool_mode = session)"
)
DECLARE_HINT = (
    "connect to PostgreSQL directly, or, if every pooler in front of it uses "
    "pool_mode = session, say so with --pooler session (SCHEMACTL_POOLER=session)"
)
NO_SPARE_HINT = (
    "raise the pool size (default_pool_size, max_db_connections), or connect "
    "to PostgreSQL directly"
)
# Rounds of the pooling probe: one settles it on an otherwise idle pool; the
# others make it unlikely that other clients' traffic hides transaction pooling.
PROBE_ROUNDS = 3
_STATEMENT_POOLING = "statement pooling"


def refuse_unsafe_target(conn: Connection, settings: Settings) -> None:
    """Refuse a read-only target, and a pooler unless session pooling was
    declared (and the probe does not contradict it).

    The read-only check is one query (the session check rides along when it
    has not run yet); a pooler, known from that check, is refused with
    --pooler auto, and probed once with --pooler session.

    Raises:
        ReadOnlyTarget: a standby, or transactions read-only by default.
        PoolerNotSupported: a pooler not declared as a session pooler; or one
            declared so, found in transaction or statement pooling mode, or
            whose mode could not be found out.
    """
    with phase(conn, "connect", state="nothing was changed"):
        in_recovery, read_only = select_row(
            conn,
            "pg_catalog.pg_is_in_recovery(), "
            "pg_catalog.current_setting('transaction_read_only')",
        )
    target = describe_connection(conn)
    if in_recovery:
        raise ReadOnlyTarget(
            f"{target} is a read-only standby (in recovery); nothing was changed",
            hint="connect to the primary",
        )
    if read_only == "on":
        raise ReadOnlyTarget(
            f"{target} only allows read-only transactions "
            "(default_transaction_read_only is on); nothing was changed",
            hint="connect to a writable database, or as a role without "
            "default_transaction_read_only",
        )
    if not is_pooled(conn):
        return
    if settings.pooler != "session":
        raise PoolerNotSupported(
            f"{target} is reached through a connection pooler (the process "
            "number it gave is not the server's): its pooling mode cannot be "
            "proven from here (several poolers behind one address share no "
            "pools), and through transaction or statement pooling the session "
            "advisory lock that keeps two runners apart does not hold; nothing "
            "was changed",
            hint=DECLARE_HINT,
        )
    mode = pooling_of(conn)
    if mode is None:
        mode = pooling_mode(conn, settings)
        with phase(conn, "connect", state="nothing was changed"):
            set_pooling(conn, mode)
    if mode != "session":
        raise PoolerNotSupported(
            f"{target} is reached through a connection pooler in {mode} pooling "
            "mode: a server connection serves another client after each "
            f"{mode}, so the session advisory lock that keeps two runners apart "
            "does not hold; nothing was changed",
            hint=POOLER_HINT,
        )


def pooling_mode(conn: Connection, settings: Settings) -> str:
    """Find out how the pooler in front of conn pools: "session",
    "transaction" or "statement".

    A probe with a second client connection, B, against conn's server backend
    (pid a, from the session check): in session pooling a client keeps its
    server connection for its whole life, so B never sees a, B's own pid never
    changes, and conn keeps a. In transaction pooling conn's server connection
    goes back to the pool after each transaction: an idle pool hands it to B
    next (PgBouncer reuses the most recent one), or, with server_round_robin,
    B's second transaction gets another connection than its first. Statement
    pooling refuses B's BEGIN.

    B's queries are bounded (max(--connect-timeout, 2) s): a session pool with
    no spare server connection would keep B waiting (without limit when
    PgBouncer's query_wait_timeout is 0).

    Raises:
        PoolerNotSupported: when the probe fails or runs out of time (its mode
            stays unknown).
    """
    mine = server_pid(conn)
    limit = max(float(MIN_CONNECT_TIMEOUT), settings.connect_timeout)
    try:
        with connect(settings, like=conn) as other, _Deadline(other, limit) as expired:
            try:
                for number in range(PROBE_ROUNDS):
                    if number == 0:
                        other.execute("BEGIN")
                    first = _pid(other)
                    if number == 0:
                        other.execute("COMMIT")
                    second = _pid(other)
                    again = _pid(conn)
                    if mine in (first, second) or first != second or again != mine:
                        return "transaction"
            except psycopg.Error:
                if expired.is_set():
                    raise _no_spare_connection(conn, limit) from None
                raise
    except psycopg.Error as exc:
        if _STATEMENT_POOLING in str(exc):
            return "statement"
        raise _unknown_mode(conn, reason_of(exc)) from None
    except PoolerNotSupported:
        raise
    except SchemactlError as exc:
        raise _unknown_mode(conn, exc.message) from None
    return "session"


class _Deadline:
    """Within the block, end conn's socket once `seconds` have passed (a
    query waiting for a server connection then fails at once); the event it
    gives says whether that happened.

    The socket is shut down rather than the connection closed or cancelled:
    closing it under a thread blocked in libpq is unsafe, and PgBouncer answers
    a cancel for a client not yet given a server connection with a bare
    ReadyForQuery.
    """

    def __init__(self, conn: Connection, seconds: float) -> None:
        self._conn = conn
        self._seconds = seconds
        self.expired = threading.Event()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired.set()
        try:
            # A duplicate descriptor: shutdown acts on the socket itself, and
            # closing the duplicate leaves libpq's own descriptor alone.
            with socket.socket(fileno=os.dup(self._conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            pass  # already closed: nothing left to end

    def __enter__(self) -> threading.Event:
        self._timer.start()
        return self.expired

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        self._timer.join()


def _pid(conn: Connection) -> int:
    row = conn.execute("SELECT pg_catalog.pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _no_spare_connection(conn: Connection, seconds: float) -> PoolerNotSupported:
    return PoolerNotSupported(
        f"{describe_connection(conn)} is reached through a connection pooler "
        "that had no free server connection for the check of its pooling mode "
        f"within {seconds:g} s (schemactl needs two server connections, the "
        "worker and the lock, plus one briefly for this check); nothing was "
        "changed",
        hint=NO_SPARE_HINT,
    )


def _unknown_mode(conn: Connection, reason: str) -> PoolerNotSupported:
    return PoolerNotSupported(
        f"{describe_connection(conn)} is reached through a connection pooler "
        f"whose pooling mode could not be found out ({reason}); nothing was "
        "changed",
        hint=POOLER_HINT,
    )
