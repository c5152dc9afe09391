"""SchemactlError and its subclasses, each with its contract exit code. Stdlib only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from schemactl.core.model import StatusEntry
    from schemactl.interrupts import Interrupted

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
# Only with `status --exit-code`: migrations are pending, and there is no drift.
EXIT_PENDING = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class SchemactlError(Exception):
    """Base of every error schemactl reports to a user.

    ``state`` says what the error left behind in the database (rendered as its own
    line), for errors raised once something may have changed.
    """

    exit_code: int = EXIT_FAILED
    # FILE, LINE, COLUMN of the statement the error happened at, when there
    # was one (for --format json and github; the message names it too).
    where: tuple[str, int, int] | None = None

    def __init__(
        self, message: str, *, hint: str | None = None, state: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.state = state

    def at(self, where: tuple[str, int, int] | None) -> Self:
        """Return this error with the statement it happened at."""
        self.where = where
        return self


class UsageError(SchemactlError):
    """A bad option value, such as an invalid --table."""

    exit_code = EXIT_USAGE


class MigrationDirError(SchemactlError):
    """The migrations directory or one of its files is invalid."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line
        self.column = column

    @property
    def location(self) -> str:
        """Return ``FILE[:LINE[:COLUMN]]`` for the message prefix, or ''."""
        if self.path is None:
            return ""
        parts = [str(self.path)]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class DriftError(SchemactlError):
    """Applied history and files disagree; migrate refuses to run."""

    exit_code = EXIT_FAILED

    def __init__(self, drift: Sequence[StatusEntry], *, verb: str = "migrate") -> None:
        count = len(drift)
        noun = "migration" if count == 1 else "migrations"
        super().__init__(
            f"refusing to {verb}: drift found in {count} {noun}",
            hint=drift_hint(drift),
        )
        self.drift = list(drift)


# What to do about each kind of drift (State values). An edited file is put
# back, not blessed: `repair` would record its checksum and run none of it.
_DRIFT_ADVICE = {
    "checksum mismatch": "restore each edited file as it was applied (git "
    "checkout) and put the change in a new migration; `schemactl repair` only "
    "records a file's new checksum and runs none of its SQL",
    "missing file": "restore each missing file: its migration stays in the database",
    "failed": "a no-transaction file stopped part-way: finish or undo its "
    "statements by hand, then `schemactl repair` deletes its failed row so "
    "migrate runs it again",
    "out of order": "a pending version is below the highest applied one: "
    "renumber it above, or pass --allow-out-of-order",
}


def drift_hint(drift: Sequence[StatusEntry]) -> str:
    """Return the advice for the kinds of drift found, in a fixed order."""
    states = {entry.state.value for entry in drift}
    return "; ".join(
        advice for state, advice in _DRIFT_ADVICE.items() if state in states
    )


class MigrationFailed(SchemactlError):
    """A statement of a migration file failed on the server."""

    exit_code = EXIT_FAILED

    def __init__(
        self,
        message: str,
        *,
        path: Path,
        line: int,
        column: int,
        statement_number: int,
        statements_done: int,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        source_line: str = "",
        transactional: bool = True,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line
        self.column = column
        self.statement_number = statement_number
        self.statements_done = statements_done
        self.sqlstate = sqlstate
        self.detail = detail
        self.source_line = source_line
        self.transactional = transactional

    @property
    def location(self) -> str:
        """Return ``FILE:LINE:COLUMN`` of the failing statement."""
        return f"{self.path}:{self.line}:{self.column}"


class ConnectError(SchemactlError):
    """The server cannot be reached or refuses the login."""

    exit_code = EXIT_UNAVAILABLE


class LockTimeout(SchemactlError):
    """Another runner held the advisory lock for longer than --lock-timeout."""

    exit_code = EXIT_UNAVAILABLE


class ReadOnlyTarget(SchemactlError):
    """The target database refuses writes (a standby, or read-only by default)."""

    exit_code = EXIT_UNAVAILABLE


class PoolerNotSupported(SchemactlError):
    """The target is reached through a connection pooler that was not declared
    a session pooler (--pooler session), or that hands a server connection to a
    client per transaction or per statement (PgBouncer's transaction and
    statement pooling), or whose mode could not be checked: the session
    advisory lock that keeps runners apart cannot be relied on through it."""

    exit_code = EXIT_UNAVAILABLE


class ConnectionLost(SchemactlError):
    """The connection ended while a command was using it (backend terminated,
    server restarted, network lost)."""

    exit_code = EXIT_UNAVAILABLE


class MigrationLockLost(SchemactlError):
    """The connection holding the migration lock ended during the run: another
    runner could take the lock, so nothing more is committed."""

    exit_code = EXIT_UNAVAILABLE


class TableLockTimeout(SchemactlError):
    """A statement gave up waiting for a table lock (SQLSTATE 55P03) after every
    retry; nothing of the failing file is applied."""

    exit_code = EXIT_UNAVAILABLE


class Cancelled(SchemactlError):
    """SIGINT or SIGTERM stopped the run; the message says what was kept."""

    def __init__(self, message: str, *, signal_number: int) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number

    @classmethod
    def nothing_changed(cls, signal: Interrupted) -> Cancelled:
        """A signal that stopped the command before it changed anything."""
        return cls(
            f"cancelled by {signal.signal_name}: nothing was changed",
            signal_number=signal.signal_number,
        )


class PlanChanged(SchemactlError):
    """The history changed between the plan a person approved and the lock."""

    exit_code = EXIT_FAILED

    def __init__(self, verb: str) -> None:
        super().__init__(
            f"the history or the files changed while {verb} waited for your answer; "
            "what you approved is no longer the plan",
            hint=f"run {verb} again to see the new plan",
            state="nothing was changed",
        )
