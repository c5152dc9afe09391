"""Compare migration files with history rows: status, drift and the migrate plan.

Pure: takes values, returns values. A missing history table reads as no rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemactl.core.model import HistoryRow, MigrationFile, State, StatusEntry
from schemactl.errors import DriftError


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
