"""schemactl behind real PgBouncer processes (Debian's package, started here).

A detected pooler is refused for the commands that change the database
(exit 3) unless session pooling is declared (--pooler session); then the probe
still refuses transaction and statement pooling, within a bounded time.
Declared session pooling works like a direct connection: settings (refused in
the startup packet, or dropped by ignore_startup_parameters) are SET and SET
again after each file's reset, the migration lock and its guard use the
server's own pids, and runners through the pooler and direct ones share one
lock. status, verify and log read through any pooler.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import make_conninfo

from schemactl.cli import cli as schemactl_cli
from schemactl.config import Settings, parse_table_name
from schemactl.db.connection import (
    connect,
    is_pooled,
    server_database,
    server_pid,
    settings_after_reset,
)
from schemactl.db.lock import advisory_lock_key
from schemactl.db.target import pooling_mode, refuse_unsafe_target
from tests.cli.test_faults import (
    RUNNER_RUNNING,
    RUNNER_WAITING_ON_LOCK,
    finish,
    has_column,
    start,
    wait_for,
    wait_until_gone,
)
from tests.conftest import (
    MigrationDir,
    janitor_for,
    public_tables,
    run_subprocess,
    runner_env,
    url_for,
)
from tests.pgbouncer import PgBouncer, free_port, start_pgbouncer, warm_up
from tests.wire import counting_proxy

Connection = psycopg.Connection[Any]

# One PgBouncer per configuration; its fallback `*` entry sends each test's
# own database through it.
POOLS: dict[str, dict[str, str]] = {
    "session": {"pool_mode": "session", "default_pool_size": "20"},
    "transaction": {"pool_mode": "transaction", "default_pool_size": "1"},
    "transaction-4": {"pool_mode": "transaction", "default_pool_size": "4"},
    "statement": {"pool_mode": "statement", "default_pool_size": "1"},
    "session-ignoring-options": {
        "pool_mode": "session",
        "default_pool_size": "20",
        "ignore_startup_parameters": "options",
    },
    # FIFO reuse of server connections: the probe's second transaction tells.
    "transaction-4-round-robin": {
        "pool_mode": "transaction",
        "default_pool_size": "4",
        "server_round_robin": "1",
        "ignore_startup_parameters": "options",
    },
    # Nothing reset between clients: what one client leaves on a server
    # connection (a prepared statement) meets the next.
    "session-no-reset": {
        "pool_mode": "session",
        "default_pool_size": "2",
        "server_reset_query": "",
    },
    # One server connection, and a client waits for it without limit.
    "session-1-no-wait-limit": {
        "pool_mode": "session",
        "default_pool_size": "1",
        "query_wait_timeout": "0",
    },
}
# Pools that hold this many idle server connections before the test (warmed).
WARM = {"transaction-4": 4, "transaction-4-round-robin": 4}
SESSION_POOLS = ["session", "session-ignoring-options"]
REFUSED_POOLS = [
    "transaction",
    "transaction-4",
    "statement",
    "transaction-4-round-robin",
]
HINT = (
    "  hint: connect to PostgreSQL directly (not through the pooler), or use session "
    "pooling (pool_mode = session)"
)
DECLARE_HINT = (
    "  hint: connect to PostgreSQL directly, or, if every pooler in front of it "
    "uses pool_mode = session, say so with --pooler session "
    "(SCHEMACTL_POOLER=session)"
)
SESSION = ("--pooler", "session")


@pytest.fixture(scope="module")
def bouncers(server_conninfo: dict[str, Any]) -> Iterator[Callable[[str], PgBouncer]]:
    """Start each configuration's PgBouncer when first asked; stop them all."""
    started: dict[str, PgBouncer] = {}

    def get(name: str) -> PgBouncer:
        if name not in started:
            started[name] = start_pgbouncer(server_conninfo, settings=POOLS[name])
        return started[name]

    try:
        yield get
    finally:
        for bouncer in started.values():
            bouncer.stop()


@dataclass
class Target:
    """A fresh database of this test, directly and through each pool."""

    dbname: str
    direct: str
    bouncers: Callable[[str], PgBouncer]

    def through(self, pool: str) -> str:
        url = self.bouncers(pool).url(self.dbname)
        if pool in WARM:
            warm_up(url, WARM[pool])
        return url


@pytest.fixture
def target(
    server_conninfo: dict[str, Any], bouncers: Callable[[str], PgBouncer]
) -> Iterator[Target]:
    """A fresh database named pb_<uuid>, dropped after the test (its pooled
    server connections are ended first)."""
    janitor = janitor_for(server_conninfo, f"pb_{uuid.uuid4().hex[:12]}")
    with janitor:
        yield Target(janitor.dbname, url_for(server_conninfo, janitor.dbname), bouncers)


@pytest.fixture
def db(target: Target) -> Iterator[Connection]:
    with psycopg.connect(target.direct, autocommit=True) as conn:
        yield conn


def scalar(conn: Connection, query: str, *params: Any) -> Any:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def history(conn: Connection) -> list[tuple[int, bool]]:
    if scalar(conn, "SELECT to_regclass('public.schema_migrations') IS NULL"):
        return []
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT version, success FROM schema_migrations ORDER BY version"
        ).fetchall()
    ]


def cli(
    *args: str, url: str, sql_dir: MigrationDir
) -> subprocess.CompletedProcess[str]:
    """Run schemactl as a process (real exit codes) on url and sql_dir."""
    return run_subprocess(*args, database_url=url, sql_dir=sql_dir)


def settings_of(url: str) -> Settings:
    return Settings(database_url=url, table_lock_timeout=7, pooler="session")


# --- what a connection finds out about its session -----------------------------


def test_a_direct_connection_is_not_taken_for_a_pooler(target: Target):
    with connect(settings_of(target.direct)) as conn:
        assert server_pid(conn) == conn.info.backend_pid
        assert server_database(conn) == target.dbname
        assert not is_pooled(conn)
        # The settings came in the startup packet: RESET ALL returns to them.
        assert settings_after_reset(conn) == ""
        conn.execute("RESET ALL")
        assert scalar(conn, "SHOW lock_timeout") == "7s"


@pytest.mark.parametrize(
    ("pool", "mode"),
    [
        ("session", "session"),
        ("session-ignoring-options", "session"),
        ("transaction", "transaction"),
        ("transaction-4", "transaction"),
        ("transaction-4-round-robin", "transaction"),
        ("statement", "statement"),
    ],
)
def test_the_probe_tells_each_pooling_mode(target: Target, pool: str, mode: str):
    url = target.through(pool)
    with connect(settings_of(url)) as conn:
        pid = server_pid(conn)
        assert is_pooled(conn)
        assert pid != conn.info.backend_pid  # PgBouncer's own number
        assert server_database(conn) == target.dbname
        assert pooling_mode(conn, settings_of(url)) == mode


def test_the_probe_tells_a_cold_wide_transaction_pool(target: Target):
    # No idle server connection yet: the probe's client is the one that makes
    # the pool open its first.
    url = target.bouncers("transaction-4").url(target.dbname)
    with connect(settings_of(url)) as conn:
        assert server_pid(conn) != conn.info.backend_pid
        assert is_pooled(conn)
        assert pooling_mode(conn, settings_of(url)) == "transaction"


@pytest.mark.parametrize("pool", SESSION_POOLS)
def test_settings_missing_through_a_session_pooler_are_set_and_set_again(
    target: Target, pool: str
):
    url = target.through(pool)
    with connect(settings_of(url)) as conn:
        # PgBouncer refused the startup options, or dropped them silently.
        assert scalar(conn, "SHOW lock_timeout") == "0"
        assert server_pid(conn) != conn.info.backend_pid
        refuse_unsafe_target(conn, settings_of(url))
        assert scalar(conn, "SHOW lock_timeout") == "7s"
        assert scalar(conn, "SHOW client_connection_check_interval") == "1s"
        assert "SET lock_timeout = 7000" in settings_after_reset(conn)


# --- session pooling works ---------------------------------------------------

SEEN = (
    "INSERT INTO seen SELECT {file}, current_setting('application_name'), "
    "current_setting('client_encoding'), current_setting('lock_timeout'), "
    "current_setting('client_connection_check_interval'), "
    "current_setting('idle_session_timeout'), "
    # (Split in two: the file check refuses the name as a string literal.)
    "current_setting('standard_' || 'conforming_strings');\n"
)


@pytest.mark.parametrize("pool", SESSION_POOLS)
def test_migrate_and_status_work_through_a_session_pooler_with_the_settings(
    target: Target, db: Connection, sql_dir: MigrationDir, pool: str
):
    sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE seen (file int, application text, "
            "encoding text, lock_timeout text, check_interval text, "
            "idle_timeout text, strings text);\n"
            + SEEN.format(file=1)
            # Whatever a file changes, the next starts with schemactl's values.
            + "SET lock_timeout = 0;\nSET idle_session_timeout = 60000;\n"
            + "RESET client_connection_check_interval;\n",
            "002_two.sql": SEEN.format(file=2),
            "002_two.down.sql": "DELETE FROM seen WHERE file = 2;\n",
        }
    )
    url = target.through(pool)
    done = cli(
        "migrate", *SESSION, "--table-lock-timeout", "7", url=url, sql_dir=sql_dir
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("applied 2 migrations in ")
    assert "target: postgres@127.0.0.1:" in done.stderr
    assert db.execute("SELECT * FROM seen ORDER BY file").fetchall() == [
        (1, "schemactl", "UTF8", "7s", "1s", "0", "on"),
        (2, "schemactl", "UTF8", "7s", "1s", "0", "on"),
    ]
    # The audit log names the runner for every file (RESET ALL through the
    # pooler would have cleared the application name).
    assert db.execute(
        "SELECT DISTINCT application_name FROM schema_migrations_log"
    ).fetchall() == [("schemactl",)]
    assert history(db) == [(1, True), (2, True)]

    status = cli("status", url=url, sql_dir=sql_dir)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == (
        "public.schema_migrations: database at version 2"
    )
    verify = cli("verify", url=url, sql_dir=sql_dir)
    assert verify.returncode == 0, verify.stderr
    rolled_back = cli("rollback", *SESSION, url=url, sql_dir=sql_dir)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert history(db) == [(1, True)]


def start_runner(url: str, sql_dir: MigrationDir) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "schemactl",
            "migrate",
            *SESSION,
            "--lock-timeout",
            "120",
        ],
        env=runner_env(url, sql_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runners_through_session_poolers_and_direct_ones_apply_each_file_once(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    sql_dir.write(
        {
            "001_log.sql": "CREATE TABLE log (file text NOT NULL);\n"
            "INSERT INTO log VALUES ('001');\n",
            "002_two.sql": "INSERT INTO log VALUES ('002');\n",
            "003_three.sql": "INSERT INTO log VALUES ('003');\n",
        }
    )
    urls = [
        target.through("session"),
        target.through("session"),
        target.through("session-ignoring-options"),
        target.direct,
    ]
    key = advisory_lock_key(target.dbname, parse_table_name("schema_migrations"))
    with psycopg.connect(
        target.direct, autocommit=True, application_name="test-holder"
    ) as holder:
        holder_pid = holder.info.backend_pid
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        runners = [start_runner(url, sql_dir) for url in urls]
        try:
            # Barrier: each runner names its target, then waits for the lock.
            waiting = []
            for runner in runners:
                assert runner.stderr is not None
                runner.stderr.readline()
                waiting.append(runner.stderr.readline())
            holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
            outputs = [runner.communicate(timeout=120) for runner in runners]
        finally:
            for runner in runners:
                if runner.poll() is None:
                    runner.kill()
    assert all(
        line.startswith(f"waiting for the migration lock held by pid {holder_pid}")
        for line in waiting
    ), waiting
    assert [r.returncode for r in runners] == [0] * len(runners), outputs
    assert db.execute(
        "SELECT file, count(*) FROM log GROUP BY file ORDER BY file"
    ).fetchall() == [("001", 1), ("002", 1), ("003", 1)]
    applied = [
        line
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("applied ") and ".sql" in line
    ]
    assert len(applied) == 3


def test_a_pooler_name_for_the_database_shares_the_lock_with_direct_runners(
    server_conninfo: dict[str, Any],
    target: Target,
    db: Connection,
    sql_dir: MigrationDir,
):
    # PgBouncer calls the database `app_alias`; the lock is keyed on the
    # server's own name, so a direct holder keeps the runner out.
    bouncer = start_pgbouncer(
        server_conninfo,
        settings={"pool_mode": "session"},
        databases={"app_alias": {"dbname": target.dbname}},
    )
    try:
        sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n"})
        key = advisory_lock_key(target.dbname, parse_table_name("schema_migrations"))
        with psycopg.connect(target.direct, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (key,))
            done = cli(
                "migrate",
                *SESSION,
                "--lock-timeout",
                "0",
                url=bouncer.url("app_alias"),
                sql_dir=sql_dir,
            )
            assert done.returncode == 3, done.stderr
            assert f"(held by pid {holder.info.backend_pid}," in done.stderr
        assert public_tables(db) == []
        done = cli("migrate", *SESSION, url=bouncer.url("app_alias"), sql_dir=sql_dir)
        assert done.returncode == 0, done.stderr
        assert history(db) == [(1, True)]
    finally:
        bouncer.stop()


def test_a_blocked_statement_names_its_blocker_through_a_session_pooler(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    # The watch asks pg_blocking_pids about the worker's server pid, not the
    # number PgBouncer gave the client.
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "ALTER TABLE a ADD COLUMN y int;\n"})
    with psycopg.connect(
        target.direct, autocommit=True, application_name="test-blocker"
    ) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT * FROM a")
        done = cli(
            "migrate",
            *SESSION,
            "--table-lock-timeout",
            "1",
            "--table-lock-retries",
            "0",
            url=target.through("session"),
            sql_dir=sql_dir,
        )
        blocker_pid = blocker.info.backend_pid
    assert done.returncode == 3, done.stderr
    assert (
        f"blocked by pid {blocker_pid} (application test-blocker, idle in transaction"
        in done.stderr
    )
    assert history(db) == []


NO_ADVISORY_LOCK = """
SELECT 1 WHERE NOT EXISTS (
    SELECT FROM pg_locks WHERE locktype = 'advisory'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
"""


def test_a_runner_killed_behind_a_session_pooler_commits_nothing_and_frees_the_lock(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    db.execute("CREATE TABLE a (x int)")
    sql_dir.write({"001_alter.sql": "ALTER TABLE a ADD COLUMN y int;\n"})
    url = target.through("session")
    with psycopg.connect(target.direct, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT * FROM a")  # ACCESS SHARE, held until rollback
        proc = start(url, sql_dir, "migrate", *SESSION, "--table-lock-timeout", "0")
        try:
            (waiting,) = wait_for(db, RUNNER_WAITING_ON_LOCK)
            proc.kill()
            proc.wait()
            # PgBouncer closes the server connection of a client that left
            # mid-statement (the statement ends), and resets the idle lock
            # connection's session (server_reset_query = DISCARD ALL): the
            # lock goes with the runner.
            wait_until_gone(db, waiting)
            wait_for(db, NO_ADVISORY_LOCK)
        finally:
            finish(proc)
        blocker.execute("ROLLBACK")
    assert not has_column(db, "a", "y")
    assert history(db) == []
    done = cli("migrate", *SESSION, url=url, sql_dir=sql_dir)
    assert done.returncode == 0, done.stderr
    assert has_column(db, "a", "y")


def test_sigint_behind_a_session_pooler_cancels_the_statement(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    # The cancel request carries PgBouncer's key; PgBouncer passes it on.
    sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE one (x int);\n",
            "002_sleep.sql": "INSERT INTO one VALUES (1);\nSELECT pg_sleep(60);\n",
        }
    )
    proc = start(target.through("session"), sql_dir, "migrate", *SESSION)
    try:
        wait_for(db, RUNNER_RUNNING, "%SELECT pg_sleep(60)%")
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == (
        "cancelled by SIGINT: 002_sleep.sql rolled back; 1 migration applied "
        "before it in this run is kept and durable"
    )
    assert history(db) == [(1, True)]
    assert scalar(db, "SELECT count(*) FROM one") == 0
    wait_for(db, NO_ADVISORY_LOCK)


# --- a pooler is refused unless session pooling is declared --------------------


def refused_by_default(target: Target, url: str, port: int, sql_dir: MigrationDir):
    """Assert that each changing command is refused on url with --pooler auto
    (by flag, by SCHEMACTL_POOLER and by default)."""

    def refused(*args: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "schemactl", *args],
            env={**runner_env(url, sql_dir), **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert lines[0] == (
            f"error: postgres@127.0.0.1:{port}/{target.dbname} is reached through "
            "a connection pooler (the process number it gave is not the "
            "server's): its pooling mode cannot be proven from here (several "
            "poolers behind one address share no pools), and through "
            "transaction or statement pooling the session advisory lock that "
            "keeps two runners apart does not hold; nothing was changed"
        ), done.stderr
        assert DECLARE_HINT in lines
        assert "Traceback" not in done.stderr
        assert done.stdout == ""

    refused("migrate")
    refused("migrate", "--pooler", "auto", env={"SCHEMACTL_POOLER": "session"})
    refused("baseline", "--version", "1", env={"SCHEMACTL_POOLER": "auto"})
    refused("rollback")
    refused("repair", "--yes")


@pytest.mark.parametrize("pool", ["session", *REFUSED_POOLS])
def test_a_pooler_is_refused_unless_session_pooling_is_declared(
    target: Target, db: Connection, sql_dir: MigrationDir, pool: str
):
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n"})
    url = target.through(pool)
    refused_by_default(target, url, target.bouncers(pool).port, sql_dir)
    assert public_tables(db) == []
    # Reads go on through it.
    status = cli("status", url=url, sql_dir=sql_dir)
    assert status.returncode == 0, status.stderr
    if pool == "session":
        done = cli("migrate", *SESSION, url=url, sql_dir=sql_dir)
        assert done.returncode == 0, done.stderr
        assert history(db) == [(1, True)]


def test_two_transaction_poolers_on_one_port_are_refused_by_default(
    server_conninfo: dict[str, Any],
    target: Target,
    db: Connection,
    sql_dir: MigrationDir,
):
    """Two PgBouncer processes share a port (so_reuseport = 1): a second client
    may land in the other process's pool, where the probe would see what
    session pooling shows. The pooler is refused without any probe."""
    port = free_port()
    settings = {
        "pool_mode": "transaction",
        "default_pool_size": "1",
        "so_reuseport": "1",
    }
    bouncers = [
        start_pgbouncer(server_conninfo, settings=settings, port=port) for _ in range(2)
    ]
    try:
        assert all(b.process.poll() is None for b in bouncers)
        sql_dir.write(
            {
                "001_one.sql": "CREATE TABLE one (id int);\n",
                "001_one.down.sql": "DROP TABLE one;\n",
            }
        )
        url = bouncers[0].url(target.dbname)
        refused_by_default(target, url, port, sql_dir)
        assert public_tables(db) == []
        status = cli("status", url=url, sql_dir=sql_dir)
        assert status.returncode == 0, status.stderr
    finally:
        for bouncer in bouncers:
            bouncer.stop()


# --- declared, yet transaction or statement pooling: the probe refuses ---------


@pytest.mark.parametrize("pool", REFUSED_POOLS)
def test_changing_commands_are_refused_through_transaction_and_statement_pooling(
    target: Target, db: Connection, sql_dir: MigrationDir, pool: str
):
    mode = "statement" if pool == "statement" else "transaction"
    sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE one (id int);\n",
            "001_one.down.sql": "DROP TABLE one;\n",
        }
    )
    url = target.through(pool)
    server_default = scalar(db, "SHOW lock_timeout")

    def refused(*args: str) -> None:
        done = cli(*args, *SESSION, url=url, sql_dir=sql_dir)
        assert done.returncode == 3, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert lines[0] == (
            f"error: postgres@127.0.0.1:{target.bouncers(pool).port}/{target.dbname} "
            f"is reached through a connection pooler in {mode} pooling mode: a "
            f"server connection serves another client after each {mode}, so the "
            "session advisory lock that keeps two runners apart does not hold; "
            "nothing was changed"
        ), done.stderr
        assert HINT in lines
        assert "Traceback" not in done.stderr
        assert done.stdout == ""

    # Nothing applied yet: nothing is created either.
    for args in (("migrate",), ("baseline", "--version", "1")):
        refused(*args)
        assert public_tables(db) == []
        assert history(db) == []

    # Applied directly: rollback and repair through the pooler change nothing.
    assert cli("migrate", url=target.direct, sql_dir=sql_dir).returncode == 0
    refused("rollback")
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n-- edited\n"})
    refused("repair", "--yes")
    assert history(db) == [(1, True)]
    assert public_tables(db) == ["one", "schema_migrations"]
    assert scalar(db, "SELECT count(*) FROM schema_migrations_log") == 1
    # No setting was left on a pooled server connection for other clients.
    with psycopg.connect(url, autocommit=True) as other:
        assert scalar(other, "SHOW lock_timeout") == server_default


@pytest.mark.parametrize(
    "pool", ["transaction", "statement", "transaction-4-round-robin"]
)
def test_status_verify_and_log_read_through_transaction_and_statement_pooling(
    target: Target, db: Connection, sql_dir: MigrationDir, pool: str
):
    sql_dir.write(
        {"001_one.sql": "CREATE TABLE one (id int);\n", "002_two.sql": "SELECT 1;\n"}
    )
    done = cli("migrate", "--to", "1", url=target.direct, sql_dir=sql_dir)
    assert done.returncode == 0, done.stderr
    url = target.through(pool)
    server_default = scalar(db, "SHOW lock_timeout")

    status = cli("status", url=url, sql_dir=sql_dir)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == (
        "public.schema_migrations: database at version 1"
    )
    assert "pending" in status.stdout
    verify = cli("verify", url=url, sql_dir=sql_dir)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.splitlines()[-1] == (
        "verify ok: 1 applied, 1 pending, 0 with drift"
    )
    strict = cli("verify", "--strict", url=url, sql_dir=sql_dir)
    assert strict.returncode == 1, strict.stderr
    log = cli("log", url=url, sql_dir=sql_dir)
    assert log.returncode == 0, log.stderr
    assert "public.schema_migrations_log: 1 row" in log.stdout
    dry_run = cli("migrate", "--dry-run", url=url, sql_dir=sql_dir)
    assert dry_run.returncode == 0, dry_run.stderr
    # Their settings went with each read (SET LOCAL), never into the pool.
    with psycopg.connect(url, autocommit=True) as other:
        assert scalar(other, "SHOW lock_timeout") == server_default


def test_status_through_transaction_pooling_waits_no_longer_than_the_timeout(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n"})
    assert cli("migrate", url=target.direct, sql_dir=sql_dir).returncode == 0
    with psycopg.connect(
        target.direct, autocommit=True, application_name="test-locker"
    ) as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        status = cli(
            "status",
            "--table-lock-timeout",
            "1",
            url=target.through("transaction"),
            sql_dir=sql_dir,
        )
        locker_pid = locker.info.backend_pid
    assert status.returncode == 3, status.stderr
    assert (
        "error: timed out reading the history table public.schema_migrations: it is "
        f"locked by pid {locker_pid} (application test-locker" in status.stderr
    )


def test_options_of_the_user_are_not_dropped_where_a_pooler_refuses_them(
    target: Target, sql_dir: MigrationDir
):
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n"})
    url = target.through("session")
    done = subprocess.run(
        [sys.executable, "-m", "schemactl", "status"],
        env={**runner_env(url, sql_dir), "PGOPTIONS": "-c work_mem=64MB"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "it refuses the startup parameter `options`" in done.stderr
    assert "PGOPTIONS" in done.stderr
    assert "Traceback" not in done.stderr


def test_options_of_the_user_are_not_dropped_where_a_pooler_ignores_them(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    # ignore_startup_parameters = options: PgBouncer takes the parameter and
    # drops it; the session check sees the settings missing.
    db.execute("CREATE SCHEMA other")
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n"})
    url = target.through("session-ignoring-options")
    for args in (("status",), ("migrate", *SESSION)):
        done = subprocess.run(
            [sys.executable, "-m", "schemactl", *args],
            env={**runner_env(url, sql_dir), "PGOPTIONS": "-c search_path=other"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, (args, done.stderr)
        assert "it drops the startup parameter `options`" in done.stderr
        assert "PGOPTIONS" in done.stderr
        assert "Traceback" not in done.stderr
    assert public_tables(db) == []
    with psycopg.connect(target.direct, autocommit=True) as other:
        assert (
            scalar(other, "SELECT count(*) FROM pg_tables WHERE schemaname = 'other'")
            == 0
        )
    # Without options of its own, the run goes on (the settings are SET).
    done = cli("migrate", *SESSION, url=url, sql_dir=sql_dir)
    assert done.returncode == 0, done.stderr


def test_no_prepared_statement_is_left_on_a_pooled_server_connection(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    """Nothing resets the server connections between clients: two runs one
    after the other, each waiting many polls for the lock and applying many
    files, share the pool's two server connections (psycopg would prepare
    `_pg3_0` on each after five runs of one query)."""
    url = target.through("session-no-reset")
    key = advisory_lock_key(target.dbname, parse_table_name("schema_migrations"))
    files = 0
    for _ in range(2):
        sql_dir.write(
            {
                f"{files + n:03d}_t.sql": f"CREATE TABLE t{files + n} (id int);\n"
                for n in range(1, 9)
            }
        )
        files += 8
        with psycopg.connect(target.direct, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (key,))
            runner = start(url, sql_dir, "migrate", *SESSION, "--lock-timeout", "60")
            try:
                assert runner.stderr is not None
                runner.stderr.readline()  # the target
                assert runner.stderr.readline().startswith(
                    "waiting for the migration lock"
                )
                time.sleep(10 * 0.2)  # ten polls of the lock at least
                holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
                out, err = finish(runner)
            finally:
                finish(runner)
        assert runner.returncode == 0, err
        assert len(history(db)) == files, out


def test_the_probe_ends_on_a_session_pool_with_no_spare_server_connection(
    target: Target, db: Connection, sql_dir: MigrationDir
):
    # One server connection, held by the runner's worker; the probe's client
    # would wait for it without limit (query_wait_timeout = 0).
    sql_dir.write({"001_one.sql": "CREATE TABLE one (id int);\n"})
    url = target.through("session-1-no-wait-limit")
    began = time.monotonic()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "schemactl", "migrate", *SESSION),
            *("--connect-timeout", "2", "--lock-timeout", "1"),
        ],
        env=runner_env(url, sql_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - began
    assert done.returncode == 3, done.stderr
    assert took < 2 + 8, took
    port = target.bouncers("session-1-no-wait-limit").port
    assert done.stderr.splitlines()[0] == (
        f"error: postgres@127.0.0.1:{port}/{target.dbname} is reached through a "
        "connection pooler that had no free server connection for the check of "
        "its pooling mode within 2 s (schemactl needs two server connections, "
        "the worker and the lock, plus one briefly for this check); nothing was "
        "changed"
    ), done.stderr
    assert (
        "  hint: raise the pool size (default_pool_size, max_db_connections), or "
        "connect to PostgreSQL directly"
    ) in done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    assert public_tables(db) == []


# --- what the session check costs ----------------------------------------------


def test_the_session_check_costs_no_round_trip_on_a_direct_connection(
    server_conninfo: dict[str, Any], target: Target, sql_dir: MigrationDir
):
    """Counted on the wire: the check rides on the first query a command makes
    anyway (the same counts as before poolers were handled)."""
    sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE one (id int);\n",
            "002_two.sql": "CREATE TABLE two (id int);\n",
        }
    )
    host = str(server_conninfo.get("host") or "127.0.0.1")
    with counting_proxy(host, int(server_conninfo.get("port") or 5432)) as proxy:
        params = {k: v for k, v in server_conninfo.items() if k not in ("host", "port")}
        url = make_conninfo(
            "",
            **{**params, "dbname": target.dbname},
            host="127.0.0.1",
            port=proxy.port,
            sslmode="disable",
        )

        def counted(*args: str) -> tuple[int, int]:
            proxy.reset()
            result = CliRunner().invoke(
                schemactl_cli,
                list(args),
                env={"DATABASE_URL": url, "SCHEMACTL_DIR": str(sql_dir.path)},
                catch_exceptions=False,
            )
            assert result.exit_code == 0, result.output
            counts = proxy.counts()
            return counts["connections"], counts["round_trips"]

        # (connections, round trips)
        assert counted("status") == (1, 1)  # the history check carries it
        assert counted("migrate", "--dry-run") == (1, 1)
        assert counted("migrate") == (2, 22)
        assert counted("migrate") == (2, 7)  # nothing to do
        assert counted("status") == (1, 2)
        assert counted("log") == (1, 2)
