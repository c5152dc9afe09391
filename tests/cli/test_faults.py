"""Faults production meets: kills, signals, terminated backends, lock waits.

Every test drives a real `schemactl` process (or the CLI in-process where no
signal is involved) against a real server. Barriers, never sleeps: a test waits
for a state it can see in the database (a backend waiting on a lock, a query
running) or for a line the runner prints.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from schemactl.config import parse_table_name
from schemactl.db.lock import advisory_lock_key
from tests.conftest import run_subprocess, runner_env, without_progress

TABLE = parse_table_name("schema_migrations")
BARRIER_TIMEOUT = 30.0


def start(database_url: str, sql_dir: Any, *args: str) -> subprocess.Popen[str]:
    """Start `schemactl ARGS` as a real process with piped output."""
    return subprocess.Popen(
        [sys.executable, "-m", "schemactl", *args],
        env=runner_env(database_url, sql_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(db: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """Poll until query returns a row (a barrier on server state); return it."""
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while time.monotonic() < deadline:
        row = db.execute(query, params).fetchone()
        if row is not None:
            return row
        time.sleep(0.01)  # polling interval of the barrier, not a timing guess
    pytest.fail(f"barrier not reached: {query}")


RUNNER_WAITING_ON_LOCK = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'schemactl'
  AND wait_event_type = 'Lock'
"""

RUNNER_RUNNING = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'schemactl'
  AND state = 'active' AND query LIKE %s
"""


def wait_until_gone(db: psycopg.Connection[Any], pid: int) -> None:
    """Poll until the backend pid has ended (a barrier on server state)."""
    wait_for(
        db,
        "SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)",
        pid,
    )


NO_RUNNER_LEFT = """
SELECT 1 WHERE NOT EXISTS (
    SELECT FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'schemactl')
"""


def runner_pids(db: psycopg.Connection[Any]) -> list[int]:
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'schemactl'"
    ).fetchall()
    return [r[0] for r in rows]


def terminate(db: psycopg.Connection[Any], pids: list[int]) -> None:
    for pid in pids:
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))


def advisory_locks(db: psycopg.Connection[Any]) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    assert row is not None
    return int(row[0])


def history(db: psycopg.Connection[Any]) -> list[tuple[int, bool]]:
    if db.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return []
    return [
        (r[0], r[1])
        for r in db.execute(
            "SELECT version, success FROM schema_migrations ORDER BY version"
        ).fetchall()
    ]


def has_column(db: psycopg.Connection[Any], table: str, column: str) -> bool:
    row = db.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = %s AND column_name = %s",
        (table, column),
    ).fetchone()
    return row == (1,)


@pytest.fixture
def blocker(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that holds locks in an open transaction until the test ends it."""
    with psycopg.connect(database_url, application_name="test-blocker") as conn:
        yield conn


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


# --- 1. a dead client never commits later -------------------------------------


def test_a_killed_runner_never_commits_its_migration_later(
    database_url, sql_dir, db, blocker
):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "ALTER TABLE a ADD COLUMN y int;\n"})
    blocker.execute("SELECT * FROM a")  # ACCESS SHARE, held until rollback
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (waiting,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        proc.kill()
        proc.wait()
        # Still blocked, the server notices its client is gone and ends the
        # backend (client_connection_check_interval): no statement runs on.
        wait_until_gone(db, waiting)
    finally:
        finish(proc)
    blocker.rollback()
    wait_for(db, NO_RUNNER_LEFT)
    assert not has_column(db, "a", "y")
    assert history(db) == []
    assert advisory_locks(db) == 0


# --- 2. SIGINT and SIGTERM are a clean cancel -----------------------------------

SLEEPY = {
    "001_one.sql": "CREATE TABLE one (x int);\n",
    "002_sleep.sql": "INSERT INTO one VALUES (1);\nSELECT pg_sleep(60);\n",
}


@pytest.mark.parametrize(
    ("signal_number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_a_signal_cancels_the_statement_and_rolls_the_file_back(
    database_url, sql_dir, db, signal_number, code
):
    sql_dir.write(SLEEPY)
    proc = start(database_url, sql_dir, "migrate")
    try:
        wait_for(db, RUNNER_RUNNING, "%SELECT pg_sleep(60)%")
        proc.send_signal(signal_number)
        out, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == code, err
    name = signal.Signals(signal_number).name
    assert without_progress(err)[1:] == [
        f"cancelled by {name}: 002_sleep.sql rolled back; 1 migration applied "
        "before it in this run is kept and durable"
    ]
    (applied,) = out.splitlines()
    assert applied.startswith("applied 001_one.sql (")
    assert history(db) == [(1, True)]
    assert db.execute("SELECT count(*) FROM one").fetchone() == (0,)
    # The statement was cancelled, not left running; the lock went with the run.
    wait_for(db, NO_RUNNER_LEFT)
    assert advisory_locks(db) == 0


def test_a_signal_in_a_no_transaction_file_says_how_far_it_got(
    database_url, sql_dir, db
):
    sql_dir.write(
        {
            "001_steps.sql": "-- schemactl:no-transaction\n"
            "CREATE TABLE n (x int);\nSELECT pg_sleep(60);\nCREATE TABLE never (x int);\n"
        }
    )
    proc = start(database_url, sql_dir, "migrate")
    try:
        wait_for(db, RUNNER_RUNNING, "%SELECT pg_sleep(60)%")
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 130
    assert_no_traceback(err)
    assert without_progress(err)[1] == (
        "cancelled by SIGINT: 001_steps.sql (no-transaction) stopped at statement 2 "
        "of 3: statement 1 ran and stays applied; its history row is marked failed "
        "until `schemactl repair`; nothing was applied before it in this run"
    )
    assert history(db) == [(1, False)]
    assert db.execute(
        "SELECT to_regclass('n') IS NOT NULL, to_regclass('never') IS NULL"
    ).fetchone() == (True, True)


def test_a_signal_while_waiting_for_the_migration_lock_changes_nothing(
    database_url, sql_dir, db
):
    sql_dir.write(SLEEPY)
    key = advisory_lock_key(db.info.dbname, TABLE)
    db.execute("SELECT pg_advisory_lock(%s)", (key,))
    proc = start(database_url, sql_dir, "migrate")
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # target
        assert proc.stderr.readline().startswith("waiting for the migration lock")
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 143
    assert err.splitlines() == ["cancelled by SIGTERM: nothing was changed"]
    assert history(db) == []


# --- 3. lock waits are bounded and retried --------------------------------------


def test_a_lock_wait_is_retried_then_fails_with_exit_3_naming_the_blocker(
    run_cli, sql_dir, db, blocker
):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "ALTER TABLE a ADD COLUMN y int;\n"})
    blocker.execute("SELECT * FROM a")
    result = run_cli(
        "migrate",
        "--table-lock-timeout",
        "1",
        "--table-lock-retries",
        "2",
        "--table-lock-backoff",
        "0",
    )
    assert result.exit_code == 3, result.output
    path = sql_dir.path / "001_alter.sql"
    who = (
        f"pid {blocker.info.backend_pid} (application test-blocker, idle in transaction"
    )
    retries = [
        line for line in result.stderr.splitlines() if "rolled back, retry" in line
    ]
    assert len(retries) == 2
    assert all(line.startswith(f"{path}:1:1: gave up waiting") for line in retries)
    assert all(who in line for line in retries)
    assert (
        f"error: {path}:1:1: gave up waiting for a table lock (1 s, tried 3 times); blocked by {who}"
        in result.stderr
    )
    assert "  state: nothing of 001_alter.sql was applied" in result.stderr
    assert not has_column(db, "a", "y")
    assert history(db) == []


def test_a_retry_succeeds_once_the_blocker_is_gone(database_url, sql_dir, db, blocker):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "ALTER TABLE a ADD COLUMN y int;\n"})
    blocker.execute("SELECT * FROM a")
    proc = start(
        database_url,
        sql_dir,
        "migrate",
        "--table-lock-timeout",
        "0.3",
        "--table-lock-retries",
        "20",
        "--table-lock-backoff",
        "0.1",
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # barrier: the first retry is announced
            seen.append(line)
            if "retry 1 of 20" in line:
                break
        blocker.rollback()
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 0, "".join(seen) + err
    assert has_column(db, "a", "y")
    assert history(db) == [(1, True)]


@pytest.mark.parametrize("command", ["status", "verify"])
def test_reading_a_locked_history_table_is_bounded(
    run_cli, sql_dir, db, blocker, command
):
    sql_dir.write({"001_one.sql": "SELECT 1;\n"})
    assert run_cli("migrate").exit_code == 0
    blocker.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
    result = run_cli(command, "--table-lock-timeout", "0.2")
    assert result.exit_code == 3
    assert (
        "error: timed out reading the history table public.schema_migrations: it is "
        f"locked by pid {blocker.info.backend_pid} (application test-blocker"
    ) in result.stderr


def test_reading_a_locked_audit_log_is_bounded_like_the_history(
    run_cli, sql_dir, db, blocker
):
    sql_dir.write({"001_one.sql": "SELECT 1;\n"})
    assert run_cli("migrate").exit_code == 0
    blocker.execute("LOCK TABLE schema_migrations_log IN ACCESS EXCLUSIVE MODE")
    result = run_cli("log", "--table-lock-timeout", "0.2")
    assert result.exit_code == 3
    assert (
        "error: timed out reading the audit log public.schema_migrations_log: it "
        f"is locked by pid {blocker.info.backend_pid} (application test-blocker"
    ) in result.stderr


def test_statement_timeout_fails_the_file_at_its_statement(run_cli, sql_dir, db):
    sql_dir.write({"001_slow.sql": "CREATE TABLE s (x int);\nSELECT pg_sleep(30);\n"})
    result = run_cli("migrate", "--statement-timeout", "0.2")
    assert result.exit_code == 1
    path = sql_dir.path / "001_slow.sql"
    assert (
        f"{path}:2:1: error: canceling statement due to statement timeout"
        in result.stderr
    )
    assert history(db) == []


# --- invalid indexes from CREATE INDEX CONCURRENTLY ------------------------------


def invalid_indexes(db: psycopg.Connection[Any]) -> list[str]:
    rows = db.execute(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_failed_concurrent_index_build_leaves_no_invalid_index(run_cli, sql_dir, db):
    db.execute("CREATE TABLE u (x int)")
    db.execute("INSERT INTO u VALUES (1), (1)")
    sql_dir.write(
        {
            "001_ix.sql": "-- schemactl:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY u_x ON u (x);\n"
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 1
    path = sql_dir.path / "001_ix.sql"
    assert (
        f"{path}:2:1: dropped the INVALID index u_x left by a failed CREATE INDEX CONCURRENTLY"
        in result.stderr
    )
    assert invalid_indexes(db) == []
    assert history(db) == [(1, False)]


def test_an_invalid_index_left_earlier_is_rebuilt_not_skipped(run_cli, sql_dir, db):
    db.execute("CREATE TABLE u (x int)")
    db.execute("INSERT INTO u VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY u_x ON u (x)")
    assert invalid_indexes(db) == ["u_x"]
    db.execute("DELETE FROM u WHERE ctid = (SELECT min(ctid) FROM u)")
    sql_dir.write(
        {
            "001_ix.sql": "-- schemactl:no-transaction\n"
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS u_x ON u (x);\n"
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    assert "dropped the INVALID index u_x" in result.stderr
    assert invalid_indexes(db) == []
    assert db.execute("SELECT to_regclass('u_x') IS NOT NULL").fetchone() == (True,)


# --- 4. a terminated backend at each phase: exit 3, the state said, no traceback --


def test_terminated_while_waiting_for_the_migration_lock(database_url, sql_dir, db):
    sql_dir.write({"001_one.sql": "CREATE TABLE one (x int);\n"})
    key = advisory_lock_key(db.info.dbname, TABLE)
    db.execute("SELECT pg_advisory_lock(%s)", (key,))
    proc = start(database_url, sql_dir, "migrate")
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # target
        assert proc.stderr.readline().startswith("waiting for the migration lock")
        terminate(db, runner_pids(db))
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 3, err
    assert_no_traceback(err)
    assert "error: connection lost during the wait for the migration lock" in err
    assert "  state: nothing was changed" in err
    assert history(db) == []


def test_terminated_while_reading_the_history(database_url, sql_dir, db, blocker):
    sql_dir.write({"001_one.sql": "CREATE TABLE one (x int);\n"})
    db.execute("CREATE TABLE schema_migrations (version bigint)")  # any table will do
    blocker.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (waiting,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        terminate(db, [waiting])
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 3, err
    assert_no_traceback(err)
    assert "error: connection lost while reading the history table" in err
    assert "  state: nothing was changed" in err
    blocker.rollback()
    assert db.execute("SELECT to_regclass('one')").fetchone() == (None,)


def test_terminated_while_a_file_runs(database_url, sql_dir, db, blocker):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE one (x int);\n",
            "002_alter.sql": "CREATE TABLE two (x int);\nALTER TABLE a ADD COLUMN y int;\n",
        }
    )
    blocker.execute("SELECT * FROM a")
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (waiting,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        terminate(db, [waiting])
        _, err = finish(proc)
    finally:
        finish(proc)
    blocker.rollback()
    assert proc.returncode == 3, err
    assert_no_traceback(err)
    path = sql_dir.path / "002_alter.sql"
    assert f"error: connection lost while running {path}:2:1" in err
    assert (
        "  state: 002_alter.sql was not committed; 1 migration applied before it in this "
        "run is kept and durable"
    ) in err
    assert history(db) == [(1, True)]
    assert db.execute("SELECT to_regclass('two')").fetchone() == (None,)


def test_terminated_while_recording_the_file(database_url, sql_dir, db, blocker):
    sql_dir.write({"001_one.sql": "SELECT 1;\n"})
    assert (
        run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir).returncode
        == 0
    )
    sql_dir.write({"002_two.sql": "CREATE TABLE two (x int);\n"})
    # SHARE lets the runner read the history but not insert its row.
    blocker.execute("LOCK TABLE schema_migrations IN SHARE MODE")
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (waiting,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        terminate(db, [waiting])
        _, err = finish(proc)
    finally:
        finish(proc)
    blocker.rollback()
    assert proc.returncode == 3, err
    assert_no_traceback(err)
    assert "error: connection lost while recording 002_two.sql" in err
    assert (
        "  state: 002_two.sql rolled back; nothing was applied before it in this run"
        in err
    )
    assert history(db) == [(1, True)]
    assert db.execute("SELECT to_regclass('two')").fetchone() == (None,)


def test_a_lost_lock_connection_stops_the_file_from_committing(
    database_url, sql_dir, db, blocker
):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "ALTER TABLE a ADD COLUMN y int;\n"})
    blocker.execute("SELECT * FROM a")
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (worker,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        # The other schemactl backend is the lock connection.
        terminate(db, [pid for pid in runner_pids(db) if pid != worker])
        wait_for(
            db,
            "SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory')",
        )
        blocker.rollback()  # the ALTER now runs; the guard must refuse the commit
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 3, err
    assert_no_traceback(err)
    assert (
        "error: the migration lock was lost before 001_alter.sql could be recorded"
        in err
    )
    assert "  state: 001_alter.sql rolled back" in err
    assert not has_column(db, "a", "y")
    assert history(db) == []


# --- 6. each file runs in a fresh session; one runner at a time -------------------


@pytest.fixture
def role(db) -> Iterator[str]:
    name = f"schemactl_test_role_{uuid.uuid4().hex[:12]}"
    db.execute(f'CREATE ROLE "{name}" NOLOGIN')
    try:
        yield name
    finally:
        db.execute(f'DROP ROLE IF EXISTS "{name}"')


CHECK_FRESH_SESSION = """DO $$ BEGIN
  IF current_user <> session_user THEN RAISE EXCEPTION 'role leaked: %', current_user; END IF;
  IF to_regclass('pg_temp.scratch') IS NOT NULL THEN RAISE EXCEPTION 'temp table leaked'; END IF;
  IF EXISTS (SELECT FROM pg_prepared_statements) THEN RAISE EXCEPTION 'prepared statement leaked'; END IF;
  IF EXISTS (SELECT FROM pg_listening_channels()) THEN RAISE EXCEPTION 'listener leaked'; END IF;
  IF EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())
    THEN RAISE EXCEPTION 'advisory lock leaked'; END IF;
  IF current_setting('search_path') <> '"$user", public' THEN RAISE EXCEPTION 'search_path leaked'; END IF;
END $$;
CREATE TABLE made_by_two (x int);
"""


@pytest.mark.parametrize("identity", ["SET ROLE", "SET SESSION AUTHORIZATION"])
def test_each_file_starts_in_a_fresh_session(run_cli, sql_dir, db, role, identity):
    db.execute("CREATE SCHEMA other")
    sql_dir.write(
        {
            "001_dirty.sql": f'{identity} "{role}";\n'
            "CREATE TEMP TABLE scratch (x int);\nPREPARE p AS SELECT 1;\n"
            "LISTEN ch;\nSELECT pg_advisory_lock(42);\nSET search_path TO other;\n",
            "002_check.sql": CHECK_FRESH_SESSION,
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    login = db.info.user
    assert db.execute(
        "SELECT version, applied_by FROM schema_migrations ORDER BY version"
    ).fetchall() == [(1, login), (2, login)]
    assert db.execute(
        "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_two'"
    ).fetchone() == (login,)


def test_a_bookkeeping_error_is_not_blamed_on_the_last_statement(run_cli, sql_dir, db):
    db.execute(
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
        "applied_by text NOT NULL DEFAULT current_user, execution_ms integer NOT NULL, "
        "success boolean NOT NULL DEFAULT true)"
    )
    db.execute(
        "CREATE FUNCTION frozen() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'history is frozen'; END $$"
    )
    db.execute(
        "CREATE TRIGGER frozen BEFORE INSERT ON schema_migrations "
        "FOR EACH ROW EXECUTE FUNCTION frozen()"
    )
    sql_dir.write({"001_t.sql": "CREATE TABLE t (x int);\n"})
    result = run_cli("migrate")
    assert result.exit_code == 1
    assert (
        "error: could not record 001_t.sql in the history table "
        "public.schema_migrations (or its audit log): history is frozen"
    ) in result.stderr
    assert "001_t.sql:1:1" not in result.stderr
    assert "  state: 001_t.sql was rolled back" in result.stderr
    assert db.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_a_second_runner_cannot_slip_in_between_two_files(
    database_url, sql_dir, db, blocker
):
    db.execute("CREATE TABLE a (x int)")
    db.execute("CREATE TABLE ledger (version int)")
    sql_dir.write(
        {
            # What a file may do to its session, the runner's lock included.
            "001_release.sql": "-- schemactl:no-transaction\nDISCARD ALL;\n"
            "SELECT pg_advisory_unlock_all();\nINSERT INTO ledger VALUES (1);\n",
            "002_alter.sql": "INSERT INTO ledger VALUES (2);\nALTER TABLE a ADD COLUMN y int;\n",
        }
    )
    blocker.execute("SELECT * FROM a")
    first = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    second = None
    try:
        wait_for(db, RUNNER_WAITING_ON_LOCK)  # the first runner is inside file 2
        second = start(database_url, sql_dir, "migrate")
        assert second.stderr is not None
        second.stderr.readline()  # target
        assert second.stderr.readline().startswith("waiting for the migration lock")
        blocker.rollback()
        _, first_err = finish(first)
        second_out, second_err = finish(second)
    finally:
        finish(first)
        if second is not None:
            finish(second)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert second_out.startswith("nothing to migrate")
    assert db.execute(
        "SELECT version, count(*) FROM ledger GROUP BY version ORDER BY version"
    ).fetchall() == [(1, 1), (2, 1)]


def test_a_server_idle_session_timeout_does_not_end_the_lock_connection(
    run_cli, sql_dir, db
):
    # The lock connection idles while the worker sleeps well past the timeout.
    db.execute(f'ALTER DATABASE "{db.info.dbname}" SET idle_session_timeout = 100')
    sql_dir.write({"001_slow.sql": "SELECT pg_sleep(0.5);\n"})
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    assert history(db) == [(1, True)]


# --- what a file does to its session cannot switch the safeguards off ------------


def test_a_file_that_resets_all_still_never_commits_after_its_runner_died(
    database_url, sql_dir, db, blocker
):
    sql_dir.write({"001_one.sql": "SELECT 1;\n"})
    assert (
        run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir).returncode
        == 0
    )
    sql_dir.write({"002_reset.sql": "RESET ALL;\nCREATE TABLE z2 (x int);\n"})
    # SHARE lets the runner read the history but not write the file's row.
    blocker.execute("LOCK TABLE schema_migrations IN SHARE MODE")
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (waiting,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        proc.kill()
        proc.wait()
        # The client check survived the file's RESET ALL: the backend ends
        # while the blocker still holds the lock.
        wait_until_gone(db, waiting)
    finally:
        finish(proc)
    blocker.rollback()
    assert db.execute("SELECT to_regclass('z2')").fetchone() == (None,)
    assert history(db) == [(1, True)]


def test_a_file_that_resets_all_still_waits_no_longer_than_the_lock_timeout(
    run_cli, sql_dir, db, blocker
):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "RESET ALL;\nALTER TABLE a ADD COLUMN y int;\n"})
    blocker.execute("SELECT * FROM a")
    result = run_cli(
        "migrate", "--table-lock-timeout", "0.5", "--table-lock-retries", "0"
    )
    assert result.exit_code == 3, result.output
    assert "gave up waiting for a table lock (0.5 s, tried once)" in result.stderr


def test_a_retried_file_starts_from_a_reset_session(database_url, sql_dir, db, blocker):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write(
        {
            "001_prepare.sql": "PREPARE p AS SELECT 1;\n"
            "SELECT pg_advisory_lock(7);\nALTER TABLE a ADD COLUMN y int;\n"
        }
    )
    blocker.execute("SELECT * FROM a")
    proc = start(
        database_url,
        sql_dir,
        "migrate",
        "--table-lock-timeout",
        "0.3",
        "--table-lock-retries",
        "20",
        "--table-lock-backoff",
        "0.05",
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # barrier: the first retry is announced
            if "retry 1 of 20" in line:
                break
        blocker.rollback()
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 0, err
    assert has_column(db, "a", "y")


def test_a_no_transaction_file_that_makes_transactions_read_only_is_recorded(
    run_cli, sql_dir, db
):
    sql_dir.write(
        {
            "001_ro.sql": "-- schemactl:no-transaction\nCREATE TABLE r (x int);\n"
            "SET default_transaction_read_only = on;\n"
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    assert history(db) == [(1, True)]


def test_a_deferred_constraint_failing_at_commit_is_the_files_failure(
    run_cli, sql_dir, db
):
    sql_dir.write(
        {
            "001_deferred.sql": "CREATE TABLE p (id int PRIMARY KEY);\n"
            "CREATE TABLE c (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n"
            "INSERT INTO c VALUES (1);\n"
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 1
    path = sql_dir.path / "001_deferred.sql"
    assert f"error: {path}: a deferred constraint failed when the file committed" in (
        result.stderr
    )
    assert "could not record" not in result.stderr
    assert "  state: 001_deferred.sql was rolled back" in result.stderr
    assert history(db) == []


def test_a_signal_during_server_notices_is_a_clean_cancel(database_url, sql_dir, db):
    sql_dir.write(
        {
            "001_notices.sql": "CREATE TABLE n (x int);\n"
            "DO $$ BEGIN FOR i IN 1..10000000 LOOP RAISE NOTICE 'n %', i; END LOOP; "
            "END $$;\n"
        }
    )
    proc = start(database_url, sql_dir, "migrate")
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # barrier: notices are being shown
            if "NOTICE: n 1000" in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 130, err[-2000:]
    assert_no_traceback(err)
    assert err.splitlines()[-1] == (
        "cancelled by SIGINT: 001_notices.sql rolled back; nothing was applied "
        "before it in this run"
    )
    assert history(db) == []
    assert db.execute("SELECT to_regclass('n')").fetchone() == (None,)


def test_a_no_transaction_file_stops_once_the_migration_lock_is_lost(
    database_url, sql_dir, db, blocker
):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write(
        {
            "001_steps.sql": "-- schemactl:no-transaction\nCREATE TABLE n1 (x int);\n"
            "ALTER TABLE a ADD COLUMN y int;\nCREATE TABLE n3 (x int);\n"
        }
    )
    blocker.execute("SELECT * FROM a")
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        (worker,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
        terminate(db, [pid for pid in runner_pids(db) if pid != worker])
        wait_for(
            db,
            "SELECT 1 WHERE NOT EXISTS "
            "(SELECT FROM pg_locks WHERE locktype = 'advisory')",
        )
        blocker.rollback()  # statement 2 now completes; 3 must not run
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 3, err
    assert_no_traceback(err)
    assert "the migration lock was lost before" in err
    assert "stopped at statement 3 of 3: statements 1-2 ran and stay applied" in err
    assert db.execute("SELECT to_regclass('n3')").fetchone() == (None,)
    assert history(db) == [(1, False)]


def test_a_concurrent_index_build_that_times_out_is_retried_and_fails_with_exit_3(
    run_cli, sql_dir, db, blocker
):
    db.execute("CREATE TABLE u (x int)")
    blocker.execute("INSERT INTO u VALUES (2)")  # an open writer the build waits for
    sql_dir.write(
        {
            "001_ix.sql": "-- schemactl:no-transaction\nCREATE INDEX CONCURRENTLY u_x ON u (x);\n"
        }
    )
    result = run_cli(
        "migrate",
        "--table-lock-timeout",
        "0.5",
        "--table-lock-retries",
        "1",
        "--table-lock-backoff",
        "0",
    )
    assert result.exit_code == 3, result.output
    assert "rolled back, retry 1 of 1" in result.stderr
    assert "the INVALID index u_x is left" in result.stderr
    blocker.rollback()
    assert run_cli("repair", "--yes").exit_code == 0
    rerun = run_cli("migrate")
    assert rerun.exit_code == 0, rerun.output
    assert "dropped the INVALID index u_x" in rerun.stderr
    assert invalid_indexes(db) == []
    assert db.execute("SELECT to_regclass('u_x') IS NOT NULL").fetchone() == (True,)


@pytest.mark.parametrize(
    "command", [("baseline", "--version", "1"), ("repair", "--yes")]
)
def test_baseline_and_repair_name_their_target(run_cli, sql_dir, db, command):
    sql_dir.write({"001_one.sql": "SELECT 1;\n"})
    result = run_cli(*command)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"target: {db.info.user}@")


def test_files_are_checked_before_the_migration_lock_is_taken(run_cli, sql_dir, db):
    """A bad file is refused at once, even while another runner holds the lock:
    checking never happens under it."""
    key = advisory_lock_key(db.info.dbname, TABLE)
    db.execute("SELECT pg_advisory_lock(%s)", (key,))
    sql_dir.write({"001_bad.sql": "SELECT 1;\n\\i other.sql\n"})
    result = run_cli("migrate", "--lock-timeout", "600")
    assert result.exit_code == 2
    assert "meta-command" in result.stderr
    assert "waiting for the migration lock" not in result.stderr


def test_turning_standard_conforming_strings_off_by_dynamic_sql_stops_the_file(
    run_cli, sql_dir, db
):
    sql_dir.write(
        {
            "001_scs.sql": "CREATE TABLE hc1 (x int);\n"
            "DO $$ BEGIN EXECUTE 'SET standard_conforming_' || 'strings = off'; END $$;\n"
            "SELECT 'x\\', '; COMMIT; SELECT 1 --';\n"
        }
    )
    result = run_cli("migrate")
    assert result.exit_code == 1
    path = sql_dir.path / "001_scs.sql"
    assert (
        f"error: {path}:2:1: this statement turned standard_conforming_strings off"
        in (result.stderr)
    )
    assert "  state: 001_scs.sql was rolled back" in result.stderr
    assert db.execute("SELECT to_regclass('hc1')").fetchone() == (None,)
    assert history(db) == []


def test_a_server_default_of_standard_conforming_strings_off_changes_nothing(
    run_cli, sql_dir, db
):
    db.execute(
        f'ALTER DATABASE "{db.info.dbname}" SET standard_conforming_strings = off'
    )
    sql_dir.write(
        {"001_s.sql": "CREATE TABLE s (v text);\nINSERT INTO s VALUES ('a\\');\n"}
    )
    result = run_cli("migrate")
    assert result.exit_code == 0, result.output
    assert db.execute("SELECT v FROM s").fetchone() == ("a\\",)


def test_a_file_edited_while_the_runner_waits_for_the_lock_is_refused(
    database_url, sql_dir, db
):
    sql_dir.write(
        {
            "001_a.sql": "CREATE TABLE a_old (x int);\n",
            "002_b.sql": "CREATE TABLE b_old (x int);\n",
        }
    )
    key = advisory_lock_key(db.info.dbname, TABLE)
    db.execute("SELECT pg_advisory_lock(%s)", (key,))
    proc = start(database_url, sql_dir, "migrate")
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # target
        assert proc.stderr.readline().startswith("waiting for the migration lock")
        # Checked already; edited before it runs.
        sql_dir.write({"002_b.sql": "CREATE TABLE b_new (x int);\n"})
        db.execute("SELECT pg_advisory_unlock(%s)", (key,))
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 2, err
    assert (
        f"{sql_dir.path / '002_b.sql'}: error: file changed while schemactl was running"
        in err
    )
    assert history(db) == [(1, True)]
    assert db.execute(
        "SELECT to_regclass('b_old') IS NULL AND to_regclass('b_new') IS NULL"
    ).fetchone() == (True,)


def test_a_second_signal_during_the_clean_up_aborts_at_once(
    database_url, sql_dir, db, blocker
):
    db.execute("CREATE TABLE u (x int)")
    blocker.execute("INSERT INTO u VALUES (1)")  # the build waits for this writer
    sql_dir.write(
        {
            "001_ix.sql": "-- schemactl:no-transaction\n"
            "CREATE INDEX CONCURRENTLY u_x ON u (x);\n"
        }
    )
    proc = start(database_url, sql_dir, "migrate", "--table-lock-timeout", "0")
    try:
        wait_for(db, RUNNER_RUNNING, "CREATE INDEX CONCURRENTLY%")
        proc.send_signal(signal.SIGINT)
        # The clean-up drops the INVALID index, and waits for the same writer.
        wait_for(db, RUNNER_RUNNING, "DROP INDEX CONCURRENTLY%")
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 130, err
    assert_no_traceback(err)
    assert err.splitlines()[-1].startswith("aborted: second signal during clean-up")
    blocker.rollback()
    wait_for(db, NO_RUNNER_LEFT)
    assert advisory_locks(db) == 0
