"""Turn results and errors into text: rich tables and progress on a terminal, plain
lines when piped, JSON documents for --json. The only module that imports rich.

Payload goes to stdout; progress, waiting notices and errors go to stderr.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.status import Status
from rich.table import Table

from schemactl import db
from schemactl.core.model import MigrationFile, StatusEntry
from schemactl.core.planning import RepairPlan, RollbackStep
from schemactl.errors import (
    DriftError,
    MigrationDirError,
    MigrationFailed,
    SchemactlError,
)
from schemactl.runner import (
    MigrateObserver,
    MigrateResult,
    RepairResult,
    RolledBack,
    StatusReport,
    VerifyReport,
)


def make_console(*, stderr: bool = False) -> Console:
    """Return a console that never interprets markup in user text and never wraps."""
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)


def format_version(version: int | None) -> str:
    """Return a version for humans ('none' when nothing is applied)."""
    return "none" if version is None else str(version)


class MigrateProgress(MigrateObserver):
    """Shows migrate's progress: a spinner on a terminal, one line per migration."""

    def __init__(self, out: Console, err: Console) -> None:
        self._out = out
        self._err = err
        self._status: Status | None = None
        self._last_holder_pid: int | None = -1

    def lock_waiting(self, holder: db.LockHolder | None) -> None:
        pid = holder.pid if holder else None
        if pid == self._last_holder_pid:
            return
        self._last_holder_pid = pid
        who = db.describe_lock_holder(holder) if holder else "another session"
        self._err.print(f"waiting for the migration lock held by {who}")

    def migration_started(
        self, migration: MigrationFile, index: int, total: int
    ) -> None:
        if not self._err.is_terminal:
            return
        message = f"applying {migration.label} ({index}/{total})"
        if self._status is None:
            self._status = self._err.status(message)
            self._status.start()
        else:
            self._status.update(message)

    def migration_applied(self, migration: MigrationFile, execution_ms: int) -> None:
        self._out.print(f"applied {migration.label} ({execution_ms} ms)")

    def rollback_started(self, step: RollbackStep, index: int, total: int) -> None:
        self._show_spinner(f"reverting {step.migration.label} ({index}/{total})")

    def migration_reverted(self, step: RollbackStep, execution_ms: int) -> None:
        label, down = step.migration.label, step.down_path.name
        self._out.print(f"reverted {label} with {down} ({execution_ms} ms)")

    def _show_spinner(self, message: str) -> None:
        """Show a spinner on a terminal only; piped output stays plain lines."""
        if not self._err.is_terminal:
            return
        if self._status is None:
            self._status = self._err.status(message)
            self._status.start()
        else:
            self._status.update(message)

    def close(self) -> None:
        """Stop the spinner, if any; call before printing a summary or an error."""
        if self._status is not None:
            self._status.stop()
            self._status = None


def render_migrate(result: MigrateResult, out: Console) -> None:
    """Print what migrate did, or would do with --dry-run."""
    version = format_version(result.current_version)
    if result.dry_run:
        for migration in result.planned:
            out.print(f"would apply {migration.label}")
        count = len(result.planned)
        out.print(
            f"dry run: {count} {_plural(count, 'migration')} pending, nothing changed "
            f"(database at version {version})"
        )
        return
    if not result.applied:
        out.print(f"nothing to migrate (database at version {version})")
        return
    total_ms = sum(a.execution_ms for a in result.applied)
    count = len(result.applied)
    out.print(
        f"applied {count} {_plural(count, 'migration')} in {total_ms} ms "
        f"(database at version {version})"
    )


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _entry_json(entry: StatusEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "name": entry.name,
        "state": str(entry.state),
        "file": str(entry.file.path) if entry.file else None,
        "applied_at": entry.applied_at.isoformat() if entry.applied_at else None,
        "checksum": entry.file.checksum if entry.file else None,
        "applied_checksum": entry.row.checksum if entry.row else None,
        "execution_ms": entry.row.execution_ms if entry.row else None,
    }


def status_json(report: StatusReport) -> str:
    """Return the status document for --json."""
    return json.dumps(
        {
            "table": report.table,
            "current_version": report.current_version,
            "migrations": [_entry_json(e) for e in report.entries],
        },
        indent=2,
    )


def verify_json(report: VerifyReport) -> str:
    """Return the verify document for --json."""
    return json.dumps(
        {
            "table": report.table,
            "ok": report.ok,
            "strict": report.strict,
            "drift": [_entry_json(e) for e in report.drift],
            "pending": [_entry_json(e) for e in report.pending],
        },
        indent=2,
    )


def render_status(report: StatusReport, out: Console) -> None:
    """Print the status table (plain aligned columns when piped)."""
    table = Table(box=box.SIMPLE_HEAD if out.is_terminal else None, pad_edge=False)
    for column in ("version", "name", "state", "applied at"):
        table.add_column(column)
    for entry in report.entries:
        applied = entry.applied_at.isoformat(" ", "seconds") if entry.applied_at else ""
        style = "red" if entry.is_drift else "yellow" if entry.row is None else None
        table.add_row(
            str(entry.version), entry.name, str(entry.state), applied, style=style
        )
    if report.entries:
        out.print(table)
    out.print(
        f"{report.table}: database at version {format_version(report.current_version)}"
    )


def render_verify(report: VerifyReport, out: Console) -> None:
    """Print verify's findings, one line each, then the verdict."""
    for entry in report.drift:
        out.print(f"drift: {_describe_entry(entry)}")
    for entry in report.pending:
        if entry in report.drift:
            continue
        prefix = "pending (fails with --strict)" if report.strict else "pending"
        out.print(f"{prefix}: {_describe_entry(entry)}")
    applied = sum(1 for e in report.entries if e.row is not None)
    verdict = "ok" if report.ok else "FAILED"
    out.print(
        f"verify {verdict}: {applied} applied, {len(report.pending)} pending, "
        f"{len(report.drift)} with drift"
    )


def _describe_entry(entry: StatusEntry) -> str:
    where = str(entry.file.path) if entry.file else f"version {entry.version}"
    return f"{where}: {entry.state}{_explain_state(entry)}"


def _explain_state(entry: StatusEntry) -> str:
    state = str(entry.state)
    if state == "checksum mismatch" and entry.file and entry.row:
        return (
            f" (applied {entry.row.checksum[:12]}, file now {entry.file.checksum[:12]})"
        )
    if state == "missing file":
        return f" ({entry.name} is in the history, its file is gone)"
    if state == "failed":
        return " (a no-transaction migration failed part-way; fix it, then repair)"
    if state == "out of order":
        return " (lower than the highest applied version; see --allow-out-of-order)"
    return ""


def render_error(error: SchemactlError, err: Console) -> None:
    """Print an error to stderr: location first, then indented details."""
    if isinstance(error, MigrationFailed):
        _render_migration_failed(error, err)
    elif isinstance(error, MigrationDirError) and error.location:
        err.print(f"{error.location}: error: {error.message}")
    else:
        err.print(f"error: {error.message}")
    if isinstance(error, DriftError):
        for entry in error.drift:
            err.print(f"  {_describe_entry(entry)}")
    if error.hint:
        err.print(f"  hint: {error.hint}")


def _render_migration_failed(error: MigrationFailed, err: Console) -> None:
    err.print(f"{error.location}: error: {error.message}")
    if error.sqlstate:
        err.print(f"  SQLSTATE: {error.sqlstate}")
    if error.detail:
        for line in error.detail.splitlines():
            err.print(f"  detail: {line}")
    if error.source_line:
        gutter = f"  {error.line} | "
        err.print(f"{gutter}{error.source_line}")
        err.print(" " * (len(gutter) + error.column - 1) + "^")
    err.print(f"  {_describe_outcome(error)}")


def _describe_outcome(error: MigrationFailed) -> str:
    number = error.statement_number
    if error.transactional:
        return (
            f"statement {number} of the file failed; the file was rolled back and "
            "earlier migrations stay applied"
        )
    done = _describe_done(error.statements_done)
    return (
        f"statement {number} of this no-transaction file failed; {done}; its "
        "history row is marked failed until `schemactl repair`"
    )


def _describe_done(done: int) -> str:
    if done == 0:
        return "no earlier statement of it ran"
    if done == 1:
        return "statement 1 of it ran and stays applied"
    return f"statements 1-{done} of it ran and stay applied"


def render_rollback(done: list[RolledBack], out: Console) -> None:
    """Print the rollback summary."""
    if not done:
        out.print("nothing to roll back")
        return
    count = len(done)
    total_ms = sum(r.execution_ms for r in done)
    out.print(f"rolled back {count} {_plural(count, 'migration')} in {total_ms} ms")


def render_baseline(recorded: list[MigrationFile], out: Console) -> None:
    """Print what baseline recorded."""
    for migration in recorded:
        out.print(f"recorded {migration.label} as applied (not run)")
    count = len(recorded)
    out.print(
        f"baselined {count} {_plural(count, 'migration')} "
        f"(database at version {recorded[-1].version})"
    )


def describe_repair_plan(plan: RepairPlan) -> list[str]:
    """Return one line per change repair will make, and per row it leaves alone."""
    lines = []
    for entry in plan.realign:
        assert entry.file is not None
        assert entry.row is not None
        lines.append(
            f"store the checksum of {entry.file.path} for version {entry.version}: "
            f"{entry.row.checksum[:12]} -> {entry.file.checksum[:12]}"
        )
    for entry in plan.delete_failed:
        lines.append(
            f"delete the failed row of version {entry.version} ({entry.name}); "
            "migrate will run the file again"
        )
    for entry in plan.left_missing:
        lines.append(
            f"leave version {entry.version} ({entry.name}) as is: its file is "
            "missing; restore it, or delete the row yourself"
        )
    return lines


def render_repair_plan(plan: RepairPlan, out: Console) -> None:
    """Print exactly what repair will change."""
    if plan.is_empty:
        return
    out.print("repair will:")
    for line in describe_repair_plan(plan):
        out.print(f"  {line}")


def render_repair(result: RepairResult, out: Console) -> None:
    """Print the outcome of repair."""
    if result.plan.is_empty:
        for line in describe_repair_plan(result.plan):
            out.print(line)
        out.print("nothing to repair")
    elif result.applied:
        out.print("history repaired")
    else:
        out.print("repair cancelled; nothing changed")
