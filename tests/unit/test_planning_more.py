"""Plans for rollback, baseline and repair."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemactl.core.model import HistoryRow, MigrationFile
from schemactl.core.planning import plan_baseline, plan_repair, plan_rollback
from schemactl.errors import DriftError, MigrationDirError, SchemactlError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def file(version: int, checksum: str = "c", down: bool = True) -> MigrationFile:
    location = f"{version:03}_m{version}.sql"
    down_location = f"{version:03}_m{version}.down.sql" if down else None
    return MigrationFile(
        version, f"m{version}", location, checksum, down_location=down_location
    )


def row(version: int, checksum: str = "c", success: bool = True) -> HistoryRow:
    return HistoryRow(version, f"m{version}", checksum, NOW, "me", 1, success)


FILES = [file(1), file(2), file(3)]
ROWS = [row(1), row(2), row(3)]


def test_rollback_defaults_to_the_newest_one():
    assert [s.migration.version for s in plan_rollback(FILES, ROWS)] == [3]


def test_rollback_steps_newest_first():
    assert [s.migration.version for s in plan_rollback(FILES, ROWS, steps=2)] == [3, 2]


def test_rollback_to_a_version():
    assert [s.migration.version for s in plan_rollback(FILES, ROWS, target=1)] == [3, 2]


def test_rollback_ignores_pending_files():
    plan = plan_rollback([*FILES, file(4)], ROWS, steps=1)
    assert [s.migration.version for s in plan] == [3]


def test_rollback_names_the_file_whose_down_file_is_missing():
    files = [file(1), file(2, down=False), file(3)]
    with pytest.raises(
        MigrationDirError, match=r"002_m2\.down\.sql is missing"
    ) as caught:
        plan_rollback(files, ROWS, target=0)
    assert caught.value.path == Path("002_m2.sql")


def test_rollback_refuses_on_drift():
    with pytest.raises(DriftError):
        plan_rollback(FILES, [row(1), row(2, "edited"), row(3)])


def test_baseline_takes_every_file_up_to_the_version():
    assert [f.version for f in plan_baseline(FILES, [], version=2)] == [1, 2]


def test_baseline_refuses_a_non_empty_history():
    with pytest.raises(SchemactlError, match="refusing to baseline"):
        plan_baseline(FILES, [row(1)], version=2)


def test_baseline_needs_a_file_at_or_below_the_version():
    with pytest.raises(SchemactlError, match="no migration file at or below version 0"):
        plan_baseline(FILES, [], version=0)


def test_repair_plan():
    files = [file(1, "new"), file(2), file(3)]
    rows = [row(1, "old"), row(2), row(3, success=False), row(4)]
    plan = plan_repair(files, rows)
    assert [e.version for e in plan.realign] == [1]
    assert [e.version for e in plan.delete_failed] == [3]
    assert [e.version for e in plan.left_missing] == [4]
    assert not plan.is_empty


def test_repair_plan_empty_when_in_sync():
    assert plan_repair(FILES, ROWS).is_empty
