"""Compare migration files with history rows: status, drift and the migrate plan.

Pure: takes values, returns values. A missing history table reads as no rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schemactl.core.model import HistoryRow, MigrationFile, State, StatusEntry
from schemactl.errors import DriftError, MigrationDirError, SchemactlError


def build_status(
    files: Sequence[MigrationFile], rows: Sequence[HistoryRow]
) -> list[StatusEntry]:
    """Return one entry per version found in the files or the history, ascending."""
    files_by_version = {f.version: f for f in files}
    rows_by_version = {r.version: r for r in rows}
    highest_applied = max((r.version for r in rows), default=None)
    entries = []
    for version in sorted(files_by_version.keys() | rows_by_version.keys()):
        file = files_by_version.get(version)
        row = rows_by_version.get(version)
        state = _state_of(file, row, highest_applied)
        name = row.name if row is not None else file.name if file is not None else ""
        entries.append(StatusEntry(version, name, state, file, row))
    return entries


def _state_of(
    file: MigrationFile | None, row: HistoryRow | None, highest_applied: int | None
) -> State:
    if row is None:
        assert file is not None
        if highest_applied is not None and file.version < highest_applied:
            return State.OUT_OF_ORDER
        return State.PENDING
    if not row.success:
        return State.FAILED
    if file is None:
        return State.MISSING_FILE
    if file.checksum != row.checksum:
        return State.CHECKSUM_MISMATCH
    return State.APPLIED


def find_drift(
    entries: Sequence[StatusEntry], *, allow_out_of_order: bool = False
) -> list[StatusEntry]:
    """Return the entries that make migrate refuse and verify fail."""
    return [
        entry
        for entry in entries
        if entry.is_drift
        and not (allow_out_of_order and entry.state is State.OUT_OF_ORDER)
    ]


def find_pending(entries: Sequence[StatusEntry]) -> list[StatusEntry]:
    """Return the entries that have a file and no history row."""
    return [e for e in entries if e.state in (State.PENDING, State.OUT_OF_ORDER)]


@dataclass(frozen=True, slots=True)
class MigratePlan:
    """What migrate will apply, in order, and how far it was asked to go."""

    to_apply: list[MigrationFile]
    target: int | None


def plan_migrate(
    files: Sequence[MigrationFile],
    rows: Sequence[HistoryRow],
    *,
    target: int | None = None,
    allow_out_of_order: bool = False,
) -> MigratePlan:
    """Return the pending files to apply, ascending, up to target when given.

    Raises:
        DriftError: when the history shows drift (see find_drift).
    """
    entries = build_status(files, rows)
    drift = find_drift(entries, allow_out_of_order=allow_out_of_order)
    if drift:
        raise DriftError(drift)
    to_apply = [
        entry.file
        for entry in find_pending(entries)
        if entry.file is not None and (target is None or entry.version <= target)
    ]
    return MigratePlan(to_apply=to_apply, target=target)


@dataclass(frozen=True, slots=True)
class RollbackStep:
    """One applied migration to revert with its down file."""

    migration: MigrationFile
    down_path: Path


def plan_rollback(
    files: Sequence[MigrationFile],
    rows: Sequence[HistoryRow],
    *,
    steps: int | None = None,
    target: int | None = None,
) -> list[RollbackStep]:
    """Return the applied migrations to revert, newest first.

    With target, every applied version above it; otherwise the newest `steps`
    (default 1).

    Raises:
        DriftError: when applied history shows drift (repair first).
        MigrationDirError: naming the first up file whose down file is missing.
    """
    entries = build_status(files, rows)
    drift = find_drift(entries, allow_out_of_order=True)
    if drift:
        raise DriftError(drift, verb="roll back")
    applied = [e.file for e in reversed(entries) if e.row is not None and e.file]
    if target is not None:
        chosen = [m for m in applied if m.version > target]
    else:
        chosen = applied[: 1 if steps is None else steps]
    missing = [m for m in chosen if m.down_path is None]
    if missing:
        names = ", ".join(f"{m.path.stem}.down.sql" for m in missing)
        raise MigrationDirError(
            f"cannot roll back version {missing[0].version}: down file "
            f"{missing[0].path.stem}.down.sql is missing; nothing was rolled back"
            + (
                f" (missing too: {names.split(', ', 1)[1]})" if len(missing) > 1 else ""
            ),
            path=missing[0].path,
        )
    return [RollbackStep(m, m.down_path) for m in chosen if m.down_path is not None]


def plan_baseline(
    files: Sequence[MigrationFile], rows: Sequence[HistoryRow], *, version: int
) -> list[MigrationFile]:
    """Return the files to record as applied without running them (all up to version).

    Raises:
        SchemactlError: when the history is not empty or no file is at or below
            version.
    """
    if rows:
        raise SchemactlError(
            f"refusing to baseline: the history already has {len(rows)} "
            f"{'row' if len(rows) == 1 else 'rows'}",
            hint="baseline is for a database built without schemactl "
            "(e.g. with psql -f); use migrate on a database schemactl manages",
        )
    chosen = [f for f in files if f.version <= version]
    if not chosen:
        raise SchemactlError(f"no migration file at or below version {version}")
    return chosen


@dataclass(frozen=True, slots=True)
class RepairPlan:
    """What repair will change in the history table."""

    realign: list[StatusEntry]
    delete_failed: list[StatusEntry]
    left_missing: list[StatusEntry]
    # A version whose file now has another name: another migration took the
    # number (two branches both added it). Realigning would record it as
    # applied though it never ran: left alone, to be renumbered.
    left_renamed: list[StatusEntry] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """Return True when there is nothing to change."""
        return not self.realign and not self.delete_failed


def plan_repair(
    files: Sequence[MigrationFile], rows: Sequence[HistoryRow]
) -> RepairPlan:
    """Return the checksum realignments and failed-row deletions repair would make.

    Rows whose file is missing are reported, not changed: restore the file, or
    remove the row yourself if the migration really is gone.
    """
    entries = build_status(files, rows)
    mismatched = [e for e in entries if e.state is State.CHECKSUM_MISMATCH]
    return RepairPlan(
        realign=[e for e in mismatched if not is_renamed(e)],
        delete_failed=[e for e in entries if e.state is State.FAILED],
        left_missing=[e for e in entries if e.state is State.MISSING_FILE],
        left_renamed=[e for e in mismatched if is_renamed(e)],
    )


def is_renamed(entry: StatusEntry) -> bool:
    """Return True when the version's file has another name than the applied
    one (another migration took the number)."""
    return (
        entry.file is not None
        and entry.row is not None
        and entry.file.name != entry.row.name
    )
