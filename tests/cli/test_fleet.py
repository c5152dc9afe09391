"""migrate, status and verify over many databases, end to end: real `schemactl`
processes on real databases, and the faults a fleet meets (an unreachable
server, a failing file, a held lock, SIGTERM, kill -9 of the parent).

Barriers, never sleeps: a test waits for a state it can see in the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from schemactl.config import parse_table_name
from schemactl.db.lock import advisory_lock_key
from tests.cli.test_faults import BARRIER_TIMEOUT, wait_for
from tests.conftest import MigrationDir, janitor_for, url_for

FILES = {
    "001_one.sql": "CREATE TABLE one (id int);\n",
    "002_two.sql": "CREATE TABLE two (id int);\n",
}
# A file that waits for an advisory lock the test holds in that database (an
# advisory lock is per database): the barrier that keeps every target's run
# inside a file until the test has done its part.
GATE_KEY = 7_231_977
GATED = {"003_gated.sql": f"SELECT pg_advisory_lock({GATE_KEY});\n"}
# A port nothing listens on (reserved, tcpmux): connecting is refused at once.
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"


class Fleet:
    """Databases made for one test (unique names), dropped after it."""

    def __init__(self, server: dict[str, Any], prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.names: list[str] = []
        self._janitors: list[Any] = []

    def add(self, count: int) -> list[str]:
        for _ in range(count):
            name = f"{self.prefix}{len(self.names):02d}"
            janitor = janitor_for(self.server, name)
            janitor.init()
            self._janitors.append(janitor)
            self.names.append(name)
        return self.names[-count:]

    def url(self, name: str) -> str:
        return url_for(self.server, name)

    def connect(self, name: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(name), autocommit=True)

    def history(self, name: str) -> list[tuple[int, bool]]:
        with self.connect(name) as conn:
            exists = conn.execute(
                "SELECT to_regclass('public.schema_migrations') IS NOT NULL"
            ).fetchone()
            if not exists or not exists[0]:
                return []
            rows = conn.execute(
                "SELECT version, success FROM schema_migrations ORDER BY 1"
            ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def query(self) -> str:
        """A --targets-query listing this fleet's databases, in order."""
        return (
            "SELECT datname FROM pg_database "
            f"WHERE datname LIKE '{self.prefix}%' ORDER BY datname"
        )

    def drop_all(self) -> None:
        for janitor in reversed(self._janitors):
            janitor.drop()


@pytest.fixture
def fleet(server_conninfo: dict[str, Any]) -> Iterator[Fleet]:
    made = Fleet(server_conninfo, f"schemactl_fleet_{uuid.uuid4().hex[:8]}_")
    try:
        yield made
    finally:
        made.drop_all()


def fleet_env(fleet: Fleet, sql_dir: MigrationDir) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SCHEMACTL_")
    }
    env.update(
        DATABASE_URL=fleet.url("postgres"),
        SCHEMACTL_DIR=str(sql_dir.path),
    )
    return env


def start_fleet(
    fleet: Fleet,
    sql_dir: MigrationDir,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[str]:
    """Start `schemactl ARGS` in the fleet's environment, with `env`'s
    changes (None: unset)."""
    environ = fleet_env(fleet, sql_dir)
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    # -P, as the `schemactl` console script: the working directory is not on
    # sys.path.
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "schemactl", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


def run_fleet(
    fleet: Fleet,
    sql_dir: MigrationDir,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = start_fleet(fleet, sql_dir, *args, cwd=cwd, env=env, preexec_fn=preexec_fn)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def by_target(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["target"]: entry for entry in doc["targets"]}


def test_migrate_over_a_query_applies_every_database_and_reports_each(fleet, sql_dir):
    names = fleet.add(3)
    sql_dir.write(FILES)
    done = run_fleet(
        fleet, sql_dir, "migrate", "--targets-query", fleet.query(), "--jobs", "2"
    )
    assert done.returncode == 0, done.stderr
    for name in names:
        assert fleet.history(name) == [(1, True), (2, True)]
    table = done.stdout.splitlines()
    assert table[0].split() == ["target", "before", "→", "after", "duration", "outcome"]
    for name, row in zip(names, table[1:4], strict=True):
        assert row.split()[:5] == [name, "none", "→", "2", row.split()[4]]
        assert row.endswith("applied 2")
    assert table[-1] == "3 targets: 3 ok; exit 0"
    # Progress counts the targets done, on stderr.
    progress = sorted(line.split("]")[0] for line in done.stderr.splitlines())
    assert progress == ["[1/3", "[2/3", "[3/3"]

    again = run_fleet(
        fleet, sql_dir, "migrate", "--targets-query", fleet.query(), "--format", "json"
    )
    doc = json.loads(again.stdout)
    assert doc["exit_code"] == 0
    assert doc["ok"] is True
    assert doc["counts"] == {"ok": 3}
    assert [t["target"] for t in doc["targets"]] == names
    for entry in doc["targets"]:
        assert entry["version_before"] == entry["version_after"] == 2
        assert entry["detail"] == "up to date"
        assert entry["result"]["command"] == "migrate"


def test_a_failing_fleet_reports_which_target_failed_and_why_and_exits_with_the_worst(
    fleet, sql_dir
):
    good, broken, locked = fleet.add(3)
    sql_dir.write(FILES)
    with fleet.connect(broken) as conn:
        conn.execute("CREATE TABLE two (id int)")  # 002 fails there
    holder = fleet.connect(locked)
    key = advisory_lock_key(locked, parse_table_name("schema_migrations"))
    holder.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        done = run_fleet(
            fleet,
            sql_dir,
            "migrate",
            "--lock-timeout",
            "0",
            "--format",
            "json",
            "--target",
            fleet.url(good),
            "--target",
            CLOSED_PORT_URL,
            "--target",
            fleet.url(broken),
            "--target",
            fleet.url(locked),
            "--jobs",
            "4",
        )
    finally:
        holder.close()
    doc = json.loads(done.stdout)
    # A failed file (1) outranks an unreachable or locked target (3).
    assert done.returncode == doc["exit_code"] == 1
    assert doc["counts"] == {"ok": 1, "unavailable": 2, "failed": 1}
    entries = doc["targets"]
    assert [e["outcome"] for e in entries] == [
        "ok",
        "unavailable",
        "failed",
        "unavailable",
    ]
    assert entries[0]["detail"] == "applied 2"
    assert entries[1]["error"]["type"] == "ConnectError"
    assert "Connection refused" in entries[1]["detail"]
    assert entries[1]["version_before"] is None
    assert entries[2]["error"]["type"] == "MigrationFailed"
    assert entries[2]["detail"].startswith(f"{sql_dir.path / '002_two.sql'}:1:1: ")
    assert 'relation "two" already exists' in entries[2]["detail"]
    assert (entries[2]["version_before"], entries[2]["version_after"]) == (None, 1)
    assert entries[3]["error"]["type"] == "LockTimeout"
    # A failing tenant did not stop the others; each kept what it committed.
    assert fleet.history(good) == [(1, True), (2, True)]
    assert fleet.history(broken) == [(1, True)]
    assert fleet.history(locked) == []


def test_fail_fast_starts_no_target_after_a_failure(fleet, sql_dir):
    first, broken, *rest = fleet.add(4)
    sql_dir.write(FILES)
    with fleet.connect(broken) as conn:
        conn.execute("CREATE TABLE one (id int)")
    done = run_fleet(
        fleet, sql_dir, "migrate", "--targets-query", fleet.query(), "--fail-fast"
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[-1] == "4 targets: 1 ok, 2 skipped, 1 failed; exit 1"
    for name in rest:
        row = next(line for line in lines if line.startswith(name))
        assert row.endswith("not started: an earlier target failed (--fail-fast)")
        assert fleet.history(name) == []
    assert fleet.history(first) == [(1, True), (2, True)]


def test_a_group_in_the_configuration_file_names_the_targets_and_the_jobs(
    fleet, sql_dir, tmp_path
):
    names = fleet.add(2)
    sql_dir.write(FILES)
    project = tmp_path / "project"
    project.mkdir()
    urls = ", ".join(json.dumps(fleet.url(name)) for name in names)
    (project / "schemactl.toml").write_text(
        f"[groups.listed]\ntargets = [{urls}]\n\n"
        f"[groups.queried]\nquery = {json.dumps(fleet.query())}\njobs = 2\n"
    )
    done = run_fleet(fleet, sql_dir, "migrate", "--group", "queried", cwd=project)
    assert done.returncode == 0, done.stderr
    status = run_fleet(
        fleet, sql_dir, "status", "--group", "listed", "--format", "json", cwd=project
    )
    doc = json.loads(status.stdout)
    assert [e["version_after"] for e in doc["targets"]] == [2, 2]
    assert doc["jobs"] == 1
    missing = run_fleet(fleet, sql_dir, "status", "--group", "nope", cwd=project)
    assert missing.returncode == 2
    assert "no group 'nope' (groups: listed, queried)" in missing.stderr


def test_status_and_verify_exit_with_the_worst_target(fleet, sql_dir):
    current, behind, drifted = fleet.add(3)
    sql_dir.write(FILES)
    for name in (current, drifted):
        migrated = run_fleet(fleet, sql_dir, "migrate", "--target", fleet.url(name))
        assert migrated.returncode == 0, migrated.stderr
    with fleet.connect(drifted) as conn:
        conn.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2"
        )
    query = ["--targets-query", fleet.query()]

    status = run_fleet(fleet, sql_dir, "status", "--exit-code", *query)
    assert status.returncode == 1  # drift outranks pending (4)
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:4]}
    assert rows[current].endswith("up to date")
    assert rows[behind].endswith("2 pending")
    assert rows[drifted].endswith("drift in 1")

    pending_only = run_fleet(
        fleet, sql_dir, "status", "--exit-code", "--target", fleet.url(behind)
    )
    assert pending_only.returncode == 4

    verify = run_fleet(fleet, sql_dir, "verify", "--format", "json", *query)
    doc = json.loads(verify.stdout)
    assert verify.returncode == doc["exit_code"] == 1
    assert [e["outcome"] for e in doc["targets"]] == ["ok", "ok", "failed"]
    assert [e["version_after"] for e in doc["targets"]] == [2, None, 2]


def test_passwords_in_targets_never_reach_the_output(fleet, sql_dir):
    (name,) = fleet.add(1)
    sql_dir.write(FILES)
    with fleet.connect(name) as conn:
        role = f"fleet_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'Fleet-S3cret'")
    try:
        url = f"postgresql://{role}:Fleet-S3cret@127.0.0.1:1/{name}?connect_timeout=2"
        for fmt in ("text", "json"):
            done = run_fleet(
                fleet, sql_dir, "migrate", "--target", url, "--format", fmt
            )
            assert done.returncode == 3
            assert "Fleet-S3cret" not in done.stdout + done.stderr
            assert f"{role}:****@127.0.0.1:1" in done.stdout
    finally:
        with fleet.connect(name) as conn:
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "2"], "--jobs needs targets"),
        (["--fail-fast"], "--fail-fast needs targets"),
        (["--target", "a", "--group", "b"], "use one of --target, --group"),
        (["--targets-query", "SELECT 'x' WHERE false"], "listed no database"),
        (["--targets-query", "CREATE TABLE x (id int)"], "read-only transaction"),
        (["--targets-query", "SELECT NULL::text"], "row 1 of the target query"),
    ],
)
def test_bad_fleet_requests_are_usage_errors(fleet, sql_dir, args, message):
    sql_dir.write(FILES)
    done = run_fleet(fleet, sql_dir, "migrate", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def gated_fleet(fleet: Fleet, sql_dir: MigrationDir, count: int) -> list[str]:
    names = fleet.add(count)
    sql_dir.write({**FILES, **GATED})
    return names


@contextmanager
def gates_shut(fleet: Fleet, names: list[str]) -> Iterator[psycopg.Connection[Any]]:
    """Hold the gate lock in every database; yield a connection to watch them."""
    with ExitStack() as stack:
        for name in names:
            gate = stack.enter_context(fleet.connect(name))
            gate.execute("SELECT pg_advisory_lock(%s)", (GATE_KEY,))
        yield stack.enter_context(fleet.connect("postgres"))


def wait_for_gated_runs(watch: psycopg.Connection[Any], names: list[str]) -> None:
    """Barrier: every listed database has a schemactl backend waiting at the
    gate (its 003 file is running)."""
    wait_for(
        watch,
        """
        SELECT 1 FROM pg_stat_activity
        WHERE application_name = 'schemactl' AND wait_event_type = 'Lock'
          AND query LIKE %s AND datname = ANY (%s)
        HAVING count(*) = %s
        """,
        "%pg_advisory_lock%",
        names,
        len(names),
    )


def no_backend_left(watch: psycopg.Connection[Any], names: list[str]) -> None:
    wait_for(
        watch,
        "SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_stat_activity "
        "WHERE application_name = 'schemactl' AND datname = ANY (%s))",
        names,
    )


def test_sigterm_cancels_the_running_targets_and_starts_no_other(fleet, sql_dir):
    names = gated_fleet(fleet, sql_dir, 4)
    with gates_shut(fleet, names) as watch:
        proc = start_fleet(
            fleet, sql_dir, "migrate", "--targets-query", fleet.query(), "--jobs", "2"
        )
        wait_for_gated_runs(watch, names[:2])
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        no_backend_left(watch, names)
    assert proc.returncode == 143, stderr
    rows = stdout.splitlines()
    assert rows[-1] == (
        "4 targets: 2 skipped, 2 cancelled; exit 143 (cancelled by SIGTERM)"
    )
    for name in names[:2]:
        row = next(line for line in rows if line.startswith(name))
        assert "cancelled by SIGTERM: 003_gated.sql rolled back; 2 migrations" in row
        assert fleet.history(name) == [(1, True), (2, True)]
    for name in names[2:]:
        assert fleet.history(name) == []


def test_kill_9_of_the_parent_cancels_its_children(fleet, sql_dir):
    names = gated_fleet(fleet, sql_dir, 2)
    with gates_shut(fleet, names) as watch:
        proc = start_fleet(
            fleet, sql_dir, "migrate", "--targets-query", fleet.query(), "--jobs", "2"
        )
        wait_for_gated_runs(watch, names)
        proc.kill()
        proc.communicate(timeout=60)
        # Each child got SIGTERM from the kernel, rolled its file back and
        # ended: no backend is left waiting at the gate, which stays shut.
        no_backend_left(watch, names)
    for name in names:
        assert fleet.history(name) == [(1, True), (2, True)]
    again = run_fleet(fleet, sql_dir, "migrate", "--targets-query", fleet.query())
    assert again.returncode == 0, again.stderr
    for name in names:
        assert fleet.history(name) == [(1, True), (2, True), (3, True)]


def run_with_open_file_limit(
    fleet: Fleet, sql_dir: MigrationDir, soft: int, hard: int, *args: str
) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return run_fleet(fleet, sql_dir, *args, preexec_fn=limit)


UNREACHABLE = [
    f"host=127.0.0.1 port=1 dbname=nowhere{n} connect_timeout=2" for n in range(6)
]


def test_a_low_soft_open_file_limit_is_raised_for_the_jobs(fleet, sql_dir):
    sql_dir.write(FILES)
    targets = [arg for url in UNREACHABLE for arg in ("--target", url)]
    done = run_with_open_file_limit(
        fleet, sql_dir, 14, 4096, "migrate", *targets, "--jobs", "6"
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines()[-1] == "6 targets: 6 unavailable; exit 3"


def test_a_target_whose_process_cannot_start_is_reported_and_the_rest_run(
    fleet, sql_dir
):
    sql_dir.write(FILES)
    targets = [arg for url in UNREACHABLE for arg in ("--target", url)]
    done = run_with_open_file_limit(
        fleet, sql_dir, 14, 14, "migrate", *targets, "--jobs", "6"
    )
    assert done.returncode == 1, done.stderr  # a crash counts as a failure
    assert "Traceback" not in done.stderr
    rows = done.stdout.splitlines()[1:-1]
    assert len(rows) == 6
    crashed = [
        row for row in rows if "crashed (exit 1): no report: cannot start a " in row
    ]
    assert crashed
    assert all("Too many open files" in row for row in crashed)
    assert all("unavailable (exit 3)" in row for row in rows if row not in crashed)


# --- what a hostile review found ------------------------------------------------


@pytest.mark.parametrize(
    "args", [["--targets-query", ""], ["--group", " "], ["--target", ""]]
)
def test_an_empty_target_option_is_refused_not_run_on_database_url(
    fleet, sql_dir, args
):
    (admin,) = fleet.add(1)
    sql_dir.write(FILES)
    env: dict[str, str | None] = {"DATABASE_URL": fleet.url(admin)}
    done = run_fleet(fleet, sql_dir, "migrate", *args, env=env)
    assert done.returncode == 2, done.stderr
    assert "is empty" in done.stderr
    assert fleet.history(admin) == []


def test_the_target_query_is_one_statement_and_changes_nothing(fleet, sql_dir):
    (name,) = fleet.add(1)
    sql_dir.write(FILES)
    with fleet.connect(name) as conn:
        conn.execute("CREATE TABLE victim (id int)")
    for query in (
        f"COMMIT; DROP TABLE victim; SELECT '{name}'",
        f"SET TRANSACTION READ WRITE; DROP TABLE victim; SELECT '{name}'",
    ):
        env: dict[str, str | None] = {"DATABASE_URL": fleet.url(name)}
        done = run_fleet(fleet, sql_dir, "status", "--targets-query", query, env=env)
        assert done.returncode == 2, done.stderr
        assert "cannot insert multiple commands" in done.stderr
    with fleet.connect(name) as conn:
        assert conn.execute("SELECT to_regclass('victim')").fetchone() == ("victim",)


def test_a_query_row_that_is_not_text_is_named_by_its_type_only(fleet, sql_dir):
    sql_dir.write(FILES)
    query = "SELECT array['postgresql://u:Row-S3cret@127.0.0.1/x']"
    done = run_fleet(fleet, sql_dir, "status", "--targets-query", query)
    assert done.returncode == 2
    assert "row 1 of the target query" in done.stderr
    assert "(list)" in done.stderr
    assert "Row-S3cret" not in done.stdout + done.stderr


def test_a_group_query_needs_the_file_database_and_says_which_variable(
    fleet, sql_dir, tmp_path
):
    sql_dir.write(FILES)
    (tmp_path / "schemactl.toml").write_text(
        'database-url-env = "FLEET_ADMIN_URL_UNSET"\n'
        '[groups.tenants]\nquery = "SELECT datname FROM pg_database"\n'
    )
    # libpq's defaults (PGHOST) must not be used instead.
    env = {"DATABASE_URL": None, "PGHOST": "127.0.0.1"}
    done = run_fleet(
        fleet, sql_dir, "status", "--group", "tenants", cwd=tmp_path, env=env
    )
    assert done.returncode == 2, done.stdout
    assert "FLEET_ADMIN_URL_UNSET is not set" in done.stderr


def test_two_spellings_of_one_database_run_once(fleet, sql_dir):
    (name,) = fleet.add(1)
    sql_dir.write(FILES)
    params = conninfo_to_dict(fleet.url(name))
    port = f":{params['port']}" if "port" in params else ""
    as_url = f"postgresql://{params['user']}@{params['host']}{port}/{name}"
    as_pairs = " ".join(f"{key}={value}" for key, value in sorted(params.items()))
    done = run_fleet(
        fleet, sql_dir, "migrate", "--target", as_url, "--target", as_pairs
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 target: 1 ok; exit 0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "host=x password='unterminated"], "cannot read the connection"),
        (["--target", "a", "--dir", "/nonexistent/sql"], "/nonexistent/sql"),
    ],
)
def test_problems_every_target_would_have_are_reported_once(
    fleet, sql_dir, args, message
):
    sql_dir.write(FILES)
    done = run_fleet(fleet, sql_dir, "migrate", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "target" not in done.stdout  # no table: nothing started


def test_schemactl_jobs_is_read_by_fleet_runs_only(fleet, sql_dir):
    (name,) = fleet.add(1)
    sql_dir.write(FILES)
    env: dict[str, str | None] = {"SCHEMACTL_JOBS": "abc"}
    single = run_fleet(fleet, sql_dir, "-d", fleet.url(name), "status", env=env)
    assert single.returncode == 0, single.stderr
    many = run_fleet(fleet, sql_dir, "status", "--target", fleet.url(name), env=env)
    assert many.returncode == 2
    assert "SCHEMACTL_JOBS='abc': expected a whole number" in many.stderr


def test_a_schemactl_py_in_the_working_directory_is_not_imported(
    fleet, sql_dir, tmp_path
):
    (name,) = fleet.add(1)
    sql_dir.write(FILES)
    (tmp_path / "schemactl.py").write_text('print(\'{"command": "status"}\')\n')
    done = run_fleet(
        fleet, sql_dir, "migrate", "--target", fleet.url(name), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert fleet.history(name) == [(1, True), (2, True)]


def test_labels_cannot_forge_lines(fleet, sql_dir):
    sql_dir.write(FILES)
    query = "SELECT E'x\\n[9/9] forged: up to date\\x1b[31m'"
    done = run_fleet(fleet, sql_dir, "status", "--targets-query", query)
    assert done.returncode == 3
    assert "\x1b" not in done.stdout + done.stderr
    assert not any(line.startswith("[9/9]") for line in done.stderr.splitlines())
    assert "x\\n[9/9] forged: up to date\\x1b[31m" in done.stdout


def test_a_closed_progress_stream_does_not_stop_the_run(fleet, sql_dir):
    names = fleet.add(3)
    sql_dir.write(FILES)
    proc = start_fleet(fleet, sql_dir, "migrate", "--targets-query", fleet.query())
    assert proc.stderr is not None
    proc.stderr.close()  # as `2>&1 | head -n 1` would, early
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert stdout.splitlines()[-1] == "3 targets: 3 ok; exit 0"
    for name in names:
        assert fleet.history(name) == [(1, True), (2, True)]


def test_a_signal_while_the_report_is_written_changes_nothing_of_it(fleet, sql_dir):
    names = fleet.add(2)
    # Status documents larger than a pipe holds: the report's write blocks
    # until the test reads, and the signal lands while it does.
    sql_dir.write({f"{n:04d}_f.sql": "SELECT 1;\n" for n in range(1, 301)})
    query = ["--targets-query", fleet.query()]
    proc = start_fleet(fleet, sql_dir, "--format", "json", "status", *query)
    assert proc.stderr is not None
    for line in proc.stderr:  # barrier: every target has ended
        if line.startswith(f"[{len(names)}/{len(names)}]"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    doc = json.loads(stdout)  # one whole document
    assert proc.returncode == doc["exit_code"] == 0
    assert doc["counts"] == {"ok": 2}


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def test_a_child_killed_from_outside_is_a_failed_target_not_a_cancel(fleet, sql_dir):
    names = gated_fleet(fleet, sql_dir, 2)
    with gates_shut(fleet, names) as watch:
        proc = start_fleet(
            fleet, sql_dir, "migrate", "--targets-query", fleet.query(), "--jobs", "2",
            "--format", "json",
        )  # fmt: skip
        wait_for_gated_runs(watch, names)
        victim = children_of(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            watch,
            "SELECT 1 WHERE (SELECT count(*) FROM pg_stat_activity WHERE "
            "application_name = 'schemactl' AND datname = ANY (%s)) <= 2",
            names,
        )
    stdout, stderr = proc.communicate(timeout=60)
    doc = json.loads(stdout)
    assert proc.returncode == doc["exit_code"] == 1, stderr
    assert doc["cancelled"] is False
    outcomes = sorted((e["outcome"], e["detail"]) for e in doc["targets"])
    assert outcomes == [
        ("crashed", "no report: killed by SIGKILL"),
        ("ok", "applied 3"),
    ]


def test_a_signal_held_while_schemactl_starts_is_a_clean_cancel(fleet, sql_dir):
    # As a fleet run starts each child: SIGINT and SIGTERM blocked. A signal
    # sent before the child's handlers exist stays pending, and is handled
    # (not lost, not a traceback) once schemactl has loaded.
    (name,) = fleet.add(1)
    sql_dir.write(FILES)

    def blocked() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    proc = start_fleet(
        fleet,
        sql_dir,
        "--format",
        "json",
        "migrate",
        env={"DATABASE_URL": fleet.url(name)},
        preexec_fn=blocked,
    )
    proc.send_signal(signal.SIGTERM)  # pending until schemactl unblocks it
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == (
        "cancelled by SIGTERM: nothing was changed"
    )
    assert json.loads(stdout)["error"]["type"] == "Cancelled"
    assert fleet.history(name) == []


# --- signals while output is blocked (a reader that does not read) -------------

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), not exported by Python 3.11


def full_pipe() -> tuple[int, int]:
    """A pipe of one page, already full: the next write to it blocks."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"." * 4096)
    os.set_blocking(write_end, True)
    return read_end, write_end


def drain(read_end: int) -> str:
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    return b"".join(chunks).decode().lstrip(".")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll until condition() holds (a barrier on process state)."""
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)  # polling interval of the barrier, not a timing guess
    pytest.fail(f"barrier not reached: {what}")


def blocked_writing(pid: int) -> bool:
    """True while the process is blocked writing to a full pipe."""
    return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()


def ended(pid: int) -> bool:
    """True once the process has exited (a zombie its parent has not reaped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_signal_after_a_single_migrate_finished_keeps_its_report(fleet, sql_dir):
    (name,) = fleet.add(1)
    sql_dir.write(FILES)
    read_end, write_end = full_pipe()
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "schemactl", "-q", "migrate"],
        env={**fleet_env(fleet, sql_dir), "DATABASE_URL": fleet.url(name)},
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    wait_until(lambda: blocked_writing(proc.pid), "the result line waits")
    assert fleet.history(name) == [(1, True), (2, True)]
    proc.send_signal(signal.SIGTERM)
    stdout = drain(read_end)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stdout.startswith("applied 2 migrations in ")
    assert "cancelled" not in stderr


def test_a_signal_while_progress_waits_and_every_child_has_ended(fleet, sql_dir):
    names = fleet.add(3)
    sql_dir.write(FILES)
    read_end, write_end = full_pipe()
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "schemactl", "--format", "json", "migrate",
         "--targets-query", fleet.query(), "--jobs", "3"],
        env=fleet_env(fleet, sql_dir),
        stdout=subprocess.PIPE,
        stderr=write_end,
        text=True,
    )  # fmt: skip
    os.close(write_end)
    # The first target's progress line waits; the others end meanwhile, and
    # nobody has reaped them yet.
    wait_until(lambda: blocked_writing(proc.pid), "the first progress line waits")
    wait_until(
        lambda: (
            len(children_of(proc.pid)) == 2
            and all(ended(child) for child in children_of(proc.pid))
        ),
        "the other children have ended",
    )
    proc.send_signal(signal.SIGTERM)
    progress = drain(read_end)
    stdout, _ = proc.communicate(timeout=60)
    assert "Traceback" not in progress
    doc = json.loads(stdout)
    assert proc.returncode == doc["exit_code"] == 143  # it came during the run
    assert doc["cancelled"] is True
    assert doc["counts"] == {"ok": 3}
    for name in names:
        assert fleet.history(name) == [(1, True), (2, True)]
