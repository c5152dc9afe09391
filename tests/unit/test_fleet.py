"""The pure core of many-target runs: naming targets, reading each target's
document, and the worst exit code."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from schemactl.core.fleet import (
    FleetResult,
    Outcome,
    Target,
    TargetResult,
    named_target,
    outcome_of,
    stops_fail_fast,
    worst_exit_code,
)

# Best to worst, as the README's "Many databases" section lists them.
SEVERITY_ORDER = [0, 4, 3, 1, 2, 130]
CODES = st.sampled_from([0, 1, 2, 3, 4, 130, 143, 7, None])


def rank(code: int | None) -> int:
    if code is None:
        return -1
    if code in (130, 143):
        return SEVERITY_ORDER.index(130)
    return SEVERITY_ORDER.index(code if code in SEVERITY_ORDER else 1)


@given(st.lists(CODES))
@example([])
@example([None, None])
@example([4, 3])  # unavailable outranks pending
@example([3, 1])  # a failure outranks an unreachable target
@example([1, 2])  # an invalid file outranks a failed one
@example([2, 143])  # a cancel outranks everything
@example([7])  # an unknown code counts as a failure
def test_the_worst_code_is_one_of_the_codes_and_none_ranks_higher(codes):
    worst = worst_exit_code(codes)
    known = [c for c in codes if c is not None]
    if not known:
        assert worst == 0
        return
    assert worst in [c if c in SEVERITY_ORDER or c == 143 else 1 for c in known]
    assert all(rank(c) <= rank(worst) for c in known)
    assert worst_exit_code(list(reversed(codes))) in (worst, 130, 143)


@pytest.mark.parametrize(
    ("text", "label", "conninfo"),
    [
        ("tenant_a", "tenant_a", "service='tenant_a'"),
        ("it's", "it's", "service='it\\'s'"),
        (
            "postgresql://app:pw@db/app",
            "postgresql://app:****@db/app",
            "postgresql://app:pw@db/app",
        ),
        ("host=db password=pw", "host=db password=****", "host=db password=pw"),
    ],
)
def test_a_bare_word_is_a_service_and_a_url_is_shown_masked(text, label, conninfo):
    assert named_target(text) == Target(label, conninfo)


@pytest.mark.parametrize(
    ("code", "document", "outcome"),
    [
        (0, {}, Outcome.OK),
        (4, {}, Outcome.PENDING),
        (3, {}, Outcome.UNAVAILABLE),
        (1, {}, Outcome.FAILED),
        (2, {}, Outcome.USAGE),
        (143, None, Outcome.CANCELLED),  # killed before it could print one
        (130, {}, Outcome.CANCELLED),
        (1, None, Outcome.CRASHED),
        (0, None, Outcome.CRASHED),
    ],
)
def test_outcome_of_a_finished_target(code, document, outcome):
    assert outcome_of(code, document) is outcome


def test_fail_fast_stops_on_failures_but_not_on_pending_files():
    stopping = {outcome for outcome in Outcome if stops_fail_fast(outcome)}
    assert stopping == {
        Outcome.UNAVAILABLE,
        Outcome.FAILED,
        Outcome.USAGE,
        Outcome.CANCELLED,
        Outcome.CRASHED,
    }


TARGET = Target("t", "dbname=t")


def result(
    code: int | None, document: dict[str, Any] | None, **extra: Any
) -> TargetResult:
    outcome = Outcome.SKIPPED if code is None else outcome_of(code, document)
    return TargetResult(TARGET, outcome, code, 1.0, document, **extra)


def test_versions_after_a_failure_count_what_was_applied_before_it():
    failed = result(
        1,
        {
            "command": "migrate",
            "previous_version": 1,
            "applied": [{"version": 2}, {"version": 3}],
            "error": {
                "message": 'relation "x" already exists\nmore',
                "file": "sql/004_x.sql",
                "line": 3,
                "column": 5,
            },
        },
    )
    assert (failed.version_before, failed.version_after) == (1, 3)
    assert failed.versions_known
    assert failed.describe() == 'sql/004_x.sql:3:5: relation "x" already exists'


def test_a_target_that_never_read_its_history_has_unknown_versions():
    unreachable = result(3, {"command": "migrate", "error": {"message": "no"}})
    assert not unreachable.versions_known
    assert (unreachable.version_before, unreachable.version_after) == (None, None)
    assert unreachable.describe() == "no"


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (
            {"command": "migrate", "applied": [{}, {}], "current_version": 2},
            "applied 2",
        ),
        ({"command": "migrate", "applied": [], "current_version": 2}, "up to date"),
        ({"command": "migrate", "dry_run": True, "planned": [{}]}, "would apply 1"),
        (
            {
                "command": "status",
                "migrations": [{"state": "applied"}, {"state": "pending"}],
            },
            "1 pending",
        ),
        ({"command": "status", "migrations": [{"state": "failed"}]}, "drift in 1"),
        ({"command": "verify", "drift": [], "pending": []}, "no drift"),
        ({"command": "verify", "drift": [{}], "pending": [{}]}, "drift in 1"),
    ],
)
def test_describe_a_successful_run(document, said):
    assert result(0, document).describe() == said


def test_crashed_and_skipped_targets_say_why():
    assert result(1, None, last_words="Segfault").describe() == ("no report: Segfault")
    assert result(None, None, last_words="cancelled").describe() == (
        "not started: cancelled"
    )


def test_a_cancelled_fleet_exits_as_cancelled_and_counts_outcomes():
    fleet = FleetResult(
        "migrate",
        [result(0, {}), result(None, None), result(3, {})],
        jobs=2,
        fail_fast=False,
        cancelled_by=143,
    )
    assert fleet.exit_code == 143
    assert fleet.counts() == {"ok": 1, "skipped": 1, "unavailable": 1}
