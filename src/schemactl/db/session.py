"""Running one file on the worker: its statements, then one bookkeeping message
(identity reset, lock guard, history row, session reset, COMMIT); table lock
timeouts retried; INVALID indexes of failed concurrent builds dropped; notices
and progress reported to the observer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from schemactl.config import Settings, TableName
from schemactl.core.history import (
    history_insert_sql,
    log_insert_sql,
    qualified_name,
    quote_identifier,
    quote_literal,
)
from schemactl.core.model import (
    Blocker,
    MigrationFile,
    ServerMessage,
    describe_blockers,
)
from schemactl.core.retry import backoff_delays
from schemactl.core.splitting import Statement, line_at, position_to_line_column
from schemactl.core.statements import ConcurrentIndex, concurrent_index
from schemactl.core.validation import ParsedSource
from schemactl.db.connection import (
    Connection,
    is_connection_lost,
    phase,
    reason_of,
    server_pid,
    settings_after_reset,
    settle,
)
from schemactl.db.history import flush_commits, table_sql
from schemactl.db.lock import (
    BlockerWatch,
    MigrationLock,
    is_lock_lost,
    watch_interval,
)
from schemactl.errors import (
    ConnectionLost,
    MigrationFailed,
    MigrationLockLost,
    SchemactlError,
    TableLockTimeout,
)
from schemactl.interrupts import deferred, raise_pending
from schemactl.observer import MigrateObserver

LOCK_NOT_AVAILABLE = "55P03"
T = TypeVar("T")


# Everything a file can leave in its session, reset as a new `psql -f` session
# would find it. This is DISCARD ALL taken apart: DISCARD ALL cannot run inside a
# transaction block, and these pieces can, so they commit with the file. The
# migration lock lives on another connection, out of reach of
# pg_advisory_unlock_all().
_RESET_IDENTITY = "RESET SESSION AUTHORIZATION;\nRESET ROLE"
_RESET_SESSION = (
    "CLOSE ALL;\nDEALLOCATE ALL;\nUNLISTEN *;\nSELECT pg_advisory_unlock_all();\n"
    "DISCARD PLANS;\nDISCARD TEMP;\nDISCARD SEQUENCES;\nRESET ALL"
)
_BEGIN = "BEGIN;\n"


def _session_reset(conn: Connection) -> str:
    """Return the session reset for this connection: RESET ALL returns to the
    settings sent at connect; settings SET afterwards are SET again."""
    again = settings_after_reset(conn)
    return f"{_RESET_SESSION};\n{again}" if again else _RESET_SESSION


# Measured by the server: now() is the start of the migration's transaction.
_SERVER_ELAPSED_MS = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer"
# A no-transaction file's row is written when the file starts, so its duration
# is measured from applied_at.
_MARK_SUCCEEDED = (
    "UPDATE {} SET success = true, execution_ms = "
    "(extract(epoch FROM clock_timestamp() - applied_at) * 1000)::integer "
    "WHERE version = {}"
)


@dataclass(frozen=True, slots=True)
class _Part:
    """A statement inside a message: its number in the file, where it starts."""

    number: int
    statement: Statement
    start: int


@dataclass(frozen=True, slots=True)
class _Message:
    """One simple-protocol message: BEGIN maybe, then statements of the file."""

    text: str
    parts: tuple[_Part, ...] = ()

    @property
    def first(self) -> _Part | None:
        """Return the first statement, if the message holds any."""
        return self.parts[0] if self.parts else None

    def part_at(self, position: int) -> _Part | None:
        """Return the statement holding a 0-based offset of the message."""
        for part in self.parts:
            if part.start <= position < part.start + len(part.statement.text):
                return part
        return None


# In a transactional file of more than _BATCH_THRESHOLD statements (seed data),
# consecutive statements travel together, up to these limits: a million INSERTs
# then cost thousands of round trips, not a million. Inside the file's
# transaction this changes nothing the server does (statement_timeout still
# applies to each statement, PostgreSQL 13+); an error without a position is
# located by running the file again one statement at a time, in a transaction
# that is rolled back. Smaller files keep one statement per message, so that a
# notice or a lock wait names its own statement.
_BATCH_THRESHOLD = 1000
_BATCH_STATEMENTS = 500
_BATCH_CHARACTERS = 256 * 1024
# Between two statements of a message: a newline first, since a statement's
# text may end in a `--` comment.
_SEPARATOR = "\n;\n"


@dataclass
class FileProgress:
    """How far the file being run has got; read after a failure or a signal."""

    migration: MigrationFile
    path: Path
    total: int
    transactional: bool
    source: ParsedSource | None = None
    statement_number: int = 0
    statement: Statement | None = None
    # No-transaction files: statements that ran (and stay), and an INVALID
    # index a failed concurrent build left that could not be dropped.
    statements_done: int = 0
    leftover_index: str | None = None

    # The last statement sent in the same message as the current one.
    batch_end: int = 0

    def at(self, number: int, statement: Statement | None, batch_end: int = 0) -> None:
        """Note that statement `number` (0: BEGIN alone) is about to run, with
        the statements up to batch_end in the same message."""
        self.statement_number = number
        self.statement = statement
        self.batch_end = batch_end

    def place(self) -> tuple[str, int, int] | None:
        """Return (FILE, LINE, COLUMN) of the current statement, if any."""
        if self.source is None or self.statement is None:
            return None
        line, column = position_to_line_column(self.source.text, self.statement.offset)
        return (str(self.path), line, column)

    def location(self) -> str:
        """Return FILE:LINE:COLUMN of the current statement (computed on demand:
        counting lines up to every statement would make big files quadratic)."""
        if self.source is None or self.statement is None:
            return str(self.path)
        line, column = position_to_line_column(self.source.text, self.statement.offset)
        together = (
            f" (statements {self.statement_number}-{self.batch_end}, sent together)"
            if self.batch_end > self.statement_number
            else ""
        )
        return f"{self.path}:{line}:{column}{together}"


class _FailedInBatch(Exception):
    """A statement of a multi-statement message failed without saying which."""

    def __init__(self, error: psycopg.Error, message: _Message) -> None:
        super().__init__(str(error))
        self.error = error
        self.message = message


class _LockWaitTimedOut(Exception):
    """One attempt gave up on a table lock; the caller retries or gives up."""

    def __init__(
        self,
        location: str,
        blockers: tuple[Blocker, ...],
        place: tuple[str, int, int] | None,
    ) -> None:
        super().__init__(location)
        self.location = location
        self.blockers = blockers
        self.place = place


@dataclass
class MigrationSession:
    """Runs files on the worker connection while the lock connection holds the
    migration lock; reports progress to the observer."""

    conn: Connection
    settings: Settings
    lock: MigrationLock
    observer: MigrateObserver = field(default_factory=MigrateObserver)
    progress: FileProgress | None = None
    _watch: BlockerWatch | None = None
    _guard_sql: str = ""
    # _RESET_SESSION, and the settings again when RESET ALL does not return to
    # them (SET through a pooler that refused them at connect).
    _reset_sql: str = _RESET_SESSION
    # The audit log's quoted name, once the runner knows it exists.
    audit_log: str | None = None
    # While a failing file is run again to locate its error: no notices twice.
    _quiet: bool = False

    @property
    def table(self) -> TableName:
        """Return the history table."""
        return self.settings.table

    @contextmanager
    def running(self) -> Iterator[MigrationSession]:
        """Watch for blockers and show server notices while the block runs."""
        self._guard_sql = self.lock.guard_sql()
        self._reset_sql = _session_reset(self.conn)
        self.conn.add_notice_handler(self._on_notice)
        watch = BlockerWatch(
            self.lock.conn,
            server_pid(self.conn),
            watch_interval(self.settings.table_lock_timeout),
            self.observer.statement_blocked,
        )
        with watch:
            self._watch = watch
            try:
                yield self
            finally:
                self._watch = None
                self.conn.remove_notice_handler(self._on_notice)

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if self._quiet:
            return
        progress = self.progress
        location = None
        if progress is not None and progress.statement is not None:
            location = progress.location()
        self.observer.server_message(
            ServerMessage(
                diag.severity or "NOTICE", diag.message_primary or "", location
            )
        )

    def _cancel(self) -> None:
        """Ask the server to cancel the running statement (on a signal)."""
        with suppress(psycopg.Error):
            self.conn.cancel_safe()

    # -- apply and revert --

    def apply(self, migration: MigrationFile, source: ParsedSource) -> int:
        """Run one migration file and record it; return its duration in ms.

        A transactional file and its history row commit together; on a table
        lock timeout the file is rolled back and retried. A no-transaction file
        runs one statement at a time: its row is written first with
        ``success = false`` and marked successful at the end. Call `flush` once
        after the last migration.

        Raises:
            MigrationFailed: naming FILE:LINE:COLUMN of the failing statement.
            TableLockTimeout: when a lock wait outlasted every retry (exit 3).
            MigrationLockLost, ConnectionLost: exit 3, file not committed.
        """
        table = qualified_name(self.table.schema, self.table.name)
        checksum = quote_literal(migration.checksum)
        if source.no_transaction:
            # The row is written first, so applied_at is when the file started.
            first = _joined(
                history_insert_sql(table, migration, "0", success=False),
                self._log("apply", migration, after=checksum, outcome="started"),
            )
            record = _joined(
                self._compose(_MARK_SUCCEEDED, migration.version),
                self._log(
                    "apply",
                    migration,
                    after=checksum,
                    execution_ms=self._ms_of(migration),
                ),
            )
        else:
            first = None
            record = _joined(
                history_insert_sql(table, migration, _SERVER_ELAPSED_MS, success=True),
                self._log(
                    "apply", migration, after=checksum, execution_ms=_SERVER_ELAPSED_MS
                ),
            )
        return self._run_file(migration, migration.path, source, first, record)

    def revert(
        self, migration: MigrationFile, down_path: Path, source: ParsedSource
    ) -> int:
        """Run a down file and delete the migration's history row; return ms.

        A transactional down file and the row's removal commit together. A
        no-transaction down file first marks the row failed, so a failure
        part-way leaves it visible until `repair`.

        Raises:
            MigrationFailed: naming FILE:LINE:COLUMN in the down file.
            TableLockTimeout, MigrationLockLost, ConnectionLost: as for apply.
        """
        version = migration.version
        before = self._compose("(SELECT checksum FROM {} WHERE version = {})", version)
        first = None
        if source.no_transaction:
            first = _joined(
                self._compose(
                    "UPDATE {} SET success = false WHERE version = {}", version
                ),
                self._log("rollback", migration, before=before, outcome="started"),
            )
        record = _joined(
            # The log row first: it reads the checksum of the row being deleted.
            self._log("rollback", migration, before=before),
            self._compose("DELETE FROM {} WHERE version = {}", version),
        )
        return self._run_file(migration, down_path, source, first, record)

    def _log(
        self,
        action: str,
        migration: MigrationFile,
        *,
        before: str = "NULL",
        after: str = "NULL",
        execution_ms: str = "NULL",
        outcome: str = "ok",
    ) -> str | None:
        """Return the audit log row's INSERT, sent with the history change it
        records (the same transaction); None without a log."""
        if self.audit_log is None:
            return None
        return log_insert_sql(
            self.audit_log,
            qualified_name(self.table.schema, self.table.name),
            action,
            migration,
            before=before,
            after=after,
            execution_ms=execution_ms,
            outcome=outcome,
        )

    def _ms_of(self, migration: MigrationFile) -> str:
        return self._compose(
            "(SELECT execution_ms FROM {} WHERE version = {})", migration.version
        )

    def _compose(self, template: str, version: int) -> str:
        """Fill a statement about the history table: the table, then the version."""
        statement = sql.SQL(template).format(
            table_sql(self.table), sql.Literal(version)
        )
        return statement.as_string(self.conn)

    def _run_file(
        self,
        migration: MigrationFile,
        path: Path,
        source: ParsedSource,
        first: str | None,
        record: str,
    ) -> int:
        """Run a file with its bookkeeping: `first` before a no-transaction
        file's statements, `record` after them (committed with them in a
        transactional file). Return the duration in ms."""
        started = time.perf_counter()
        self.progress = FileProgress(
            migration,
            path,
            len(source.statements),
            transactional=not source.no_transaction,
            source=source,
        )
        if first is not None:
            with phase(self.conn, "record", state=f"nothing of {path.name} ran"):
                self.conn.execute(first)
            self._run_no_transaction(source)
            self._record(record, commit=False)
        else:
            self._with_retries(
                lambda: self._run_transaction(source, record), whole_file=True
            )
        self.progress = None
        return _elapsed_ms(started)

    def flush(self) -> None:
        """Make this run's migrations durable (see `flush_commits`)."""
        flush_commits(self.conn, self.settings)

    # -- one transactional attempt --

    def _run_transaction(self, source: ParsedSource, record: str) -> None:
        try:
            self._send_all(_statement_messages(source), source)
            self._record(record, commit=True)
        except _FailedInBatch as failed:
            settle(self.conn)
            raise self._locate_failure(failed, source) from failed.error
        except BaseException:
            settle(self.conn)
            raise

    def _send_all(self, messages: Iterable[_Message], source: ParsedSource) -> None:
        progress = self.progress
        assert progress is not None
        with self.conn.cursor() as cur:
            for message in messages:
                first = message.first
                if first is None:
                    progress.at(0, None)
                else:
                    progress.at(first.number, first.statement, message.parts[-1].number)
                    self.observer.statement_started(
                        first.number, progress.total, progress.location
                    )
                self._send_statement(cur, message, source)

    def _locate_failure(
        self, failed: _FailedInBatch, source: ParsedSource
    ) -> SchemactlError:
        """Run the file again one statement at a time, in a transaction that is
        rolled back, to name the statement that fails; if none does this time,
        blame the first statement of the message that failed."""
        # From a reset session, as a retry (a PREPARE of the first run would
        # fail the second); the notices were shown the first time.
        self._reset_session()
        self._quiet = True
        try:
            self._send_all(_statement_messages(source, batch=False), source)
        except MigrationFailed as located:
            return located
        finally:
            self._quiet = False
            settle(self.conn)  # rolls back, also when every statement ran
        first = failed.message.first
        assert first is not None
        progress = self.progress
        assert progress is not None
        guess = _migration_failed(
            failed.error, progress.path, source, first.statement, first.number, True
        )
        guess.message += (
            f" (in statements {first.number}-{failed.message.parts[-1].number}, "
            "sent together; it did not happen again when the file was run one "
            "statement at a time, so this names the first of them)"
        )
        return guess

    def _record(self, record: str, *, commit: bool) -> None:
        """Send the bookkeeping: reset the session (the identity first), check
        the lock, write the row; then COMMIT in a transactional file.

        It is its own message, sent only once every statement's result is back,
        so a runner that dies mid-file never has COMMIT waiting on the server,
        and an error here is never blamed on the file's last statement. The
        reset comes first: the row is written by the login role, under
        schemactl's own lock timeout and client check (RESET ALL returns to the
        values set at connect), whatever the file SET or RESET. A no-transaction
        file's reset is a message of its own: a file that made transactions
        read-only by default would otherwise make the row's write read-only.
        """
        progress = self.progress
        assert progress is not None
        progress.at(progress.statement_number, None)
        try:
            if commit:
                self.conn.execute(
                    ";\n".join(
                        [
                            _RESET_IDENTITY,
                            self._reset_sql,
                            self._guard_sql,
                            record,
                            "SET LOCAL synchronous_commit TO off;\nCOMMIT",
                        ]
                    )
                )
            else:
                self.conn.execute(f"{_RESET_IDENTITY};\n{self._reset_sql}")
                self.conn.execute(f"{self._guard_sql};\n{record}")
        except psycopg.Error as exc:
            raise self._record_failed(exc) from None

    def _record_failed(self, exc: psycopg.Error) -> SchemactlError:
        progress = self.progress
        assert progress is not None
        name = progress.path.name
        if progress.transactional:
            state = f"{name} was rolled back"
        else:
            state = f"{name} ran; its history row stays marked failed"
        if is_connection_lost(exc, self.conn):
            return ConnectionLost(
                f"connection lost while recording {name}: {reason_of(exc)}",
                state=state,
            )
        if exc.sqlstate == LOCK_NOT_AVAILABLE:
            return TableLockTimeout(
                f"timed out waiting for a lock on the history table {self.table} "
                f"to record {name}",
                state=state,
            )
        if is_lock_lost(exc):
            return MigrationLockLost(
                f"the migration lock was lost before {name} could be recorded: its "
                "connection ended, so another runner may hold it now",
                state=state,
            )
        if progress.transactional and self._is_deferred_constraint(exc):
            # Checked at COMMIT: the file's own failure, not the bookkeeping's.
            detail = exc.diag.message_detail
            return SchemactlError(
                f"{progress.path}: a deferred constraint failed when the file "
                f"committed: {reason_of(exc)}" + (f" ({detail})" if detail else ""),
                hint="constraints declared DEFERRABLE INITIALLY DEFERRED are "
                "checked at COMMIT, after the file's last statement",
                state=state,
            )
        return SchemactlError(
            f"could not record {name} in the history table {self.table} (or its "
            f"audit log): {reason_of(exc)}",
            state=state,
        )

    def _is_deferred_constraint(self, exc: psycopg.Error) -> bool:
        """An integrity error about a table other than the history table."""
        diag = exc.diag
        return (exc.sqlstate or "").startswith("23") and (
            diag.schema_name,
            diag.table_name,
        ) != (self.table.schema, self.table.name)

    def _send_statement(
        self, cur: psycopg.Cursor[Any], message: _Message, source: ParsedSource
    ) -> None:
        """Send one statement; translate its failure."""
        progress = self.progress
        assert progress is not None
        assert self._watch is not None
        try:
            # A signal cancels the statement and is raised once it has returned:
            # raised inside psycopg, which may be running our notice callback,
            # it could be printed and lost while the file went on to commit.
            with self._watch.statement(progress.location), deferred(self._cancel):
                _send(cur, message)
        except psycopg.Error as exc:
            raise_pending()
            self._raise_statement_error(exc, message, source)
        except UnicodeEncodeError as exc:
            # The file SET client_encoding: its text no longer fits.
            raise SchemactlError(
                f"{progress.location()}: the statement cannot be sent in the client "
                f"encoding {self.conn.info.encoding}: {exc.reason}",
                hint="migration files are UTF-8: do not SET client_encoding in them",
                state=self._stopped_state(),
            ) from None
        raise_pending()
        if self.conn.info.parameter_status("standard_conforming_strings") == "off":
            raise self._strings_changed()

    def _strings_changed(self) -> SchemactlError:
        """The file turned standard_conforming_strings off in a way the check
        could not see (dynamic SQL): every later statement would be read by
        other rules than the ones it was split with. Stop before the next."""
        progress = self.progress
        assert progress is not None
        return SchemactlError(
            f"{progress.location()}: this statement turned "
            "standard_conforming_strings off; later statements would be read by "
            "other rules than the ones the file was checked with",
            hint="keep standard_conforming_strings on in migration files",
            state=self._stopped_state(),
        )

    def _stopped_state(self) -> str:
        """Say what a file stopped by schemactl itself leaves behind."""
        progress = self.progress
        assert progress is not None
        if progress.transactional:
            return f"{progress.path.name} was rolled back"
        return no_transaction_state(progress)

    def _raise_statement_error(
        self, exc: psycopg.Error, message: _Message, source: ParsedSource
    ) -> None:
        progress = self.progress
        assert progress is not None
        name = progress.path.name
        location = progress.location()
        if is_connection_lost(exc, self.conn):
            state = (
                f"{name} was not committed"
                if progress.transactional
                else no_transaction_state(progress)
            )
            raise ConnectionLost(
                f"connection lost while running {location}: {reason_of(exc)}",
                state=state,
            ).at(progress.place()) from None
        if exc.sqlstate == LOCK_NOT_AVAILABLE:
            assert self._watch is not None
            raise _LockWaitTimedOut(
                location, self._watch.blockers, progress.place()
            ) from exc
        position = exc.diag.statement_position
        part = message.part_at(int(position) - 1) if position else None
        if part is None and len(message.parts) == 1:
            part = message.parts[0]  # a runtime error: the statement's start
        if part is None and message.parts:
            raise _FailedInBatch(exc, message)  # which one? run them one by one
        if part is None:
            raise SchemactlError(f"starting {name} failed: {reason_of(exc)}") from exc
        raise _migration_failed(
            exc,
            progress.path,
            source,
            part.statement,
            part.number,
            progress.transactional,
            lead=part.start,
        ) from exc

    def _with_retries(self, attempt: Callable[[], T], *, whole_file: bool) -> T:
        """Run attempt; after a table lock timeout, wait and run it again.

        A whole file is retried in a reset session: what its first attempt
        left that a rollback keeps (a PREPAREd statement, a session advisory
        lock) must not make the second one fail. A statement of a
        no-transaction file is retried in the session its earlier statements
        made.
        """
        delays = backoff_delays(
            self.settings.table_lock_retries, self.settings.table_lock_backoff
        )
        for number, delay in enumerate(delays, start=1):
            try:
                return attempt()
            except _LockWaitTimedOut as wait:
                if whole_file:
                    self._reset_session()
                self.observer.lock_retry(
                    wait.location, wait.blockers, number, len(delays), delay
                )
                time.sleep(delay)
        try:
            return attempt()
        except _LockWaitTimedOut as wait:
            raise self._lock_wait_exhausted(wait, len(delays)) from None

    def _reset_session(self) -> None:
        with phase(self.conn, "the session reset before a retry", state="unknown"):
            self.conn.execute(f"{_RESET_IDENTITY};\n{self._reset_sql}")

    def _lock_wait_exhausted(
        self, wait: _LockWaitTimedOut, retries: int
    ) -> TableLockTimeout:
        progress = self.progress
        assert progress is not None
        name = progress.path.name
        state = (
            f"nothing of {name} was applied"
            if progress.transactional
            else no_transaction_state(progress)
        )
        tries = "once" if retries == 0 else f"{retries + 1} times"
        return TableLockTimeout(
            f"{wait.location}: gave up waiting for a table lock "
            f"({self.settings.table_lock_timeout:g} s, tried {tries}); blocked by "
            f"{describe_blockers(wait.blockers)}",
            hint="end the blocking session, or raise --table-lock-timeout / "
            "--table-lock-retries",
            state=state,
        ).at(wait.place)

    # -- no-transaction files --

    def _run_no_transaction(self, source: ParsedSource) -> None:
        """Run the statements one by one, each committing on its own; check
        before each that the migration lock is still held (once it is lost,
        another runner may be running this very file)."""
        progress = self.progress
        assert progress is not None
        with self.conn.cursor() as cur:
            for number, statement in enumerate(source.statements, start=1):
                progress.at(number, statement)
                self.observer.statement_started(
                    number, progress.total, progress.location
                )
                self._check_lock()
                message = _Message(statement.text, (_Part(number, statement, 0),))
                index = concurrent_index(statement)
                self._with_retries(
                    partial(self._run_autocommit, cur, message, source, index),
                    whole_file=False,
                )
                progress.statements_done = number

    def _check_lock(self) -> None:
        progress = self.progress
        assert progress is not None
        try:
            self.conn.execute(self._guard_sql)
        except psycopg.Error as exc:
            if is_lock_lost(exc):
                raise MigrationLockLost(
                    f"the migration lock was lost before {progress.location()} "
                    "could run: its connection ended, so another runner may hold "
                    "it now",
                    state=no_transaction_state(progress),
                ) from None
            self._raise_statement_error(exc, _Message(""), _EMPTY_SOURCE)

    def _run_autocommit(
        self,
        cur: psycopg.Cursor[Any],
        message: _Message,
        source: ParsedSource,
        index: ConcurrentIndex | None,
    ) -> None:
        """Run one statement of a no-transaction file: before it, and after it
        fails, drop the INVALID index a failed concurrent build left behind (a
        re-run would trip over it, or skip it with IF NOT EXISTS)."""
        if index is not None:
            self._drop_invalid_index(index, best_effort=False)
        try:
            self._send_statement(cur, message, source)
        except BaseException:
            if index is not None and not (self.conn.closed or self.conn.broken):
                settle(self.conn)
                self._drop_invalid_index(index, best_effort=True)
            raise

    def _drop_invalid_index(self, index: ConcurrentIndex, *, best_effort: bool) -> None:
        """Drop the INVALID index of a failed concurrent build, if there is one.

        Before the statement, a lock wait is retried like the statement's own
        (the drop waits for the same sessions the build would). After a
        failure, the drop is best effort: the failure is what gets reported, and
        a left-over index is named in it (the next attempt drops it first).
        """
        progress = self.progress
        assert progress is not None
        assert self._watch is not None
        try:
            with self._watch.statement(progress.location):
                dropped = self._drop_invalid_index_now(index)
        except psycopg.Error as exc:
            if best_effort and not is_connection_lost(exc, self.conn):
                progress.leftover_index = index.name
                return
            if exc.sqlstate == LOCK_NOT_AVAILABLE:
                raise _LockWaitTimedOut(
                    progress.location(), self._watch.blockers, progress.place()
                ) from exc
            with phase(
                self.conn,
                "dropping an INVALID index",
                state=no_transaction_state(progress),
            ):
                raise
        if dropped is not None:
            progress.leftover_index = None
            self.observer.invalid_index_dropped(progress.location(), dropped)

    def _drop_invalid_index_now(self, index: ConcurrentIndex) -> str | None:
        """Drop the index if it exists and is INVALID; return its name then."""
        table = (
            quote_identifier(index.table)
            if index.table_schema is None
            else qualified_name(index.table_schema, index.table)
        )
        found = self.conn.execute(
            """
            SELECT i.indexrelid::regclass::text FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            WHERE NOT i.indisvalid AND c.relname = %s
              AND i.indrelid = to_regclass(%s)
            """,
            (index.name, table),
        ).fetchone()
        if found is None:
            return None
        # found[0] is regclass output: already quoted and qualified as needed.
        self.conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {found[0]}")
        return str(found[0])


def no_transaction_state(progress: FileProgress) -> str:
    """Say how far a no-transaction file got: what ran stays, the row is failed."""
    name, done = progress.path.name, progress.statements_done
    if done == 0:
        ran = "no statement of it ran"
    elif done == 1:
        ran = "statement 1 ran and stays applied"
    else:
        ran = f"statements 1-{done} ran and stay applied"
    where = (
        f"after its last statement ({done} of {progress.total})"
        if done == progress.total
        else f"at statement {done + 1} of {progress.total}"
    )
    leftover = (
        f"; the INVALID index {progress.leftover_index} is left (the next run "
        "drops it before building it again)"
        if progress.leftover_index
        else ""
    )
    return (
        f"{name} (no-transaction) stopped {where}: {ran}; its history row is "
        f"marked failed until `schemactl repair`{leftover}"
    )


def _statement_messages(
    source: ParsedSource, *, batch: bool = True
) -> Iterator[_Message]:
    """Yield the messages of a transactional file, one at a time (a seed file's
    messages are never all in memory): BEGIN glued onto the first, so a
    one-statement migration costs one round trip before its bookkeeping;
    consecutive statements together in a large file, within the batch limits
    (batch=False: one statement per message; see _BATCH_THRESHOLD).

    COPY FROM STDIN needs the copy protocol: it is a message of its own (and
    BEGIN is then sent alone when it comes first).
    """
    large = len(source.statements) > _BATCH_THRESHOLD
    limit = _BATCH_STATEMENTS if batch and large else 1
    texts: list[str] = [_BEGIN]
    parts: list[_Part] = []
    size = len(_BEGIN)
    for number, statement in enumerate(source.statements, start=1):
        full = parts and (len(parts) >= limit or size >= _BATCH_CHARACTERS)
        if statement.is_copy_from_stdin or full:
            if parts or texts:
                yield _Message("".join(texts), tuple(parts))
            texts, parts, size = [], [], 0
        if statement.is_copy_from_stdin:
            yield _Message(statement.text, (_Part(number, statement, 0),))
            continue
        if parts:
            texts.append(_SEPARATOR)
            size += len(_SEPARATOR)
        parts.append(_Part(number, statement, size))
        texts.append(statement.text)
        size += len(statement.text)
    if parts or texts:
        yield _Message("".join(texts), tuple(parts))


def _send(cur: psycopg.Cursor[Any], message: _Message) -> None:
    # File text is the one query that is not a literal: the user's SQL, sent
    # unchanged and without parameters (simple protocol, `%` not interpreted).
    first = message.first
    if first is not None and first.statement.is_copy_from_stdin:
        with cur.copy(message.text) as copy:
            copy.write(first.statement.copy_data or "")
        return
    cur.execute(message.text)


def _joined(*statements: str | None) -> str:
    """Return the statements as one message (the ones that are not None)."""
    return ";\n".join(s for s in statements if s is not None)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _migration_failed(
    exc: psycopg.Error,
    path: Path,
    source: ParsedSource,
    statement: Statement,
    number: int,
    transactional: bool,
    *,
    lead: int = 0,
) -> MigrationFailed:
    diag = exc.diag
    offset = statement.offset
    position = diag.statement_position
    if position and 0 <= int(position) - 1 - lead < len(statement.text):
        # The position counts from the start of the message, which may carry
        # `lead` characters of BEGIN before the statement's own text.
        offset += int(position) - 1 - lead
    line, column = position_to_line_column(source.text, offset)
    detail = "\n".join(part for part in (diag.message_detail, diag.context) if part)
    return MigrationFailed(
        diag.message_primary or str(exc).strip(),
        path=path,
        line=line,
        column=column,
        statement_number=number,
        statements_done=number - 1,
        sqlstate=diag.sqlstate,
        detail=detail or None,
        hint=diag.message_hint,
        source_line=line_at(source.text, line),
        transactional=transactional,
    )


# For errors of schemactl's own statements sent between a file's statements.
_EMPTY_SOURCE = ParsedSource(text="", statements=[], no_transaction=True, checksum="")
