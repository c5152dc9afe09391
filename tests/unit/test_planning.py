from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemactl.core.model import HistoryRow, MigrationFile, State
from schemactl.core.planning import build_status, find_drift, plan_migrate
from schemactl.errors import DriftError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def file(version: int, checksum: str = "c") -> MigrationFile:
    return MigrationFile(
        version, f"m{version}", f"{version:03}_m{version}.sql", checksum
    )


def row(version: int, checksum: str = "c", success: bool = True) -> HistoryRow:
    return HistoryRow(version, f"m{version}", checksum, NOW, "me", 1, success)


def states(files, rows):
    return [(e.version, e.state) for e in build_status(files, rows)]


def test_fresh_database_everything_pending():
    assert states([file(1), file(2)], []) == [(1, State.PENDING), (2, State.PENDING)]


def test_applied_and_pending():
    assert states([file(1), file(2)], [row(1)]) == [
        (1, State.APPLIED),
        (2, State.PENDING),
    ]


def test_edited_file_is_a_checksum_mismatch():
    assert states([file(1, "new")], [row(1, "old")]) == [(1, State.CHECKSUM_MISMATCH)]


def test_deleted_file_is_missing():
    assert states([file(2)], [row(1), row(2)]) == [
        (1, State.MISSING_FILE),
        (2, State.APPLIED),
    ]


def test_failed_row_is_failed_even_if_the_file_matches():
    assert states([file(1)], [row(1, success=False)]) == [(1, State.FAILED)]


def test_pending_below_the_highest_applied_is_out_of_order():
    assert states([file(1), file(2), file(3)], [row(1), row(3)]) == [
        (1, State.APPLIED),
        (2, State.OUT_OF_ORDER),
        (3, State.APPLIED),
    ]


def test_drift_excludes_out_of_order_only_when_allowed():
    entries = build_status([file(1), file(2)], [row(2)])
    assert [e.version for e in find_drift(entries)] == [1]
    assert find_drift(entries, allow_out_of_order=True) == []


def test_plan_applies_pending_in_ascending_order():
    plan = plan_migrate([file(3), file(1), file(2)], [row(1)])
    assert [m.version for m in plan.to_apply] == [2, 3]


def test_plan_stops_at_the_target():
    plan = plan_migrate([file(1), file(2), file(3)], [], target=2)
    assert [m.version for m in plan.to_apply] == [1, 2]


@pytest.mark.parametrize(
    ("files", "rows", "state"),
    [
        ([file(1, "new")], [row(1, "old")], State.CHECKSUM_MISMATCH),
        ([file(2)], [row(1)], State.MISSING_FILE),
        ([file(1)], [row(1, success=False)], State.FAILED),
        ([file(1), file(2)], [row(2)], State.OUT_OF_ORDER),
    ],
    ids=["edited file", "missing file", "failed row", "out of order"],
)
def test_plan_refuses_on_drift(files, rows, state):
    with pytest.raises(DriftError) as caught:
        plan_migrate(files, rows)
    assert [e.state for e in caught.value.drift] == [state]


def test_plan_applies_out_of_order_when_allowed():
    plan = plan_migrate([file(1), file(2), file(3)], [row(2)], allow_out_of_order=True)
    assert [m.version for m in plan.to_apply] == [1, 3]


def test_nothing_to_do():
    assert plan_migrate([file(1)], [row(1)]).to_apply == []
