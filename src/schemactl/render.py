"""Turn results and errors into text: rich tables and progress on a terminal, plain
lines when piped, JSON documents for --json. The only module that imports rich.

Payload goes to stdout; progress, waiting notices and errors go to stderr. rich is
imported on first use on a terminal only: piped output (CI, scripts, benchmarks)
is plain lines and does not pay for it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from schemactl.core.model import State, describe_blockers
from schemactl.errors import (
    Cancelled,
    DriftError,
    MigrationDirError,
    MigrationFailed,
    SchemactlError,
    drift_hint,
)
from schemactl.observer import FleetObserver, MigrateObserver
from schemactl.redaction import mask_url

# Seconds a statement runs before a piped run says it is still running.
DEFAULT_HEARTBEAT = 30.0

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from schemactl.config import Settings
    from schemactl.config_file import FileSettings
    from schemactl.core.fleet import FleetResult, TargetResult
    from schemactl.core.model import (
        Blocker,
        LockHolder,
        MigrationFile,
        ServerMessage,
        StatusEntry,
    )
    from schemactl.core.planning import RepairPlan, RollbackStep
    from schemactl.lint import LintReport
    from schemactl.reports import LogReport, StatusReport, VerifyReport
    from schemactl.runner import MigrateResult, RepairResult, RollbackResult


class Output:
    """Writes lines to one stream: through rich on a terminal, plainly otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.is_terminal = stream.isatty()
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """Return a rich console that never interprets markup nor wraps lines."""
        if self._console is None:
            from rich.console import Console  # only terminals pay for rich

            self._console = Console(
                file=self.stream, markup=False, highlight=False, soft_wrap=True
            )
        return self._console

    def line(self, text: str, *, style: str | None = None) -> None:
        """Write one line (styled on a terminal)."""
        if self.is_terminal:
            self.console.print(text, style=style)
        else:
            self.stream.write(text + "\n")


def stdout() -> Output:
    """Return the output for payload (created per command: CliRunner swaps streams)."""
    return Output(sys.stdout)


def stderr() -> Output:
    """Return the output for progress and errors."""
    return Output(sys.stderr)


def format_version(version: int | None) -> str:
    """Return a version for humans ('none' when nothing is applied)."""
    return "none" if version is None else str(version)


class MigrateProgress(MigrateObserver):
    """Shows migrate's progress, on stderr: a spinner with the file, statement n/m
    and elapsed time on a terminal; piped (CI logs), a line when each file
    starts and a heartbeat while one statement runs long. The result lines
    ("applied ...") go to `out`. Quiet: none of it but problems (lock waits,
    retries, server warnings) and the result.
    """

    def __init__(
        self,
        out: Output,
        err: Output,
        *,
        quiet: bool = False,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        self._out = out
        self._err = err
        self._quiet = quiet
        self._heartbeat = heartbeat
        self._status: Status | None = None
        self._last_holder_pid: int | None = -1
        self._file = ""
        self._file_place = ""
        self._statement: tuple[int, int, Callable[[], str]] | None = None
        self._statement_since = 0.0
        self._file_since = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def target_chosen(self, target: str, table: str) -> None:
        if not self._quiet:
            self._err.line(f"target: {target} (history table {table})")

    def statement_blocked(
        self, location: str, blockers: tuple[Blocker, ...], waited: float
    ) -> None:
        self._err.line(
            f"{location}: waiting {waited:.1f} s for a table lock held by "
            f"{describe_blockers(blockers)}"
        )

    def lock_retry(
        self,
        location: str,
        blockers: tuple[Blocker, ...],
        attempt: int,
        retries: int,
        delay: float,
    ) -> None:
        self._err.line(
            f"{location}: gave up waiting for a table lock held by "
            f"{describe_blockers(blockers)}; rolled back, retry {attempt} of "
            f"{retries} in {delay:g} s"
        )

    def invalid_index_dropped(self, location: str, index: str) -> None:
        self._err.line(
            f"{location}: dropped the INVALID index {index} left by a failed "
            "CREATE INDEX CONCURRENTLY"
        )

    def server_message(self, message: ServerMessage) -> None:
        self._err.line(message.describe())

    def audit_log_warning(self, reason: str) -> None:
        self._err.line(f"warning: {reason}")

    def lock_waiting(self, holder: LockHolder | None) -> None:
        pid = holder.pid if holder else None
        if pid == self._last_holder_pid:
            return
        self._last_holder_pid = pid
        who = holder.describe() if holder else "another session"
        self._err.line(f"waiting for the migration lock held by {who}")

    def migration_started(
        self, migration: MigrationFile, index: int, total: int
    ) -> None:
        self._file_started(migration.label, f"applying {migration.label}", index, total)

    def migration_applied(self, migration: MigrationFile, execution_ms: int) -> None:
        self._file_done()
        if not self._quiet:
            self._out.line(f"applied {migration.label} ({execution_ms} ms)")

    def rollback_started(self, step: RollbackStep, index: int, total: int) -> None:
        label = step.migration.label
        self._file_started(label, f"reverting {label}", index, total)

    def migration_reverted(self, step: RollbackStep, execution_ms: int) -> None:
        label, down = step.migration.label, step.down_path.name
        self._file_done()
        if not self._quiet:
            self._out.line(f"reverted {label} with {down} ({execution_ms} ms)")

    def statement_started(
        self, number: int, total: int, location: Callable[[], str]
    ) -> None:
        # Every statement: two assignments and a clock read, nothing printed.
        self._statement = (number, total, location)
        self._statement_since = time.monotonic()

    def _file_started(self, label: str, doing: str, index: int, total: int) -> None:
        self._file = label
        self._file_place = f"{doing} ({index}/{total})"
        self._statement = None
        self._file_since = self._statement_since = time.monotonic()
        if self._quiet:
            return
        if self._err.is_terminal:
            self._show_spinner(self._file_place)
        else:
            self._err.line(self._file_place)
        # A terminal's spinner is kept up to date whatever --heartbeat says.
        if self._ticker is None and (self._heartbeat > 0 or self._err.is_terminal):
            self._ticker = threading.Thread(
                target=self._tick, name="schemactl-progress", daemon=True
            )
            self._ticker.start()

    def _file_done(self) -> None:
        self._file = ""
        self._statement = None
        self.close()  # a live spinner and a printed line would share one screen line

    def _tick(self) -> None:
        """Say how a long file is getting on: every `heartbeat` seconds on a
        piped stderr (once a statement has run that long), continuously in the
        spinner's text on a terminal."""
        # Ticks finer than the heartbeat, so that the first line comes when a
        # statement has run `heartbeat` seconds, not up to twice that.
        interval = min(self._heartbeat / 4, 1.0) if self._heartbeat > 0 else 1.0
        last_beat = 0.0
        while not self._stop.wait(interval):
            statement, label = self._statement, self._file
            if not label or statement is None:
                continue
            number, total, location = statement
            now = time.monotonic()
            elapsed = _seconds(now - self._file_since)
            if self._err.is_terminal:
                status = self._status
                if status is not None:
                    status.update(
                        f"{self._file_place}: statement {number}/{total}, "
                        f"{elapsed} ({location()})"
                    )
            elif (
                self._heartbeat > 0
                and now - self._statement_since >= self._heartbeat
                and now - last_beat >= self._heartbeat
            ):
                last_beat = now
                ran = _seconds(now - self._statement_since)
                self._err.line(
                    f"still running {label}: statement {number}/{total} at "
                    f"{location()} for {ran} ({elapsed} in the file)"
                )

    def _show_spinner(self, message: str) -> None:
        """Show a spinner (a terminal only)."""
        if self._status is None:
            self._status = self._err.console.status(message)
            self._status.start()
        else:
            self._status.update(message)

    def close(self) -> None:
        """Stop the spinner, if any; call before printing a line, a summary or an
        error (the next migration starts a new one)."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def shutdown(self) -> None:
        """Stop the spinner and the heartbeat for good (the run is over)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.close()


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def render_migrate(result: MigrateResult, out: Output) -> None:
    """Print what migrate did, or would do with --dry-run."""
    version = format_version(result.current_version)
    if result.dry_run:
        for migration in result.planned:
            out.line(f"would apply {migration.label}")
        count = len(result.planned)
        out.line(
            f"dry run: {count} {_plural(count, 'migration')} pending, nothing changed "
            f"(database at version {version})"
        )
        return
    if not result.applied:
        out.line(f"nothing to migrate (database at version {version})")
        return
    total_ms = sum(a.execution_ms for a in result.applied)
    count = len(result.applied)
    out.line(
        f"applied {count} {_plural(count, 'migration')} in {total_ms} ms "
        f"(database at version {version})"
    )


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _config_values(settings: Settings) -> dict[str, Any]:
    """Return each setting as JSON shows it (the password masked)."""
    url = settings.database_url
    return {
        "database_url": mask_url(url) if url else None,
        "directory": str(settings.directory),
        "table": str(settings.table),
        "connect_timeout": settings.connect_timeout,
        "lock_timeout": settings.lock_timeout,
        "table_lock_timeout": settings.table_lock_timeout,
        "table_lock_retries": settings.table_lock_retries,
        "table_lock_backoff": settings.table_lock_backoff,
        "statement_timeout": settings.statement_timeout,
        "pooler": settings.pooler,
    }


_UNSET = {
    "database_url": "(libpq defaults: PG* variables)",
    "statement_timeout": "(the server's setting)",
}


def _config_text(name: str, value: Any) -> str:
    if value is None:
        return _UNSET[name]
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_config(
    settings: Settings,
    origins: dict[str, str],
    file: FileSettings | None,
    out: Output,
) -> None:
    """Print the resolved settings, one per line, with where each came from."""
    if file is None:
        out.line("configuration file: none found")
    else:
        environment = f" (environment {file.environment})" if file.environment else ""
        out.line(f"configuration file: {file.path}{environment}")
    rows = [
        (name, _config_text(name, value), origins[name])
        for name, value in _config_values(settings).items()
    ]
    name_width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for name, value, origin in rows:
        out.line(f"{name:<{name_width}}  {value:<{value_width}}  {origin}")


def config_payload(
    settings: Settings, origins: dict[str, str], file: FileSettings | None
) -> dict[str, Any]:
    """Return the keys of the config document (the password masked)."""
    return {
        "config_file": str(file.path) if file else None,
        "environment": file.environment if file else None,
        "settings": {
            name: {"value": value, "source": origins[name]}
            for name, value in _config_values(settings).items()
        },
    }


STATUS_COLUMNS = ("version", "name", "state", "applied at")


def _status_rows(report: StatusReport) -> list[tuple[str, str, str, str]]:
    return [
        (
            str(e.version),
            e.name,
            e.state.value,
            e.applied_at.isoformat(" ", "seconds") if e.applied_at else "",
        )
        for e in report.entries
    ]


def render_status(report: StatusReport, out: Output) -> None:
    """Print the status table: rich on a terminal, aligned plain columns when piped."""
    rows = _status_rows(report)
    if rows and out.is_terminal:
        _print_status_table(report, rows, out.console)
    elif rows:
        out.stream.write(_aligned([STATUS_COLUMNS, *rows]))
    out.line(
        f"{report.table}: database at version {format_version(report.current_version)}"
    )


def _aligned(rows: list[tuple[str, str, str, str]]) -> str:
    """Return the rows as plain text, the first three columns padded to their
    widest cell (one format per line: status on 10,000 files)."""
    w0, w1, w2 = (max(len(row[i]) for row in rows) for i in range(3))
    return "".join(
        f"{a:<{w0}}  {b:<{w1}}  {c:<{w2}}  {d}".rstrip() + "\n" for a, b, c, d in rows
    )


def _print_status_table(
    report: StatusReport, rows: list[tuple[str, str, str, str]], console: Console
) -> None:
    from rich import box  # only terminals pay for rich
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in STATUS_COLUMNS:
        table.add_column(column)
    for entry, row in zip(report.entries, rows, strict=True):
        style = "red" if entry.is_drift else "yellow" if entry.row is None else None
        table.add_row(*row, style=style)
    console.print(table)


def render_verify(report: VerifyReport, out: Output) -> None:
    """Print verify's findings, one line each, then the verdict."""
    for entry in report.drift:
        out.line(f"drift: {_describe_entry(entry)}")
    for entry in report.pending:
        if entry in report.drift:
            continue
        prefix = "pending (fails with --strict)" if report.strict else "pending"
        out.line(f"{prefix}: {_describe_entry(entry)}")
    applied = sum(1 for e in report.entries if e.row is not None and e.row.success)
    verdict = "ok" if report.ok else "FAILED"
    out.line(
        f"verify {verdict}: {applied} applied, {len(report.pending)} pending, "
        f"{len(report.drift)} with drift"
    )
    if report.drift:
        out.line(f"  hint: {drift_hint(report.drift)}")


def _describe_entry(entry: StatusEntry) -> str:
    where = entry.file.location if entry.file else f"version {entry.version}"
    return f"{where}: {entry.state}{_explain_state(entry)}"


def _explain_state(entry: StatusEntry) -> str:
    state = entry.state
    if state is State.CHECKSUM_MISMATCH and entry.file and entry.row:
        if entry.file.name != entry.row.name:
            return (
                f" (applied as {entry.row.name}: another migration now has this "
                "version; renumber it)"
            )
        return (
            f" (applied {entry.row.checksum[:12]}, file now {entry.file.checksum[:12]})"
        )
    if state is State.MISSING_FILE:
        return f" ({entry.name} is in the history, its file is gone)"
    if state is State.FAILED:
        return " (a no-transaction migration failed part-way)"
    if state is State.OUT_OF_ORDER:
        return " (lower than the highest applied version; see --allow-out-of-order)"
    return ""


def render_error(error: SchemactlError, err: Output) -> None:
    """Print an error to stderr: location first, then indented details."""
    if isinstance(error, Cancelled):
        err.line(error.message)  # one line, as the contract's cancel asks
        return
    if isinstance(error, MigrationFailed):
        _render_migration_failed(error, err)
    elif isinstance(error, MigrationDirError) and error.location:
        err.line(f"{error.location}: error: {error.message}")
    else:
        err.line(f"error: {error.message}")
    if isinstance(error, DriftError):
        for entry in error.drift:
            err.line(f"  {_describe_entry(entry)}")
    if error.state:
        err.line(f"  state: {error.state}")
    if error.hint:
        err.line(f"  hint: {error.hint}")


def _render_migration_failed(error: MigrationFailed, err: Output) -> None:
    err.line(f"{error.location}: error: {error.message}")
    if error.sqlstate:
        err.line(f"  SQLSTATE: {error.sqlstate}")
    if error.detail:
        for line in error.detail.splitlines():
            err.line(f"  detail: {line}")
    if error.source_line:
        gutter = f"  {error.line} | "
        err.line(f"{gutter}{error.source_line}")
        err.line(" " * (len(gutter) + error.column - 1) + "^")
    err.line(f"  {_describe_outcome(error)}")


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


LOG_COLUMNS = ("at", "action", "version", "name", "outcome", "by", "checksum")


def render_log(report: LogReport, out: Output) -> None:
    """Print the audit log, oldest first, as aligned columns."""
    if not report.exists:
        out.line(
            f"no audit log ({report.log_table}) yet: the next migrate, rollback, "
            "repair or baseline creates it"
        )
        return
    rows = [
        (
            row.at.isoformat(" ", "seconds"),
            row.action,
            str(row.version),
            row.name,
            row.outcome,
            _printable(
                f"{row.login_role} ({row.application_name or '?'}"
                f"{', ' + row.client_addr if row.client_addr else ''})"
            ),
            _checksum_change(row.checksum_before, row.checksum_after),
        )
        for row in report.rows
    ]
    widths = [max(len(r[i]) for r in [LOG_COLUMNS, *rows]) for i in range(6)]
    for row in [LOG_COLUMNS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.line(("  ".join(cells) + "  " + row[6]).rstrip())
    shown = f"{len(rows)} {_plural(len(rows), 'row')}"
    if report.limit is not None and len(rows) == report.limit:
        shown += f", the newest (--limit {report.limit}; --all for every row)"
    out.line(f"{report.log_table}: {shown}")


def _printable(text: str) -> str:
    # application_name comes from the client: a newline in it must not print
    # as a line of its own that looks like another log row.
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def _checksum_change(before: str | None, after: str | None) -> str:
    if before and after:
        return f"{before[:12]} -> {after[:12]}"
    return (after or before or "")[:12]


def render_lint(report: LintReport, out: Output) -> None:
    """Print each finding with its hint, then the verdict."""
    for finding in report.findings:
        out.line(finding.describe())
        if finding.hint:
            out.line(f"  hint: {finding.hint}")
    files = len(report.files)
    rules = "squawk's rules" if report.squawk else "schemactl's rules"
    if report.findings:
        count = len(report.findings)
        out.line(
            f"lint: {count} {_plural(count, 'problem')} in {files} "
            f"{_plural(files, 'file')} ({rules})"
        )
    else:
        out.line(f"lint: {files} {_plural(files, 'file')} clean ({rules})")


def render_rollback(result: RollbackResult, out: Output) -> None:
    """Print the rollback summary (or, with --dry-run, what it would revert)."""
    if result.dry_run:
        for step in result.planned:
            out.line(f"would revert {step.migration.label} with {step.down_path.name}")
        count = len(result.planned)
        out.line(
            f"dry run: {count} {_plural(count, 'migration')} to revert, nothing changed"
        )
        return
    done = result.done
    if not done:
        out.line("nothing rolled back" if result.planned else "nothing to roll back")
        return
    count = len(done)
    total_ms = sum(r.execution_ms for r in done)
    out.line(f"rolled back {count} {_plural(count, 'migration')} in {total_ms} ms")


def render_baseline(recorded: list[MigrationFile], out: Output) -> None:
    """Print what baseline recorded."""
    for migration in recorded:
        out.line(f"recorded {migration.label} as applied (not run)")
    count = len(recorded)
    out.line(
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
            f"store the checksum of {entry.file.location} for version {entry.version}: "
            f"{entry.row.checksum[:12]} -> {entry.file.checksum[:12]}"
        )
    for entry in plan.delete_failed:
        lines.append(
            f"delete the failed row of version {entry.version} ({entry.name}); "
            "migrate will run the file again"
        )
    for entry in plan.left_renamed:
        assert entry.file is not None
        assert entry.row is not None
        lines.append(
            f"leave version {entry.version} as is: it was applied as "
            f"{entry.row.name}, and {entry.file.location} is another migration; "
            "renumber that file"
        )
    for entry in plan.left_missing:
        lines.append(
            f"leave version {entry.version} ({entry.name}) as is: its file is "
            "missing; restore it, or delete the row yourself"
        )
    return lines


def render_repair_plan(plan: RepairPlan, out: Output) -> None:
    """Print exactly what repair will change, and what it will not do."""
    if plan.is_empty:
        return
    out.line("repair will change the history table only, and run no SQL of any file:")
    for line in describe_repair_plan(plan):
        out.line(f"  {line}")
    if plan.realign:
        out.line(
            "  note: the database keeps what the applied text did; an edit to an "
            "applied file never runs (put a change in a new migration)"
        )


def render_repair(result: RepairResult, out: Output) -> None:
    """Print the outcome of repair."""
    if result.plan.is_empty:
        for line in describe_repair_plan(result.plan):
            out.line(line)
        out.line("nothing to repair")
    elif result.applied:
        out.line("history repaired")
    else:
        out.line("repair cancelled; nothing changed")


# --- many targets --------------------------------------------------------------

FLEET_COLUMNS = ("target", "before → after", "duration", "outcome")
# status and verify change nothing: one version.
FLEET_READ_COLUMNS = ("target", "version", "duration", "outcome")
_OUTCOME_STYLES = {
    "ok": None,
    "pending": "yellow",
    "skipped": "yellow",
}


class FleetProgress(FleetObserver):
    """Says, on stderr, each target as it finishes and how many are done;
    quiet: only the targets that did not end well."""

    def __init__(self, err: Output, *, quiet: bool) -> None:
        self._err: Output | None = err
        self._quiet = quiet

    def target_finished(self, result: TargetResult, done: int, total: int) -> None:
        if self._quiet and result.outcome.value in ("ok", "pending"):
            return
        width = len(str(total))
        took = "" if result.exit_code is None else f" ({_seconds(result.duration)})"
        line = (
            f"[{done:>{width}}/{total}] {_printable(result.target.label)}: "
            f"{_printable(_fleet_outcome(result))}{took}"
        )
        if self._err is None:
            return
        try:
            self._err.line(line, style=_OUTCOME_STYLES.get(result.outcome.value, "red"))
        except OSError:  # stderr closed (| head): progress stops, the run goes on
            self._err = None


def _fleet_outcome(result: TargetResult) -> str:
    detail = result.describe()
    if result.outcome.value in ("ok", "pending", "skipped"):
        return detail
    return f"{result.outcome.value} (exit {result.exit_code}): {detail}"


def _fleet_rows(result: FleetResult) -> list[tuple[str, str, str, str]]:
    rows = []
    for target in result.results:
        before = format_version(target.version_before)
        after = format_version(target.version_after)
        if not target.versions_known:
            versions = "?"
        elif result.command == "migrate":
            versions = f"{before} → {after}"
        else:
            versions = after
        duration = "" if target.exit_code is None else _seconds(target.duration)
        rows.append(
            (
                _printable(target.target.label),
                versions,
                duration,
                _printable(_fleet_outcome(target)),
            )
        )
    return rows


def render_fleet(result: FleetResult, out: Output) -> None:
    """Print one row per target (in the order they were listed), then a line
    that counts the outcomes."""
    rows = _fleet_rows(result)
    columns = FLEET_COLUMNS if result.command == "migrate" else FLEET_READ_COLUMNS
    if out.is_terminal:
        _print_fleet_table(result, columns, rows, out.console)
    else:
        out.stream.write(_aligned([columns, *rows]))
    counts = ", ".join(f"{count} {name}" for name, count in result.counts().items())
    total = len(result.results)
    summary = f"{total} {_plural(total, 'target')}: {counts}; exit {result.exit_code}"
    if result.cancelled_by is not None:
        summary += f" (cancelled by {_signal_name(result.cancelled_by)})"
    out.line(summary)


def _signal_name(exit_code: int) -> str:
    import signal

    return signal.Signals(exit_code - 128).name


def _print_fleet_table(
    result: FleetResult,
    columns: tuple[str, str, str, str],
    rows: list[tuple[str, str, str, str]],
    console: Console,
) -> None:
    from rich import box  # only terminals pay for rich
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column)
    for target, row in zip(result.results, rows, strict=True):
        table.add_row(*row, style=_OUTCOME_STYLES.get(target.outcome.value, "red"))
    console.print(table)
