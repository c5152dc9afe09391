"""The read-only use cases: status, verify and log.

Apart from runner.py (the use cases that change the database) so that they load
only the database layer's connection and history modules: not the migration
session, the lock or the SQL splitter, which `status` and `verify` never use
(start-up time is most of what a short command costs). Imports the core and db,
never click or rich; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemactl.config import Settings
from schemactl.core.discovery import discover_migrations
from schemactl.core.model import LogRow, StatusEntry
from schemactl.core.planning import build_status, find_drift, find_pending
from schemactl.db.connection import connect
from schemactl.db.history import audit_log_exists, log_table, read_history, read_log
from schemactl.errors import EXIT_FAILED, EXIT_OK, EXIT_PENDING


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Every version from files and history, with its state."""

    table: str
    entries: list[StatusEntry]

    @property
    def drift(self) -> list[StatusEntry]:
        """Return the versions in drift (what migrate refuses and verify fails on)."""
        return find_drift(self.entries)

    @property
    def exit_code(self) -> int:
        """Return the exit code of `status --exit-code`: 1 on drift, 4 when
        migrations are pending (and nothing drifted), else 0."""
        if self.drift:
            return EXIT_FAILED
        return EXIT_PENDING if find_pending(self.entries) else EXIT_OK

    @property
    def current_version(self) -> int | None:
        """Return the highest applied version, or None."""
        return highest_applied(self.entries)


def highest_applied(entries: list[StatusEntry]) -> int | None:
    """Return the highest version applied in full, or None."""
    return max(
        (e.version for e in entries if e.row is not None and e.row.success),
        default=None,
    )


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
    def current_version(self) -> int | None:
        """Return the highest applied version, or None."""
        return highest_applied(self.entries)

    @property
    def ok(self) -> bool:
        """Return True when CI should pass."""
        return not self.drift and not (self.strict and self.pending)

    @property
    def exit_code(self) -> int:
        """Return 0 when ok, else 1 (drift, or pending under --strict)."""
        return EXIT_OK if self.ok else EXIT_FAILED


def status(settings: Settings) -> StatusReport:
    """Return every version with its state. Read-only: no lock, creates nothing.

    Raises:
        MigrationDirError, ConnectError: as for migrate.
    """
    files = discover_migrations(settings.directory)
    with connect(settings) as conn:
        rows = read_history(conn, settings.table)
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


@dataclass(frozen=True, slots=True)
class LogReport:
    """The audit log: every change schemactl made to the history, oldest first."""

    table: str
    log_table: str
    exists: bool
    rows: list[LogRow]
    limit: int | None = None


def log(settings: Settings, *, limit: int | None = None) -> LogReport:
    """Return the newest `limit` rows of the audit log (all: None). Read-only.

    Raises:
        ConnectError: as for status.
    """
    with connect(settings) as conn:
        exists = audit_log_exists(conn, settings.table)
        rows = read_log(conn, settings.table, limit) if exists else []
    return LogReport(
        str(settings.table), str(log_table(settings.table)), exists, rows, limit
    )
