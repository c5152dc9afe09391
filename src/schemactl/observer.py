"""The progress callbacks runner calls while it works. Stdlib and core only.

Kept apart from runner.py so that render.py can implement them without importing
the database layer (and psycopg) at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemactl.core.model import LockHolder, MigrationFile
    from schemactl.core.planning import RollbackStep


class MigrateObserver:
    """Receives progress while migrate or rollback runs; the default ignores it."""

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
