"""Fault campaign for `schemactl migrate`: kill, interrupt and disconnect a real
runner at random moments, then check that the database is still consistent.

Usage: python bench/chaos.py SERVER_URL [--rounds N] [--seed S] [--quick]

Each round gets a fresh database (`schemactl_chaos_*`, dropped at the end) and a
temporary directory of about six migration files whose effects are observable:
every file creates `t_<version>` (the no-transaction file: `idx_<version>`) and
inserts its version into a `ledger` table that file 001 creates. Some rounds
have a file that leaves session state behind (SET ROLE, temp table, ...), which a
guard at the top of every later file refuses. Some rounds add a "blocker"
session that holds a lock on the table a later file ALTERs, in a REPEATABLE READ
transaction whose snapshot CREATE INDEX CONCURRENTLY waits for too. The runner
is a real `python -m schemactl migrate` process; once its session shows up in
pg_stat_activity, after a random delay, it gets one fault: SIGKILL, SIGTERM,
SIGINT, pg_terminate_backend of one of its backends, or nothing (control).

After the runner exits and its backends are gone, the round checks:

- the exit code (see `expected_exits`) and that stderr holds no traceback;
- no effect without its history row, no successful history row without its
  effect, no ledger version twice, no advisory lock left, and nothing committed
  after the runner process had exited (contract, Faults);
- an INVALID index left behind is reported as a finding, not a failure.

A no-transaction file may leave a `success = false` row with part of its effects:
that is allowed and reported as "partial". The campaign then deletes that row and
the file's effects itself (not `schemactl repair`, which would leave the effects)
and re-runs `migrate` without a fault: it must exit 0 and leave every file
applied exactly once. Exits 1 when any round broke a rule, 0 otherwise.

Talks to 127.0.0.1 / localhost only; the server's role must be able to create
databases and `SET ROLE pg_write_all_data` (a superuser, as `postgres` is).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DB_PREFIX = "schemactl_chaos_"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
RUNNER_APP = "schemactl"  # the application_name schemactl's connections carry
OWN_APP = "schemactl_chaos"  # ours, so we never mistake ourselves for the runner
HISTORY = "public.schema_migrations"

FAULTS = ("SIGKILL", "SIGTERM", "SIGINT", "terminate", "none")
SIGNALS = {
    "SIGKILL": signal.SIGKILL,
    "SIGTERM": signal.SIGTERM,
    "SIGINT": signal.SIGINT,
}
# What each fault must end in, per the contract (see expected_exits).
FAULT_EXITS: dict[str, set[int]] = {
    "SIGKILL": {-signal.SIGKILL},
    "SIGTERM": {128 + signal.SIGTERM},
    "SIGINT": {128 + signal.SIGINT},
    "terminate": {3},  # the connection was lost mid-run
    "none": set(),
}
BLOCKER_SHARE = 0.4
MAX_FAULT_DELAY = 1.5
RUNNER_TIMEOUT = 60.0  # a runner still alive after this is a hang
SESSION_TIMEOUT = 15.0  # how long the runner may take to connect
SETTLE_TIMEOUT = 30.0  # how long its backends may outlive it
POLL_SECONDS = 0.01
# A statement the server received just before the client died may still commit
# a few milliseconds later; that is not "committed afterwards". Anything that
# commits later than this was still running when the client was gone.
COMMIT_GRACE = 0.1

# Kinds of violation; the first group are the database invariants.
INVARIANT_KINDS = (
    "effect without history",
    "history without effect",
    "failed row on a transactional file",
    "ledger duplicate",
    "advisory lock left",
    "committed after exit",
    "lingering backend",
)
WRONG_EXIT, HANG, TRACEBACK, RERUN = "wrong exit", "hang", "traceback", "re-run failed"

# Put at the top of every file after 001: fails the file when session state that
# the session-stress file sets has carried over (the contract promises each file
# a session as fresh as `psql -f` gives it). Only names this campaign sets are
# checked, so the runner's own prepared statements or SET LOCALs do not count.
GUARD = """\
DO $guard$
DECLARE
    leaks text[] := '{}';
BEGIN
    IF current_user IS DISTINCT FROM session_user THEN
        leaks := array_append(leaks, format('role %s', current_user));
    END IF;
    IF to_regclass('pg_temp.chaos_tmp') IS NOT NULL THEN
        leaks := array_append(leaks, 'temp table chaos_tmp');
    END IF;
    IF EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'chaos_stmt') THEN
        leaks := array_append(leaks, 'prepared statement chaos_stmt');
    END IF;
    IF 'chaos_channel' IN (SELECT pg_listening_channels()) THEN
        leaks := array_append(leaks, 'LISTEN chaos_channel');
    END IF;
    IF EXISTS (SELECT FROM pg_settings WHERE name IN ('search_path', 'work_mem')
               AND setting IS DISTINCT FROM reset_val) THEN
        leaks := array_append(leaks, 'search_path or work_mem');
    END IF;
    IF cardinality(leaks) > 0 THEN
        RAISE EXCEPTION 'session not fresh, carried over from an earlier file: %',
            array_to_string(leaks, ', ');
    END IF;
END
$guard$;
"""


@dataclass(frozen=True)
class Migration:
    """One generated file and the relations whose existence proves it ran."""

    version: int
    kind: str
    text: str
    objects: tuple[str, ...]
    no_transaction: bool = False

    @property
    def filename(self) -> str:
        return f"{self.version:03d}_{self.kind}.sql"


def plan_migrations(rng: random.Random) -> list[Migration]:
    """Draw about six files: 001 (ledger), one ALTER of `hot`, one no-transaction
    CREATE INDEX CONCURRENTLY, fast and slow files, and sometimes a file that
    leaves session state behind (SET ROLE, temp table, search_path, ...)."""
    kinds = ["alter_hot", "index_concurrently", "slow"]
    kinds += rng.choices(["fast", "slow"], weights=[1, 2], k=rng.randint(1, 2))
    if rng.random() < 0.3:
        kinds.append("session_state")
    rng.shuffle(kinds)
    files = [
        Migration(
            1,
            "ledger",
            "CREATE TABLE ledger (version bigint NOT NULL);\n"
            "CREATE TABLE t_1 (id int PRIMARY KEY, note text);\n"
            "INSERT INTO t_1 SELECT g, md5(g::text) FROM generate_series(1, 1000) g;\n"
            "INSERT INTO ledger VALUES (1);\n",
            ("ledger", "t_1"),
        )
    ]
    for version, kind in enumerate(kinds, start=2):
        earlier = [f.version for f in files if not f.no_transaction]
        files.append(make_migration(version, kind, rng, rng.choice(earlier)))
    return files


def make_migration(
    version: int, kind: str, rng: random.Random, earlier: int
) -> Migration:
    """Write the SQL of one file. Every file's last statements are where a
    runner that glues COMMIT onto them would commit after its client died."""
    v = version
    table = f"CREATE TABLE t_{v} (id int PRIMARY KEY, note text);\n"
    fill = (
        f"INSERT INTO t_{v} SELECT g, md5(g::text) FROM generate_series(1, 1000) g;\n"
    )
    if kind == "fast":
        text = f"{GUARD}{table}{fill}INSERT INTO ledger VALUES ({v});\n"
    elif kind == "slow":
        first, second, last = (rng.uniform(0.05, 0.3) for _ in range(3))
        text = (
            f"{GUARD}{table}SELECT pg_sleep({first:.2f});\n{fill}"
            f"SELECT pg_sleep({second:.2f});\n"
            f"INSERT INTO ledger SELECT {v} FROM pg_sleep({last:.2f});\n"
        )
    elif kind == "alter_hot":
        # The ALTER comes last: it waits for the blocker's lock.
        text = (
            f"{GUARD}{table}INSERT INTO ledger VALUES ({v});\n"
            f"ALTER TABLE hot ADD COLUMN c_{v} int;\n"
        )
    elif kind == "index_concurrently":
        text = (
            f"-- schemactl:no-transaction\n{GUARD}"
            f"CREATE INDEX CONCURRENTLY idx_{v} ON t_{earlier} (note);\n"
            f"SELECT pg_sleep({rng.uniform(0.05, 0.3):.2f});\n"
            f"INSERT INTO ledger VALUES ({v});\n"
        )
        return Migration(v, kind, text, (f"idx_{v}",), no_transaction=True)
    elif kind == "session_state":
        text = (
            f"{GUARD}{table}INSERT INTO ledger VALUES ({v});\n"
            "CREATE TEMP TABLE chaos_tmp (x int);\n"
            "PREPARE chaos_stmt AS SELECT 1;\n"
            "LISTEN chaos_channel;\n"
            "SET work_mem = '7MB';\n"
            "SET search_path = pg_catalog, public;\n"
            "SET ROLE pg_write_all_data;\n"
        )
    else:
        raise ValueError(kind)
    return Migration(v, kind, text, (f"t_{v}",))


@dataclass(frozen=True)
class DbState:
    """What a round's database holds once no runner session is left."""

    history: dict[int, tuple[bool, str]]  # version -> (success, applied_by)
    ledger: Counter[int]
    relations: frozenset[str]
    invalid_indexes: tuple[str, ...]

    def committed(self) -> set[int]:
        """Versions with a visible commit: a successful row or a ledger row."""
        done = {v for v, (success, _) in self.history.items() if success}
        return done | set(self.ledger)


@dataclass
class Violation:
    kind: str
    detail: str


@dataclass
class RunOutcome:
    """How one runner process ended; exit_code None means it hung."""

    exit_code: int | None
    stdout: str
    stderr: str

    def describe(self) -> str:
        return "hang" if self.exit_code is None else f"exit {self.exit_code}"

    def traceback(self) -> str | None:
        """The exception line of a traceback, when the process printed one."""
        for text in (self.stderr, self.stdout):
            if "Traceback (most recent call last)" in text:
                tail = text.split("Traceback (most recent call last)")[-1]
                frames = [line for line in tail.splitlines() if line.strip()]
                # The exception line is the first one not indented as a frame.
                lines = [line for line in frames[1:] if not line.startswith(" ")]
                return (lines[0] if lines else frames[-1])[:200]
        return None

    def error(self) -> str:
        """What the runner said went wrong: its traceback or first stderr line."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return self.traceback() or (lines[0][:240] if lines else "(no stderr)")


@dataclass
class RoundResult:
    number: int
    fault: str
    delay: float
    blocker: float | None
    missed: str | None = None
    outcome: RunOutcome | None = None
    violations: list[Violation] = field(default_factory=list)
    partial: list[tuple[int, list[str]]] = field(default_factory=list)
    findings: list[Violation] = field(default_factory=list)
    rerun: str = "not run"

    @property
    def failed(self) -> bool:
        return bool(self.violations)

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    def line(self) -> str:
        """One line for the round, then one indented line per problem."""
        if self.fault == "none":
            head = "no fault"
        else:
            head = f"{self.fault} after {self.delay:.2f} s"
        if self.missed:
            head += f" (missed: {self.missed})"
        if self.blocker is not None:
            head += f", blocker {self.blocker:.1f} s"
        parts = [f"round {self.number}: {head} -> "]
        parts[0] += self.outcome.describe() if self.outcome else "not run"
        kinds = self.kinds()
        for kind in (TRACEBACK, WRONG_EXIT, HANG):
            if kind in kinds:
                parts.append(kind)
        bad = kinds.intersection(INVARIANT_KINDS)
        parts.append("invariants VIOLATED" if bad else "invariants ok")
        for version, effects in self.partial:
            left = ", ".join(effects) or "no effect"
            parts.append(f"partial {version} [{left}] (allowed, cleaned up)")
        parts.append(f"re-run {self.rerun}")
        lines = ["; ".join(parts)]
        lines += [f"    {v.kind}: {v.detail}" for v in self.violations]
        lines += [f"    finding, {f.kind}: {f.detail}" for f in self.findings]
        return "\n".join(lines)


class Server:
    """The PostgreSQL server: connection strings and one admin connection that
    creates and drops databases and watches pg_stat_activity and pg_locks."""

    def __init__(self, url: str) -> None:
        params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
        for key in ("host", "hostaddr"):
            if key in params and params[key] not in LOCAL_HOSTS:
                raise ValueError(f"refusing non-local {key} {params[key]!r}")
        if "host" not in params and "hostaddr" not in params:
            raise ValueError("SERVER_URL must name host 127.0.0.1 or localhost")
        self.params = params
        self.admin = connect(self.conninfo(params.get("dbname", "postgres")))

    def conninfo(self, dbname: str) -> str:
        return make_conninfo("", **{**self.params, "dbname": dbname})

    def query(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        return self.admin.execute(query, args or None).fetchall()

    def create_database(self, dbname: str) -> None:
        name = sql.Identifier(dbname)
        self.admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(name)
        )

    def drop_database(self, dbname: str) -> None:
        name = sql.Identifier(dbname)
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
        )

    def runner_backends(self, dbname: str) -> list[int]:
        rows = self.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s "
            "AND application_name = %s",
            dbname,
            RUNNER_APP,
        )
        return [pid for (pid,) in rows]

    def advisory_locks(self, dbname: str) -> int:
        rows = self.query(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = %s",
            dbname,
        )
        return int(rows[0][0])


def connect(conninfo: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(conninfo, autocommit=True, application_name=OWN_APP)


def read_state(conninfo: str) -> DbState:
    """Read history, ledger, relations and invalid indexes of a round database."""
    with connect(conninfo) as conn:
        history: dict[int, tuple[bool, str]] = {}
        if conn.execute("SELECT to_regclass(%s)", (HISTORY,)).fetchone() != (None,):
            for version, success, applied_by in conn.execute(
                f"SELECT version, success, applied_by FROM {HISTORY}"
            ):
                history[version] = (success, applied_by)
        ledger: Counter[int] = Counter()
        if conn.execute("SELECT to_regclass('public.ledger')").fetchone() != (None,):
            ledger.update(v for (v,) in conn.execute("SELECT version FROM ledger"))
        relations = frozenset(
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            )
        )
        invalid = tuple(
            name
            for (name,) in conn.execute(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
            )
        )
    return DbState(history, ledger, relations, invalid)


class Blocker(threading.Thread):
    """A session that holds a lock on `hot` in an open transaction for a while,
    so that the file which ALTERs `hot` waits on it. Its transaction is
    REPEATABLE READ: with SELECT (not with LOCK TABLE, which takes no snapshot)
    it also holds a snapshot, which CREATE INDEX CONCURRENTLY waits for, like a
    long report running during a deploy."""

    def __init__(self, conninfo: str, statement: str, hold: float) -> None:
        super().__init__(daemon=True)
        self.conninfo, self.statement, self.hold = conninfo, statement, hold
        self.locked = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(
                self.conninfo, application_name=f"{OWN_APP}_blocker"
            ) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.execute(self.statement)  # opens the transaction
                self.locked.set()
                time.sleep(self.hold)  # the random fault: how long the lock is held
                conn.rollback()
        except psycopg.Error as exc:
            self.error = str(exc)
        finally:
            self.locked.set()


@dataclass
class Campaign:
    """What every round shares."""

    server: Server
    runner: list[str]
    seed: int
    token: str

    @contextmanager
    def start_runner(self, dbname: str, workdir: Path, tag: str) -> Iterator[Runner]:
        """Start `python -m schemactl migrate` on a round database; kill it on
        the way out if it is still alive (the campaign itself failed)."""
        # No SCHEMACTL_* from our environment: the table and options are ours.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMACTL_")}
        env["DATABASE_URL"] = self.server.conninfo(dbname)
        env["SCHEMACTL_DIR"] = str(workdir / "sql")
        out, err = workdir / f"{tag}.out", workdir / f"{tag}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            process = subprocess.Popen(
                self.runner,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
                start_new_session=True,  # a Ctrl-C on the campaign is not a fault
            )
        runner = Runner(process, out, err)
        try:
            yield runner
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@dataclass
class Runner:
    """A running schemactl process and where its output goes."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float) -> RunOutcome:
        """Wait for the exit; after timeout, SIGKILL it and report a hang."""
        try:
            code: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = None
        return RunOutcome(
            code,
            self.out.read_text(errors="replace"),
            self.err.read_text(errors="replace"),
        )

    def exited_within(self, seconds: float) -> bool:
        """Wait up to `seconds` (the random fault delay); True when it exited."""
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True


def poll_until(timeout: float, done: Callable[[], object]) -> bool:
    """Poll `done()` until it is true (return True) or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def expected_exits(fault: str, *, missed: bool, blocker: bool) -> set[int]:
    """Exit codes the contract allows. Every generated file is valid, so 1 (a
    migration failed) only happens when a fault or a carried-over session broke
    a file, and is never expected. A lost connection is 3; with a blocker the
    runner may give up on a table lock (3) too. 0 always: the run may finish
    before the fault lands."""
    allowed = {0, 3} if blocker else {0}
    return allowed if missed else allowed | FAULT_EXITS[fault]


def inject_fault(
    server: Server, runner: Runner, dbname: str, fault: str, rng: random.Random
) -> str | None:
    """Do the fault; return why it missed (runner gone, no backend), else None."""
    if runner.process.poll() is not None and fault != "none":
        return "runner already exited"
    if fault in SIGNALS:
        runner.process.send_signal(SIGNALS[fault])
    elif fault == "terminate":
        backends = server.runner_backends(dbname)
        if not backends:
            return "no schemactl backend to terminate"
        server.query("SELECT pg_terminate_backend(%s)", rng.choice(backends))
    return None


def judge_run(
    outcome: RunOutcome, allowed: set[int], label: str, wrong_kind: str
) -> list[Violation]:
    """Hang, traceback, and an exit code outside `allowed`."""
    found: list[Violation] = []
    if outcome.exit_code is None:
        found.append(
            Violation(HANG, f"{label} still running after {RUNNER_TIMEOUT:g} s")
        )
    elif outcome.exit_code not in allowed:
        expected = " or ".join(map(str, sorted(allowed, reverse=True)))
        found.append(
            Violation(
                wrong_kind,
                f"{label} exit {outcome.exit_code}, expected {expected}: "
                f"{outcome.error()}",
            )
        )
    last = outcome.traceback()
    if last is not None:
        found.append(Violation(TRACEBACK, f"{label}: {last}"))
    return found


def check_invariants(
    migrations: list[Migration], state: DbState
) -> tuple[list[Violation], list[tuple[int, list[str]]]]:
    """Compare each file's effects with its history row; return the violations
    and the no-transaction files left part-way (allowed), with their effects."""
    found: list[Violation] = []
    partial: list[tuple[int, list[str]]] = []
    for m in migrations:
        row = state.history.get(m.version)
        count = state.ledger[m.version]
        present = [name for name in m.objects if name in state.relations]
        effects = present + ([f"ledger row {m.version}"] if count else [])
        if count > 1:
            found.append(
                Violation(
                    "ledger duplicate", f"{m.filename}: ledger has it {count} times"
                )
            )
        if row is None:
            if effects:
                found.append(
                    Violation(
                        "effect without history",
                        f"{m.filename}: {', '.join(effects)} exist, no history row",
                    )
                )
        elif row[0]:
            missing = [name for name in m.objects if name not in state.relations]
            missing += [] if count else [f"ledger row {m.version}"]
            if missing:
                found.append(
                    Violation(
                        "history without effect",
                        f"{m.filename}: success row but {', '.join(missing)} missing",
                    )
                )
        elif m.no_transaction:
            partial.append((m.version, effects))
        else:
            found.append(
                Violation(
                    "failed row on a transactional file",
                    f"{m.filename} has success = false",
                )
            )
    known = {m.version for m in migrations}
    for version in sorted(set(state.history) - known):
        found.append(
            Violation("history without effect", f"row for unknown version {version}")
        )
    return found, partial


def findings_of(state: DbState, session_user: str) -> list[Violation]:
    """Not failures of the campaign, but worth a look."""
    found = [
        Violation("invalid index", f"{name} left INVALID")
        for name in state.invalid_indexes
    ]
    for version, (_, applied_by) in sorted(state.history.items()):
        if applied_by != session_user:
            found.append(
                Violation("applied_by", f"version {version} recorded as {applied_by}")
            )
    return found


def settle(server: Server, dbname: str) -> list[Violation]:
    """Wait until no runner backend is left in the database (a killed client's
    backend may still be running a statement); terminate any that outlive
    SETTLE_TIMEOUT and report them."""
    if poll_until(SETTLE_TIMEOUT, lambda: not server.runner_backends(dbname)):
        return []
    pids = server.runner_backends(dbname)
    for pid in pids:
        server.query("SELECT pg_terminate_backend(%s)", pid)
    return [
        Violation(
            "lingering backend",
            f"backend(s) {pids} still there {SETTLE_TIMEOUT:g} s after the runner exited",
        )
    ]


def clean_partial(conninfo: str, migration: Migration) -> None:
    """Undo a no-transaction file that stopped part-way, as an operator would:
    drop what it created and delete its failed row and ledger row."""
    with connect(conninfo) as conn:
        conn.execute(
            f"DELETE FROM {HISTORY} WHERE version = %s AND NOT success",
            (migration.version,),
        )
        conn.execute("DELETE FROM ledger WHERE version = %s", (migration.version,))
        for name in migration.objects:
            conn.execute(
                sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name))
            )


def start_blocker(url: str, hold: float | None, rng: random.Random) -> Blocker | None:
    """Start the blocker (in some rounds) and wait until it holds its lock."""
    if hold is None:
        return None
    statement = rng.choice(["SELECT * FROM hot", "LOCK TABLE hot IN ACCESS SHARE MODE"])
    blocker = Blocker(url, statement, hold)
    blocker.start()
    blocker.locked.wait(SESSION_TIMEOUT)
    return blocker


def run_with_fault(
    campaign: Campaign,
    dbname: str,
    workdir: Path,
    rng: random.Random,
    result: RoundResult,
) -> set[int]:
    """Start the runner, wait until its session shows up, then the random delay,
    then the fault; wait for the exit. Return the versions committed just after
    the exit (plus COMMIT_GRACE), to catch commits by a client already gone."""
    server = campaign.server
    with campaign.start_runner(dbname, workdir, "run") as runner:
        poll_until(
            SESSION_TIMEOUT,
            lambda: server.runner_backends(dbname) or runner.process.poll() is not None,
        )
        seen = time.monotonic()
        exited = runner.exited_within(result.delay)
        if exited and result.fault != "none":
            ran = time.monotonic() - seen
            result.missed = f"runner already exited, {ran:.2f} s after connecting"
        elif not exited:
            result.missed = inject_fault(server, runner, dbname, result.fault, rng)
        result.outcome = runner.wait(RUNNER_TIMEOUT)
    time.sleep(COMMIT_GRACE)  # a tolerance, not a barrier: see COMMIT_GRACE
    return read_state(server.conninfo(dbname)).committed()


def faulted_run(
    campaign: Campaign,
    dbname: str,
    workdir: Path,
    migrations: list[Migration],
    rng: random.Random,
    result: RoundResult,
) -> None:
    """Steps 2 to 6: blocker, runner, fault, exit, settle, invariants."""
    server = campaign.server
    url = server.conninfo(dbname)
    with connect(url) as conn:
        # An application table that exists before any migration, like in production.
        conn.execute("CREATE TABLE hot (id int)")
    blocker = start_blocker(url, result.blocker, rng)
    at_exit = run_with_fault(campaign, dbname, workdir, rng, result)
    assert result.outcome is not None
    if blocker is not None:
        blocker.join(SETTLE_TIMEOUT)
        if blocker.error:
            result.findings.append(Violation("blocker", blocker.error.strip()))
    allowed = expected_exits(
        result.fault, missed=result.missed is not None, blocker=blocker is not None
    )
    result.violations += judge_run(result.outcome, allowed, "runner", WRONG_EXIT)
    result.violations += settle(server, dbname)
    state = read_state(url)
    violations, result.partial = check_invariants(migrations, state)
    result.violations += violations
    if late := sorted(state.committed() - at_exit):
        names = ", ".join(m.filename for m in migrations if m.version in late)
        result.violations.append(
            Violation(
                "committed after exit",
                f"{names} committed after the runner had exited "
                f"({result.outcome.describe()})",
            )
        )
    if locks := server.advisory_locks(dbname):
        result.violations.append(
            Violation("advisory lock left", f"{locks} advisory lock(s) in pg_locks")
        )
    result.findings += findings_of(state, server.admin.info.user)


def rerun(
    campaign: Campaign,
    dbname: str,
    workdir: Path,
    migrations: list[Migration],
    result: RoundResult,
) -> None:
    """Step 7: clean up partial no-transaction files, migrate again with no
    fault, and require every file applied exactly once."""
    server = campaign.server
    url = server.conninfo(dbname)
    left_partial = {version for version, _ in result.partial}
    for m in migrations:
        if m.version in left_partial:
            clean_partial(url, m)
    with campaign.start_runner(dbname, workdir, "rerun") as runner:
        outcome = runner.wait(RUNNER_TIMEOUT)
    problems = judge_run(outcome, {0}, "re-run", RERUN)
    problems += settle(server, dbname)
    state = read_state(url)
    violations, partial = check_invariants(migrations, state)
    problems += violations
    missing = [
        m.filename for m in migrations if not state.history.get(m.version, (False,))[0]
    ]
    if missing:
        problems.append(
            Violation(RERUN, f"not applied after re-run: {', '.join(missing)}")
        )
    if partial:
        versions = ", ".join(str(version) for version, _ in partial)
        problems.append(Violation(RERUN, f"re-run left partial versions {versions}"))
    if locks := server.advisory_locks(dbname):
        problems.append(Violation("advisory lock left", f"re-run left {locks} lock(s)"))
    for problem in problems:
        if not problem.detail.startswith("re-run"):
            problem.detail = f"re-run: {problem.detail}"
    result.violations += problems
    result.rerun = "ok" if not problems else "FAILED"


def run_round(campaign: Campaign, number: int, fault: str) -> RoundResult:
    """Steps 1 to 8 for one round, on its own database, always dropped."""
    rng = random.Random(f"{campaign.seed}:{number}")
    migrations = plan_migrations(rng)
    hold = rng.uniform(0.1, 3.0) if rng.random() < BLOCKER_SHARE else None
    result = RoundResult(number, fault, rng.uniform(0, MAX_FAULT_DELAY), hold)
    dbname = f"{DB_PREFIX}{campaign.token}_{number:03d}"
    with tempfile.TemporaryDirectory(prefix=DB_PREFIX) as tmp:
        workdir = Path(tmp)
        (workdir / "sql").mkdir()
        for m in migrations:
            (workdir / "sql" / m.filename).write_text(m.text)
        campaign.server.create_database(dbname)
        try:
            faulted_run(campaign, dbname, workdir, migrations, rng, result)
            rerun(campaign, dbname, workdir, migrations, result)
        finally:
            campaign.server.drop_database(dbname)
    return result


def fault_schedule(rounds: int, rng: random.Random) -> list[str]:
    """Every fault equally often (in a random order), so even --quick covers all."""
    schedule = [FAULTS[i % len(FAULTS)] for i in range(rounds)]
    rng.shuffle(schedule)
    return schedule


def runner_command() -> list[str]:
    """`python -m schemactl migrate`, with the table-lock options when this
    build of schemactl has them (they are being added)."""
    command = [sys.executable, "-m", "schemactl", "migrate"]
    shown = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=RUNNER_TIMEOUT
    )
    if shown.returncode != 0:
        raise RuntimeError(f"`schemactl migrate --help` failed:\n{shown.stderr}")
    if "--table-lock-timeout" in shown.stdout:
        command += ["--table-lock-timeout", "1", "--table-lock-retries", "2"]
        command += ["--table-lock-backoff", "0.2"]
    return command


COLUMNS = (
    "fault", "rounds", "missed", "exit codes", "invariant", "wrong exit", "hang",
    "traceback", "re-run failed", "partial", "invalid idx",
)  # fmt: skip


def table_row(label: str, group: list[RoundResult]) -> list[str]:
    """One row of the summary table: the outcomes of the rounds in `group`."""
    exits = Counter(r.outcome.describe() for r in group if r.outcome)

    def violations(*kinds: str) -> int:
        return sum(1 for r in group if r.kinds().intersection(kinds))

    counts = [
        len(group),
        sum(1 for r in group if r.missed),
        " ".join(
            f"{code.removeprefix('exit ')}:{n}" for code, n in sorted(exits.items())
        ),
        violations(*INVARIANT_KINDS),
        violations(WRONG_EXIT),
        violations(HANG),
        violations(TRACEBACK),
        sum(1 for r in group if r.rerun != "ok"),
        sum(1 for r in group if r.partial),
        sum(1 for r in group if any(f.kind == "invalid index" for f in r.findings)),
    ]
    return [label, *map(str, counts)]


def by_kind(results: list[RoundResult], findings: bool) -> list[str]:
    """One line per kind of violation (or finding): count and first example."""
    seen: dict[str, list[tuple[RoundResult, Violation]]] = {}
    for r in results:
        for v in r.findings if findings else r.violations:
            seen.setdefault(v.kind, []).append((r, v))
    lines = []
    for kind, examples in sorted(seen.items()):
        r, v = examples[0]
        lines.append(
            f"  {kind}: {len(examples)} (round {r.number}, {r.fault}: {v.detail})"
        )
    return lines


def summary(results: list[RoundResult], elapsed: float, seed: int) -> list[str]:
    """The faults x outcomes table (each cell counts rounds), then violations
    and findings by kind."""
    rows = [list(COLUMNS)]
    rows += [table_row(f, [r for r in results if r.fault == f]) for f in FAULTS]
    rows.append(table_row("total", results))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [""]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if violations := by_kind(results, findings=False):
        lines += ["", "violations by kind (occurrences, first example):", *violations]
    if findings := by_kind(results, findings=True):
        lines += [
            "",
            "findings by kind, not failures (occurrences, first example):",
            *findings,
        ]
    failed = sum(1 for r in results if r.failed)
    verdict = f"FAIL: {failed} round(s) broke a rule" if failed else "ok"
    lines += ["", f"{len(results)} rounds in {elapsed:.1f} s (seed {seed}): {verdict}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "server_url",
        help="a local server, e.g. postgresql://postgres@127.0.0.1/postgres",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds to run [default: 60, --quick: 8]"
    )
    parser.add_argument(
        "--seed", type=int, help="seed for the random plan [default: random]"
    )
    parser.add_argument("--quick", action="store_true", help="8 rounds")
    args = parser.parse_args(argv)
    rounds = args.rounds or (8 if args.quick else 60)
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    # The runner must get the default SIGINT/SIGTERM dispositions even when the
    # campaign was started with them ignored (a background job): a handler is
    # reset to the default on exec, an ignored signal is not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        server = Server(args.server_url)
        runner = runner_command()
    except (ValueError, RuntimeError, psycopg.Error) as error:
        parser.exit(2, f"chaos: {error}\n")
    print(
        f"chaos: {rounds} rounds, seed {seed}; runner: {' '.join(runner[1:])}",
        flush=True,
    )
    campaign = Campaign(server, runner, seed, secrets.token_hex(3))
    started = time.monotonic()
    results: list[RoundResult] = []
    interrupted = False
    try:
        for number, fault in enumerate(fault_schedule(rounds, random.Random(seed)), 1):
            results.append(run_round(campaign, number, fault))
            print(results[-1].line(), flush=True)
    except KeyboardInterrupt:  # the round's database is already dropped
        interrupted = True
        print(f"chaos: interrupted after {len(results)} round(s)", file=sys.stderr)
    finally:
        server.admin.close()
    print("\n".join(summary(results, time.monotonic() - started, seed)))
    if interrupted:
        return 130
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
