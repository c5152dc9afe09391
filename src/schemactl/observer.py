"""The progress callbacks runner calls while it works. Stdlib and core only.

Kept apart from runner.py so that render.py can implement them without importing
the database layer (and psycopg) at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemactl.core.fleet import TargetResult
    from schemactl.core.model import Blocker, LockHolder, MigrationFile, ServerMessage
    from schemactl.core.planning import RollbackStep


class MigrateObserver:
    """Receives progress while migrate or rollback runs; the default ignores it.

    `statement_blocked` is called from the lock watcher's thread; the others from
    the main thread. `statement_started` is called for every statement: keep it
    cheap.
    """

    def target_chosen(self, target: str, table: str) -> None:
        """The command is about to change this database (user@host:port/dbname)."""

    def plan_ready(self, current_version: int | None, planned: int) -> None:
        """migrate made its plan (under the lock, or for a dry run): the
        database is at current_version and `planned` files are to run."""

    def lock_waiting(self, holder: LockHolder | None) -> None:
        """Another session holds the migration lock; called on every poll."""

    def migration_started(
        self, migration: MigrationFile, index: int, total: int
    ) -> None:
        """A migration is about to run (index is 1-based)."""

    def migration_applied(self, migration: MigrationFile, execution_ms: int) -> None:
        """A migration and its history row are committed."""

    def rollback_started(self, step: RollbackStep, index: int, total: int) -> None:
        """A down file is about to run (index is 1-based)."""

    def migration_reverted(self, step: RollbackStep, execution_ms: int) -> None:
        """A down file ran and the history row is gone, committed together."""

    def statement_started(
        self, number: int, total: int, location: Callable[[], str]
    ) -> None:
        """Statement `number` of the file's `total` is about to be sent;
        location() names it as FILE:LINE:COLUMN (computed only when called)."""

    def statement_blocked(
        self, location: str, blockers: tuple[Blocker, ...], waited: float
    ) -> None:
        """A statement has waited `waited` seconds for a lock these sessions hold."""

    def lock_retry(
        self,
        location: str,
        blockers: tuple[Blocker, ...],
        attempt: int,
        retries: int,
        delay: float,
    ) -> None:
        """A file was rolled back after a table lock timeout; retry `attempt` of
        `retries` follows in `delay` seconds."""

    def invalid_index_dropped(self, location: str, index: str) -> None:
        """An INVALID index left by a failed CREATE INDEX CONCURRENTLY was dropped."""

    def audit_log_warning(self, reason: str) -> None:
        """Something about the audit log the user must know (none is kept, or it
        is no longer append-only)."""

    def server_message(self, message: ServerMessage) -> None:
        """The server sent a NOTICE or WARNING while a file ran."""


class FleetObserver:
    """Receives a fleet run's progress (many targets); the default ignores it."""

    def target_finished(self, result: TargetResult, done: int, total: int) -> None:
        """A target's run ended; `done` of `total` have (skipped ones count)."""
