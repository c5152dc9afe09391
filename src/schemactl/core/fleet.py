"""Many targets, one command: which databases, and what each one's run came to.
Pure: no I/O, no psycopg.

A fleet run starts one `schemactl` process per target (fleet.py); each prints
its own JSON document. This module reads those documents: the outcome of each
target, the versions before and after, and the exit code of the whole run,
which is the worst of the targets'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from schemactl.config import quote_conninfo
from schemactl.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from schemactl.redaction import mask_url


@dataclass(frozen=True, slots=True)
class Target:
    """One database of a fleet: `label` is what output shows (never a
    password), `conninfo` what the run connects with (may hold one)."""

    label: str
    conninfo: str


def named_target(text: str) -> Target:
    """Return the target a --target value (or a group's `targets` entry)
    names: a URL or a conninfo string as it is, shown with its password
    masked; a bare word is a libpq service name (pg_service.conf)."""
    if is_conninfo(text):
        return Target(mask_url(text), text)
    return Target(text, f"service={quote_conninfo(text)}")


def is_conninfo(text: str) -> bool:
    """True when a listed value is a whole connection string (a URL or
    ``key=value`` pairs) rather than the name of a database."""
    return "=" in text or "://" in text


class Outcome(Enum):
    """What one target's run came to, from best to worst."""

    OK = "ok"
    PENDING = "pending"  # status --exit-code, verify --strict: files to apply
    SKIPPED = "skipped"  # never started: --fail-fast, or the run was cancelled
    UNAVAILABLE = "unavailable"  # exit 3: unreachable, locked, read-only, lost
    FAILED = "failed"  # exit 1: a migration failed, or drift
    USAGE = "usage"  # exit 2: an invalid file or option
    CANCELLED = "cancelled"  # SIGINT or SIGTERM
    CRASHED = "crashed"  # the process printed no document


# The exit code of a fleet run is the worst of its targets' codes, in this
# order: a target a person must repair (a failed file, drift) outranks one that
# can simply be retried (unreachable, locked); a cancel outranks everything,
# because the run did not finish. Pending (4) is the mildest failure.
_SEVERITY = {
    EXIT_OK: 0,
    EXIT_PENDING: 1,
    EXIT_UNAVAILABLE: 2,
    EXIT_FAILED: 3,
    EXIT_USAGE: 4,
    EXIT_SIGINT: 5,
    EXIT_SIGTERM: 5,
}


_CANCEL_CODES = (EXIT_SIGINT, EXIT_SIGTERM)


def worst_exit_code(codes: Iterable[int | None]) -> int:
    """Return the worst exit code (0 for none; None, a target never started,
    counts as nothing); an unknown code counts as 1."""
    worst = EXIT_OK
    for code in codes:
        if code is None:
            continue
        known = code if code in _SEVERITY else EXIT_FAILED
        if _SEVERITY[known] > _SEVERITY[worst]:
            worst = known
    return worst


def outcome_of(exit_code: int, document: Mapping[str, Any] | None) -> Outcome:
    """Classify a finished target by its exit code (and whether it printed a
    document at all)."""
    if exit_code in (EXIT_SIGINT, EXIT_SIGTERM):
        return Outcome.CANCELLED
    if document is None:
        return Outcome.CRASHED
    return {
        EXIT_OK: Outcome.OK,
        EXIT_PENDING: Outcome.PENDING,
        EXIT_UNAVAILABLE: Outcome.UNAVAILABLE,
        EXIT_USAGE: Outcome.USAGE,
        EXIT_SIGINT: Outcome.CANCELLED,
        EXIT_SIGTERM: Outcome.CANCELLED,
    }.get(exit_code, Outcome.FAILED)


def stops_fail_fast(outcome: Outcome) -> bool:
    """True when --fail-fast starts no further target after this outcome
    (pending files are a finding, not a failure)."""
    return outcome not in (Outcome.OK, Outcome.PENDING, Outcome.SKIPPED)


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target's run: its outcome, versions, time and the document its
    process printed (None when skipped, or when it printed none)."""

    target: Target
    outcome: Outcome
    exit_code: int | None  # None: never started
    duration: float = 0.0
    document: Mapping[str, Any] | None = None
    # The last line the process wrote on stderr, for a run without a document;
    # for a target never started, why.
    last_words: str = ""

    @property
    def versions_known(self) -> bool:
        """True when the run read the history (else the versions are None
        because nobody knows them, not because none is applied)."""
        doc = self.document or {}
        return "previous_version" in doc or "current_version" in doc

    @property
    def version_before(self) -> int | None:
        """Return the highest applied version before the run (None: none, or
        unknown)."""
        doc = self.document or {}
        if "previous_version" in doc:
            return _version(doc["previous_version"])
        return _version(doc.get("current_version"))

    @property
    def version_after(self) -> int | None:
        """Return the highest applied version after the run: what migrate
        reports, or, after a failure, the highest it applied before it."""
        doc = self.document or {}
        if "current_version" in doc:
            return _version(doc["current_version"])
        applied = [
            version
            for item in doc.get("applied") or []
            if (version := _version(item.get("version"))) is not None
        ]
        before = self.version_before
        return max([*applied, *([] if before is None else [before])], default=None)

    @property
    def error(self) -> Mapping[str, Any] | None:
        """Return the error object of the target's document, if any."""
        doc = self.document or {}
        error = doc.get("error")
        return error if isinstance(error, Mapping) else None

    def describe(self) -> str:
        """Return one line on what happened, for the table and progress."""
        error = self.error
        if error is not None:
            message = str(error.get("message") or self.outcome.value)
            first = message.splitlines()[0] if message else message
            if error.get("file") and error.get("line"):
                where = f"{error['file']}:{error['line']}:{error.get('column') or 1}"
                return f"{where}: {first}"
            return first
        if self.outcome is Outcome.SKIPPED:
            return (
                f"not started: {self.last_words}" if self.last_words else "not started"
            )
        if self.outcome is Outcome.CRASHED:
            return f"no report: {self.last_words or '(nothing on stderr)'}"
        return _describe_success(self.document or {})


def _describe_success(doc: Mapping[str, Any]) -> str:
    command = doc.get("command")
    if command == "migrate":
        planned = len(doc.get("planned") or [])
        if doc.get("dry_run"):
            return f"would apply {planned}" if planned else "up to date"
        applied = len(doc.get("applied") or [])
        return f"applied {applied}" if applied else "up to date"
    if command == "status":
        pending = sum(
            1 for entry in doc.get("migrations") or [] if entry["state"] == "pending"
        )
        drift = sum(
            1
            for entry in doc.get("migrations") or []
            if entry["state"] not in ("applied", "pending")
        )
        if drift:
            return f"drift in {drift}"
        return f"{pending} pending" if pending else "up to date"
    if command == "verify":
        drift = len(doc.get("drift") or [])
        pending = len(doc.get("pending") or [])
        if drift:
            return f"drift in {drift}"
        return f"{pending} pending" if pending else "no drift"
    return "done"


def _version(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class FleetResult:
    """Every target's result, in the order the targets were listed."""

    command: str
    results: list[TargetResult]
    jobs: int
    fail_fast: bool
    # 130 or 143 when a signal stopped the run, else None.
    cancelled_by: int | None = None

    @property
    def exit_code(self) -> int:
        """Return the worst target's exit code (a cancel counts as the worst).

        A target cancelled while the fleet run was not (someone signalled its
        process) counts as failed: the run itself went on to the end.
        """
        codes = [result.exit_code for result in self.results]
        if self.cancelled_by is None:
            codes = [EXIT_FAILED if code in _CANCEL_CODES else code for code in codes]
        else:
            codes.append(self.cancelled_by)
        return worst_exit_code(codes)

    def counts(self) -> dict[str, int]:
        """Return how many targets ended in each outcome, best first."""
        found = {outcome.value: 0 for outcome in Outcome}
        for result in self.results:
            found[result.outcome.value] += 1
        return {name: count for name, count in found.items() if count}
