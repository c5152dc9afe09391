"""Values shared by the core, the database layer and the CLI. Stdlib only.

The records built once per file or per history row (MigrationFile, HistoryRow,
StatusEntry) are NamedTuples: immutable like a frozen dataclass, and built in a
third of the time (a frozen dataclass sets each field through
``object.__setattr__``), which `status` on 10,000 files pays 30,000 times.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple


class MigrationFile(NamedTuple):
    """An up migration file on disk; its text is re-read when it runs.

    Locations are plain strings: building a Path per file costs more than reading
    the file (status on 10,000 files). `path` makes one when a file runs or fails.
    """

    version: int
    name: str
    location: str
    checksum: str
    no_transaction: bool = False
    down_location: str | None = None

    @property
    def path(self) -> Path:
        """Return the up file's path."""
        return Path(self.location)

    @property
    def down_path(self) -> Path | None:
        """Return the down file's path, if there is a down file."""
        return Path(self.down_location) if self.down_location is not None else None

    @property
    def label(self) -> str:
        """Return the file name, the way users refer to a migration."""
        return os.path.basename(self.location)  # noqa: PTH119 - strings: see above


class HistoryRow(NamedTuple):
    """One row of the history table."""

    version: int
    name: str
    checksum: str
    applied_at: datetime | None  # NOT NULL, but a table made by hand may allow NULL
    applied_by: str
    execution_ms: int
    success: bool = True


class LogRow(NamedTuple):
    """One row of the audit log: a change schemactl made to the history."""

    id: int
    at: datetime
    history_table: str
    action: str
    version: int
    name: str
    checksum_before: str | None
    checksum_after: str | None
    execution_ms: int | None
    outcome: str
    login_role: str
    application_name: str
    client_addr: str | None


class State(StrEnum):
    """The state of one version, as `status` prints it (contract strings)."""

    APPLIED = "applied"
    PENDING = "pending"
    CHECKSUM_MISMATCH = "checksum mismatch"
    MISSING_FILE = "missing file"
    FAILED = "failed"
    OUT_OF_ORDER = "out of order"


DRIFT_STATES: frozenset[State] = frozenset(
    {State.CHECKSUM_MISMATCH, State.MISSING_FILE, State.FAILED, State.OUT_OF_ORDER}
)


class StatusEntry(NamedTuple):
    """One version seen from both sides: its file (if any) and its history row."""

    version: int
    name: str
    state: State
    file: MigrationFile | None
    row: HistoryRow | None

    @property
    def is_drift(self) -> bool:
        """Return True when this entry makes migrate and verify refuse."""
        return self.state in DRIFT_STATES

    @property
    def applied_at(self) -> datetime | None:
        """Return when the version was applied, or None when it is not."""
        return self.row.applied_at if self.row is not None else None


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The session holding the advisory lock another runner waits for."""

    pid: int
    application_name: str
    client_addr: str | None
    held_seconds: float

    def describe(self) -> str:
        """Return 'pid N, application X, from ADDR, for S s' for messages."""
        origin = self.client_addr or "local socket"
        name = self.application_name or "unnamed"
        return (
            f"pid {self.pid}, application {name}, from {origin}, "
            f"for {self.held_seconds:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class Blocker:
    """A session holding a lock that a migration statement waits for."""

    pid: int
    application_name: str
    state: str
    query: str
    transaction_seconds: float | None

    def describe(self) -> str:
        """Return 'pid N (application X, idle in transaction for S s: QUERY)'."""
        name = self.application_name or "unnamed"
        since = (
            ""
            if self.transaction_seconds is None
            else f" for {self.transaction_seconds:.1f} s"
        )
        query = " ".join(self.query.split())
        if len(query) > 80:
            query = query[:77] + "..."
        return f"pid {self.pid} (application {name}, {self.state}{since}: {query})"


def describe_blockers(blockers: tuple[Blocker, ...]) -> str:
    """Return who blocks, for messages ('an unseen session' when none was seen)."""
    if not blockers:
        return "a session that was not seen in time to name it"
    return "; ".join(blocker.describe() for blocker in blockers)


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """A NOTICE or WARNING the server sent while a migration ran."""

    severity: str
    message: str
    location: str | None

    def describe(self) -> str:
        """Return 'FILE:LINE: WARNING: text', as psql prints it (without 'psql:')."""
        prefix = f"{self.location}: " if self.location else ""
        return f"{prefix}{self.severity}: {self.message}"
