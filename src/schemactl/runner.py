"""The use cases that change the database: migrate, rollback, baseline and
repair (reports.py has status and verify, offline.py has new and sql).

Each returns a result object and reports progress through an observer; nothing here
prints. Imports the core and db, never click or rich.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from schemactl.config import Settings
from schemactl.core.discovery import discover_migrations, read_source
from schemactl.core.history import qualified_name
from schemactl.core.model import HistoryRow, MigrationFile
from schemactl.core.planning import (
    RepairPlan,
    RollbackStep,
    plan_baseline,
    plan_migrate,
    plan_repair,
    plan_rollback,
)
from schemactl.core.validation import (
    ParsedSource,
    load_source,
    parse_source,
    still_unchanged,
)
from schemactl.db.connection import Connection, connect, describe_connection
from schemactl.db.history import (
    ensure_audit_log,
    ensure_history_table,
    log_table,
    read_history,
    realign_checksums,
    record_baseline,
)
from schemactl.db.lock import migration_lock
from schemactl.db.session import MigrationSession, no_transaction_state
from schemactl.db.target import refuse_unsafe_target
from schemactl.errors import (
    Cancelled,
    ConnectionLost,
    MigrationLockLost,
    PlanChanged,
    SchemactlError,
)
from schemactl.interrupts import Interrupted
from schemactl.observer import MigrateObserver


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A migration migrate applied, with how long it ran."""

    migration: MigrationFile
    execution_ms: int


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What migrate did (or, with dry_run, would do)."""

    planned: list[MigrationFile]
    applied: list[AppliedMigration]
    dry_run: bool
    current_version: int | None


def load_down_source(step: RollbackStep) -> ParsedSource:
    """Read and check a down file just before it runs.

    Raises:
        MigrationDirError: when the down file breaks a rule.
    """
    return parse_source(read_source(step.down_path), step.down_path)


def migrate(
    settings: Settings,
    *,
    target: int | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
    observer: MigrateObserver | None = None,
) -> MigrateResult:
    """Apply pending migrations in ascending order under the advisory lock.

    Raises:
        MigrationDirError: for an invalid migrations directory (before connecting).
        ConnectError, LockTimeout, ReadOnlyTarget, PoolerNotSupported: when the
            server, the lock or a writable database cannot be had (or only
            through a transaction pooler); nothing is applied.
        DriftError: when drift exists; nothing is applied.
        MigrationFailed: when a statement fails; earlier migrations stay applied.
        TableLockTimeout, ConnectionLost, MigrationLockLost: exit 3; the failing
            file is not committed, earlier ones stay applied and durable.
        Cancelled: on SIGINT/SIGTERM; the same, and the message says so.
    """
    observer = observer or MigrateObserver()
    files = discover_migrations(settings.directory)

    def plan(conn: Connection) -> tuple[list[HistoryRow], list[MigrationFile]]:
        rows = read_history(conn, settings.table)
        plan = plan_migrate(
            files, rows, target=target, allow_out_of_order=allow_out_of_order
        )
        return rows, plan.to_apply

    applied: list[AppliedMigration] = []
    with (
        _cancel_outside_files(lambda: len(applied), _APPLY),
        connect(settings) as conn,
    ):
        # Every pending file is checked before any runs, and before the lock is
        # taken: a slow check of a large file never holds other runners up. A
        # dry run checks exactly what a run would.
        rows, pending = plan(conn)
        checked = _check_by_version(pending, load_source, _version)
        if dry_run:
            current = _highest_version(rows, [])
            observer.plan_ready(current, len(pending))
            return MigrateResult(pending, [], dry_run=True, current_version=current)
        with _locked(settings, conn, observer) as session:
            # The plan that counts, under the lock (another runner may have
            # applied some files meanwhile).
            rows, pending = plan(conn)
            observer.plan_ready(_highest_version(rows, []), len(pending))
            sources = _reuse_checked(pending, checked, load_source, _version)
            # Created after the checks, so a refused run leaves nothing
            # behind; no DDL at all when it exists (a least-privilege role).
            if pending:
                ensure_history_table(conn, settings.table)
                session.audit_log = _audit_log(conn, settings, observer)
            try:
                _apply_all(session, pending, sources, observer, applied)
                if applied:
                    session.flush()
            except BaseException as exc:
                raise _after_failure(session, exc, pending, _APPLY) from None
    current = _highest_version(rows, applied)
    return MigrateResult(pending, applied, dry_run=False, current_version=current)


def _audit_log(
    conn: Connection, settings: Settings, observer: MigrateObserver
) -> str | None:
    """Make sure the audit log exists (upgrading layout 1); return its quoted
    name, or None (said to the observer) when no row can be written to it."""
    state = ensure_audit_log(conn, settings.table)
    if state.warning is not None:
        observer.audit_log_warning(state.warning)
    if not state.writable:
        return None
    log = log_table(settings.table)
    return qualified_name(log.schema, log.name)


def _announce(settings: Settings, conn: Connection, observer: MigrateObserver) -> None:
    """Refuse a read-only target or a transaction pooler, and name the target
    (before anything changes, and before a question about what will)."""
    refuse_unsafe_target(conn, settings)
    observer.target_chosen(describe_connection(conn), str(settings.table))


@contextmanager
def _locked(
    settings: Settings,
    conn: Connection,
    observer: MigrateObserver,
    *,
    announced: bool = False,
) -> Iterator[MigrationSession]:
    """Refuse an unsafe target and name it (unless announced already), take
    the migration lock, and yield the session that runs files."""
    if not announced:
        _announce(settings, conn, observer)
    with migration_lock(settings, conn, on_wait=observer.lock_waiting) as lock:
        session = MigrationSession(conn, settings, lock, observer)
        with session.running():
            yield session


@contextmanager
def _cancel_outside_files(done: Callable[[], int], verb: _Verb) -> Iterator[None]:
    """Report a signal that arrived while no file ran: before the first one
    (nothing changed), or after the last one, flushed, while the run closed."""
    try:
        yield
    except Interrupted as signal:
        count = done()
        what = (
            "nothing was changed"
            if count == 0
            else f"after the last migration; {_describe_kept(count, verb, True)}"
        )
        raise Cancelled(
            f"cancelled by {signal.signal_name}: {what}",
            signal_number=signal.signal_number,
        ) from None


@dataclass(frozen=True, slots=True)
class _Verb:
    """Words for the messages of a run that stopped: applying or reverting."""

    done: str  # "applied", "reverted"
    committed: bool  # the outcome of a finished file: a row (apply) or none


_APPLY = _Verb("applied", committed=True)
_REVERT = _Verb("reverted", committed=False)


def _after_failure(
    session: MigrationSession,
    exc: BaseException,
    planned: list[MigrationFile],
    verb: _Verb,
) -> BaseException:
    """Find out from the history what this run committed and what became of the
    file that was running, flush, and return the error to raise, its message
    saying what the database holds.

    Read back rather than counted: a signal can land between a file's COMMIT
    and the line that would count it.
    """
    progress = session.progress
    history = _history_now(session)
    if history is None:
        before = None
        fate = "its outcome is unknown (the history could not be read back)"
    else:
        running = progress.migration.version if progress else None
        before = sum(
            1
            for m in planned
            if m.version != running and _finished(history, m.version, verb)
        )
        fate = _fate(session, history, verb)
    durable = True
    try:
        if before != 0:
            session.flush()
    except SchemactlError:
        durable = False
    kept = (
        "what this run committed could not be read back"
        if before is None
        else _describe_kept(before, verb, durable)
    )
    if isinstance(exc, Interrupted):
        return Cancelled(
            f"cancelled by {exc.signal_name}: {fate}; {kept}",
            signal_number=exc.signal_number,
        )
    if isinstance(exc, SchemactlError) and exc.state is not None:
        recording = progress is not None and progress.statement is None
        if isinstance(exc, ConnectionLost | MigrationLockLost) and recording:
            exc.state = fate  # the COMMIT may have reached the server: read it
        exc.state = f"{exc.state}; {kept}"
    return exc


def _history_now(session: MigrationSession) -> dict[int, bool] | None:
    """Return version -> success from a new connection, or None if unreadable."""
    try:
        with connect(session.settings) as fresh:
            rows = read_history(fresh, session.settings.table)
    except SchemactlError:
        return None
    return {row.version: row.success for row in rows}


def _finished(history: dict[int, bool], version: int, verb: _Verb) -> bool:
    """True when the history shows the file applied (or reverted) in full."""
    if verb.committed:
        return history.get(version) is True
    return version not in history


def _describe_kept(done: int, verb: _Verb, durable: bool) -> str:
    if done <= 0:
        return f"nothing was {verb.done} before it in this run"
    kept = "kept and durable" if durable else "kept (the flush to disk failed)"
    if done == 1:
        return f"1 migration {verb.done} before it in this run is {kept}"
    return f"{done} migrations {verb.done} before it in this run are {kept}"


def _fate(session: MigrationSession, history: dict[int, bool], verb: _Verb) -> str:
    """Say what became of the file that was running (none: say so)."""
    progress = session.progress
    if progress is None:
        return "no migration was running"
    name = progress.path.name
    version = progress.migration.version
    if not progress.transactional and history.get(version) is False:
        return no_transaction_state(progress)
    if _finished(history, version, verb):
        return f"{name} had already committed"
    return f"{name} rolled back"


def _highest_version(
    rows: list[HistoryRow], applied: list[AppliedMigration]
) -> int | None:
    # A failed row is not applied: "at version 2" must not count a failed 2.
    versions = [r.version for r in rows if r.success]
    versions += [a.migration.version for a in applied]
    return max(versions, default=None)


# Parsed files kept between the check and the run, up to this much text; past
# it, files are read and split again when they run, so memory stays bounded
# however many files are to run.
CHECKED_SOURCES_BUDGET = 4 * 1024 * 1024

T = TypeVar("T")


def check_before_running(
    items: list[T], load: Callable[[T], ParsedSource]
) -> list[ParsedSource | None]:
    """Check every file before any runs; keep parsed sources within the budget.

    Returns one entry per item: its parsed source, or None past the budget (the
    caller loads it again when it runs). The first is always kept: it runs
    next, so a single large file (a seed-data migration) is parsed once.

    Raises:
        MigrationDirError: for the first file that breaks a rule.
    """
    kept: list[ParsedSource | None] = []
    budget = CHECKED_SOURCES_BUDGET
    for item in items:
        source = load(item)
        budget -= len(source.text)
        kept.append(source if budget >= 0 or not kept else None)
    return kept


def _check_by_version(
    items: list[T], load: Callable[[T], ParsedSource], version: Callable[[T], int]
) -> dict[int, ParsedSource | None]:
    """Check every file before the lock is taken (see check_before_running),
    keyed by version for the plan made again under the lock."""
    return dict(
        zip(
            (version(item) for item in items),
            check_before_running(items, load),
            strict=True,
        )
    )


def _reuse_checked(
    items: list[T],
    checked: dict[int, ParsedSource | None],
    load: Callable[[T], ParsedSource],
    version: Callable[[T], int],
) -> list[ParsedSource | None]:
    """Return, for the plan made under the lock, each file's source checked
    before it (None: read again when it runs). A file in this plan only (another
    runner rolled it back meanwhile) is checked now, before any file runs."""
    return [
        checked[version(item)]
        if version(item) in checked
        else check_before_running([item], load)[0]
        for item in items
    ]


def _version(migration: MigrationFile) -> int:
    return migration.version


def _step_version(step: RollbackStep) -> int:
    return step.migration.version


def _apply_all(
    session: MigrationSession,
    migrations: list[MigrationFile],
    checked: list[ParsedSource | None],
    observer: MigrateObserver,
    applied: list[AppliedMigration],
) -> None:
    """Apply in order, appending to `applied` as each commits (kept on failure)."""
    for index, (migration, kept) in enumerate(zip(migrations, checked, strict=True), 1):
        observer.migration_started(migration, index, len(migrations))
        source = (
            load_source(migration)
            if kept is None
            else still_unchanged(kept, migration.location)
        )
        execution_ms = session.apply(migration, source)
        observer.migration_applied(migration, execution_ms)
        applied.append(AppliedMigration(migration, execution_ms))


@dataclass(frozen=True, slots=True)
class RolledBack:
    """A migration rollback reverted, with how long its down file ran."""

    step: RollbackStep
    execution_ms: int


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """What rollback reverted (or, with dry_run, would revert), newest first."""

    planned: list[RollbackStep]
    done: list[RolledBack]
    dry_run: bool = False


def rollback(
    settings: Settings,
    *,
    steps: int | None = None,
    target: int | None = None,
    dry_run: bool = False,
    confirm: Callable[[list[RollbackStep]], bool] | None = None,
    observer: MigrateObserver | None = None,
) -> RollbackResult:
    """Run down files newest first, each with its history row removal.

    Every down file is checked, and confirm (if given) asked, before the lock is
    taken: a person reading the question holds no other runner up. Under the
    lock the plan is made again; if it is no longer what confirm approved,
    nothing runs.

    Raises:
        MigrationDirError: for an invalid directory or a missing down file (before
            anything runs).
        DriftError: when drift exists; nothing is rolled back.
        PlanChanged: when the history changed while confirm was asked.
        MigrationFailed: when a down file fails; earlier reverts stay done.
    """
    observer = observer or MigrateObserver()
    files = discover_migrations(settings.directory)
    done: list[RolledBack] = []
    with (
        _cancel_outside_files(lambda: len(done), _REVERT),
        connect(settings) as conn,
    ):
        first_plan = plan_rollback(
            files, read_history(conn, settings.table), steps=steps, target=target
        )
        checked_before = _check_by_version(first_plan, load_down_source, _step_version)
        if dry_run:
            return RollbackResult(first_plan, [], dry_run=True)
        _announce(settings, conn, observer)
        if first_plan and confirm is not None and not confirm(first_plan):
            return RollbackResult(first_plan, [])
        with _locked(settings, conn, observer, announced=True) as session:
            rows = read_history(conn, settings.table)
            plan = plan_rollback(files, rows, steps=steps, target=target)
            if confirm is not None and plan != first_plan:
                raise PlanChanged("rollback")
            checked = _reuse_checked(
                plan, checked_before, load_down_source, _step_version
            )
            # Every down file still as checked, before the first one runs: an
            # edit while the question waited stops the run, not half of it.
            for step, kept in zip(plan, checked, strict=True):
                if kept is not None:
                    still_unchanged(kept, step.down_path)
            if plan:
                session.audit_log = _audit_log(conn, settings, observer)
            _revert_all(session, plan, checked, observer, done)
    return RollbackResult(plan, done)


def _revert_all(
    session: MigrationSession,
    plan: list[RollbackStep],
    checked: list[ParsedSource | None],
    observer: MigrateObserver,
    done: list[RolledBack],
) -> None:
    """Revert in order, appending to `done` as each commits (kept on failure)."""
    try:
        for index, (step, kept) in enumerate(zip(plan, checked, strict=True), 1):
            observer.rollback_started(step, index, len(plan))
            source = (
                load_down_source(step)
                if kept is None
                else still_unchanged(kept, step.down_path)
            )
            execution_ms = session.revert(step.migration, step.down_path, source)
            observer.migration_reverted(step, execution_ms)
            done.append(RolledBack(step, execution_ms))
        if done:
            session.flush()
    except BaseException as exc:
        planned = [step.migration for step in plan]
        raise _after_failure(session, exc, planned, _REVERT) from None


def baseline(
    settings: Settings, *, version: int, observer: MigrateObserver | None = None
) -> list[MigrationFile]:
    """Record every file up to version as applied without running it.

    Raises:
        SchemactlError: when the history is not empty or no file qualifies.
    """
    files = discover_migrations(settings.directory)
    observer = observer or MigrateObserver()
    with connect(settings) as conn, _locked(settings, conn, observer):
        # Planned before anything is written: a refused baseline leaves nothing.
        chosen = plan_baseline(
            files, read_history(conn, settings.table), version=version
        )
        ensure_history_table(conn, settings.table)
        audit = _audit_log(conn, settings, observer) is not None
        record_baseline(conn, settings.table, chosen, audit=audit)
    return chosen


@dataclass(frozen=True, slots=True)
class RepairResult:
    """What repair found and whether it changed the history."""

    plan: RepairPlan
    applied: bool


def repair(
    settings: Settings,
    *,
    confirm: Callable[[RepairPlan], bool],
    observer: MigrateObserver | None = None,
) -> RepairResult:
    """Realign checksums and delete failed rows, once confirm approves the plan.

    confirm is asked before the advisory lock is taken (a person reading the
    plan holds no other runner up); under the lock the plan is made again and
    applied only if it is still exactly what confirm was shown.

    Raises:
        PlanChanged: when the history or the files changed meanwhile.
    """
    files = discover_migrations(settings.directory)
    observer = observer or MigrateObserver()
    with connect(settings) as conn:
        _announce(settings, conn, observer)
        shown = plan_repair(files, read_history(conn, settings.table))
        if shown.is_empty or not confirm(shown):
            return RepairResult(shown, applied=False)
        with _locked(settings, conn, observer, announced=True):
            files = discover_migrations(settings.directory)
            plan = plan_repair(files, read_history(conn, settings.table))
            if plan != shown:
                raise PlanChanged("repair")
            realign_checksums(
                conn,
                settings.table,
                [e.file for e in plan.realign if e.file is not None],
                [e.version for e in plan.delete_failed],
                audit=_audit_log(conn, settings, observer) is not None,
            )
    return RepairResult(plan, applied=True)
