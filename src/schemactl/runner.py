"""The use cases behind the commands: migrate, status, verify.

Each returns a result object and reports progress through an observer; nothing here
prints. Imports the core and db, never click or rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemactl import db
from schemactl.config import Settings
from schemactl.core.discovery import (
    ParsedSource,
    discover_migrations,
    parse_source,
    read_source,
)
from schemactl.core.model import MigrationFile, StatusEntry
from schemactl.core.planning import (
    build_status,
    find_drift,
    find_pending,
    plan_migrate,
)
from schemactl.errors import EXIT_FAILED, EXIT_OK, MigrationDirError


class MigrateObserver:
    """Receives progress while migrate runs; the default ignores everything."""

    def lock_waiting(self, holder: db.LockHolder | None) -> None:
        """Another session holds the migration lock; called on every poll."""

    def migration_started(
        self, migration: MigrationFile, index: int, total: int
    ) -> None:
        """A migration is about to run (index is 1-based)."""

    def migration_applied(self, migration: MigrationFile, execution_ms: int) -> None:
        """A migration and its history row are committed."""


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A migration migrate applied, with how long it ran."""

    migration: MigrationFile
    execution_ms: int


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What migrate did (or, with dry_run, would do)."""

    planned: list[MigrationFile]
    applied: list[AppliedMigration]
    dry_run: bool
    current_version: int | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Every version from files and history, with its state."""

    table: str
    entries: list[StatusEntry]

    @property
    def current_version(self) -> int | None:
        """Return the highest applied version, or None."""
        return max((e.version for e in self.entries if e.row is not None), default=None)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The findings of verify; exit_code holds the policy (black's Report)."""

    table: str
    entries: list[StatusEntry]
    strict: bool
    allow_out_of_order: bool = False
    drift: list[StatusEntry] = field(default_factory=list)
    pending: list[StatusEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when CI should pass."""
        return not self.drift and not (self.strict and self.pending)

    @property
    def exit_code(self) -> int:
        """Return 0 when ok, else 1 (drift, or pending under --strict)."""
        return EXIT_OK if self.ok else EXIT_FAILED


def load_source(migration: MigrationFile) -> ParsedSource:
    """Re-read a migration file just before it runs, and check it is unchanged.

    Raises:
        MigrationDirError: when the file changed since discovery or breaks a rule.
    """
    source = parse_source(read_source(migration.path), migration.path)
    if source.checksum != migration.checksum:
        raise MigrationDirError(
            "file changed while schemactl was running; nothing of it was applied",
            path=migration.path,
        )
    return source


def migrate(
    settings: Settings,
    *,
    target: int | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
    observer: MigrateObserver | None = None,
) -> MigrateResult:
    """Apply pending migrations in ascending order under the advisory lock.

    Raises:
        MigrationDirError: for an invalid migrations directory (before connecting).
        ConnectError, LockTimeout: when the server or the lock cannot be had.
        DriftError: when drift exists; nothing is applied.
        MigrationFailed: when a statement fails; earlier migrations stay applied.
    """
    observer = observer or MigrateObserver()
    files = discover_migrations(settings.directory)
    with db.connect(settings) as conn:
        if dry_run:
            rows = db.read_history(conn, settings.table)
            plan = plan_migrate(
                files, rows, target=target, allow_out_of_order=allow_out_of_order
            )
            current = max((r.version for r in rows), default=None)
            return MigrateResult(
                plan.to_apply, [], dry_run=True, current_version=current
            )
        with db.advisory_lock(
            conn,
            settings.table,
            timeout=settings.lock_timeout,
            on_wait=observer.lock_waiting,
        ):
            db.ensure_history_table(conn, settings.table)
            rows = db.read_history(conn, settings.table)
            plan = plan_migrate(
                files, rows, target=target, allow_out_of_order=allow_out_of_order
            )
            applied = _apply_all(conn, settings, plan.to_apply, observer)
            current = max(
                [r.version for r in rows] + [a.migration.version for a in applied],
                default=None,
            )
    return MigrateResult(plan.to_apply, applied, dry_run=False, current_version=current)


def _apply_all(
    conn: db.Connection,
    settings: Settings,
    migrations: list[MigrationFile],
    observer: MigrateObserver,
) -> list[AppliedMigration]:
    applied = []
    for index, migration in enumerate(migrations, start=1):
        observer.migration_started(migration, index, len(migrations))
        source = load_source(migration)
        execution_ms = db.apply_migration(conn, settings.table, migration, source)
        observer.migration_applied(migration, execution_ms)
        applied.append(AppliedMigration(migration, execution_ms))
    return applied


def status(settings: Settings) -> StatusReport:
    """Return every version with its state. Read-only: no lock, creates nothing.

    Raises:
        MigrationDirError, ConnectError: as for migrate.
    """
    files = discover_migrations(settings.directory)
    with db.connect(settings) as conn:
        rows = db.read_history(conn, settings.table)
    return StatusReport(str(settings.table), build_status(files, rows))


def verify(
    settings: Settings, *, strict: bool = False, allow_out_of_order: bool = False
) -> VerifyReport:
    """Check for drift (and, with strict, pending migrations). Read-only.

    Raises:
        MigrationDirError, ConnectError: as for migrate.
    """
    report = status(settings)
    return VerifyReport(
        table=report.table,
        entries=report.entries,
        strict=strict,
        allow_out_of_order=allow_out_of_order,
        drift=find_drift(report.entries, allow_out_of_order=allow_out_of_order),
        pending=find_pending(report.entries),
    )
