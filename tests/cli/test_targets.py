"""Unusual targets, end to end on a real server: a least-privilege deploy role, a
read-only database, non-UTF-8 databases, reserved schemas, an unreachable server;
and what a file may hold (COPY TO STDOUT, RAISE WARNING, a failed no-transaction
file) as status and verify see it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from schemactl.core.history import HISTORY_TABLE_DDL
from tests.conftest import MigrationDir, public_tables, run_subprocess, without_progress

Connection = psycopg.Connection[Any]

ONE = "CREATE TABLE one (id int);\n"


def scalar(conn: Connection, query: str, *params: Any) -> Any:
    """Return the first column of the single row a query returns."""
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def history(conn: Connection) -> list[tuple[int, str, bool]]:
    rows = conn.execute(
        "SELECT version, applied_by, success FROM schema_migrations ORDER BY version"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def history_table_exists(conn: Connection) -> bool:
    return bool(
        scalar(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    )


def role_url(server: dict[str, Any], dbname: str, role: str) -> str:
    """The server's conninfo, logging in as another role (trust: no password)."""
    params = {
        k: v for k, v in server.items() if k not in ("dbname", "user", "password")
    }
    return make_conninfo("", **params, user=role, dbname=dbname)


# --- 1. a least-privilege deploy role ------------------------------------------


@dataclass(frozen=True)
class DeployRole:
    """A LOGIN role, and a URL that logs in as it to the test database."""

    name: str
    url: str


@pytest.fixture
def deploy_role(
    server_conninfo: dict[str, Any], db: Connection
) -> Iterator[DeployRole]:
    """A fresh LOGIN role with no privileges yet; dropped (with everything it owns
    or was granted in the test database) after the test."""
    name = f"schemactl_deploy_{uuid.uuid4().hex[:12]}"
    role = sql.Identifier(name)
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
    try:
        yield DeployRole(name, role_url(server_conninfo, db.info.dbname, name))
    finally:
        try:
            # CASCADE: objects of others inside its schema go too.
            db.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(role))
        finally:
            db.execute(sql.SQL("DROP ROLE {}").format(role))


def grant_deploy_privileges(db: Connection, role: str) -> None:
    """CONNECT, USAGE on public, DML on the existing history table, and a schema
    of its own: nothing more (no CREATE on public, no TEMP)."""
    ident = sql.Identifier(role)
    database = sql.Identifier(db.info.dbname)
    for statement in (
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database),
        # PostgreSQL 14 and older grant CREATE on schema public to PUBLIC in
        # every new database; 15 and newer do not (then this changes nothing).
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, ident),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
        sql.SQL(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON public.schema_migrations TO {}"
        ).format(ident),
        sql.SQL("CREATE SCHEMA app AUTHORIZATION {}").format(ident),
    ):
        db.execute(statement)
    # The premise of the test: the role cannot create the history table itself.
    privileges = db.execute(
        "SELECT has_schema_privilege(%(r)s, 'public', 'CREATE'),"
        " has_database_privilege(%(r)s, current_database(), 'CREATE'),"
        " has_database_privilege(%(r)s, current_database(), 'TEMP'),"
        " (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles"
        "  WHERE rolname = %(r)s)",
        {"r": role},
    ).fetchone()
    assert privileges == (False, False, False, False)


def test_least_privilege_role_runs_migrate_status_verify_rollback_repair(
    run_cli, sql_dir: MigrationDir, db: Connection, deploy_role: DeployRole
):
    superuser = scalar(db, "SELECT current_user")
    # The superuser applies a first migration: that creates the history table.
    sql_dir.write({"001_init.sql": "SELECT 1;\n"})
    assert run_cli("migrate").exit_code == 0
    grant_deploy_privileges(db, deploy_role.name)

    def as_role(*args: str) -> Any:
        return run_cli(*args, env={"DATABASE_URL": deploy_role.url})

    sql_dir.write(
        {
            "002_app.sql": "CREATE TABLE app.t (id int);\n",
            "002_app.down.sql": "DROP TABLE app.t;\n",
        }
    )
    migrated = as_role("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert migrated.stdout.startswith("applied 002_app.sql (")
    assert f"target: {deploy_role.name}@" in migrated.stderr
    assert history(db) == [(1, superuser, True), (2, deploy_role.name, True)]
    assert scalar(db, "SELECT to_regclass('app.t') IS NOT NULL") is True

    status = as_role("status")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines()[-1] == (
        "public.schema_migrations: database at version 2"
    )
    verify = as_role("verify")
    assert verify.exit_code == 0, verify.output
    assert verify.stdout.splitlines()[-1] == (
        "verify ok: 2 applied, 0 pending, 0 with drift"
    )

    rolled_back = as_role("rollback")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert rolled_back.stdout.splitlines()[0].startswith(
        "reverted 002_app.sql with 002_app.down.sql ("
    )
    assert history(db) == [(1, superuser, True)]
    assert scalar(db, "SELECT to_regclass('app.t') IS NULL") is True

    assert as_role("migrate").exit_code == 0
    sql_dir.write({"002_app.sql": "CREATE TABLE app.t (id int);\n-- reviewed\n"})
    assert as_role("verify").exit_code == 1
    repaired = as_role("repair", "--yes")
    assert repaired.exit_code == 0, repaired.output
    assert repaired.stdout.splitlines()[-1] == "history repaired"
    assert as_role("verify").exit_code == 0
    assert history(db) == [(1, superuser, True), (2, deploy_role.name, True)]
    # Nothing was created outside the role's own schema.
    assert public_tables(db) == ["schema_migrations"]


def test_least_privilege_role_runs_baseline_on_a_table_the_superuser_created(
    run_cli, sql_dir: MigrationDir, db: Connection, deploy_role: DeployRole
):
    db.execute(
        sql.SQL(HISTORY_TABLE_DDL).format(sql.Identifier("public", "schema_migrations"))
    )
    grant_deploy_privileges(db, deploy_role.name)
    with psycopg.connect(deploy_role.url, autocommit=True) as built:  # as psql -f
        built.execute("CREATE TABLE app.one (id int); CREATE TABLE app.two (id int)")
    sql_dir.write(
        {
            "001_one.sql": "CREATE TABLE app.one (id int);\n",
            "002_two.sql": "CREATE TABLE app.two (id int);\n",
            "003_three.sql": "CREATE TABLE app.three (id int);\n",
        }
    )
    env = {"DATABASE_URL": deploy_role.url}
    result = run_cli("baseline", "--version", "2", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "baselined 2 migrations (database at version 2)"
    )
    assert history(db) == [(1, deploy_role.name, True), (2, deploy_role.name, True)]
    migrated = run_cli("migrate", env=env)
    assert migrated.exit_code == 0, migrated.output
    assert history(db)[-1] == (3, deploy_role.name, True)


# --- 2. a read-only database ---------------------------------------------------


def test_read_only_database_is_refused_with_exit_3_and_nothing_created(
    database_url: str, sql_dir: MigrationDir, db: Connection
):
    db.execute(
        sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
            sql.Identifier(db.info.dbname)
        )
    )
    with psycopg.connect(database_url) as fresh:  # new sessions see the setting
        assert scalar(fresh, "SHOW default_transaction_read_only") == "on"
    sql_dir.write({"001_one.sql": ONE})

    done = run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir)
    assert done.returncode == 3, done.stderr
    assert "only allows read-only transactions" in done.stderr
    assert "nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not history_table_exists(db)
    assert public_tables(db) == []

    status = run_subprocess("status", database_url=database_url, sql_dir=sql_dir)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == (
        "public.schema_migrations: database at version none"
    )
    assert "pending" in status.stdout


@pytest.mark.parametrize(
    "args",
    [("migrate",), ("baseline", "--version", "1"), ("repair", "--yes")],
    ids=lambda args: args[0],
)
def test_a_role_whose_transactions_are_read_only_is_refused_before_anything_runs(
    database_url: str,
    sql_dir: MigrationDir,
    db: Connection,
    deploy_role: DeployRole,
    args: tuple[str, ...],
):
    db.execute(
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
            sql.Identifier(deploy_role.name)
        )
    )
    db.execute(
        sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(
            sql.Identifier(deploy_role.name)
        )
    )
    sql_dir.write({"001_one.sql": ONE})

    done = run_subprocess(*args, database_url=deploy_role.url, sql_dir=sql_dir)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {deploy_role.name}@{db.info.host}:{db.info.port}/{db.info.dbname} "
        "only allows read-only transactions (default_transaction_read_only is on); "
        "nothing was changed",
        "  hint: connect to a writable database, or as a role without "
        "default_transaction_read_only",
    ]
    assert done.stdout == ""
    assert not history_table_exists(db)
    assert public_tables(db) == []

    status = run_subprocess("status", database_url=deploy_role.url, sql_dir=sql_dir)
    assert status.returncode == 0, status.stderr
    assert "pending" in status.stdout


# --- 3. databases that are not UTF-8 -------------------------------------------


@pytest.fixture
def make_database(server_conninfo: dict[str, Any]) -> Iterator[Callable[[str], str]]:
    """Create databases with CREATE DATABASE options; drop them after the test."""
    created: list[str] = []
    admin_url = make_conninfo("", **server_conninfo)

    def make(options: str) -> str:
        name = f"schemactl_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} ").format(sql.Identifier(name))
                + sql.SQL(options)  # a constant of this module, not input
            )
        created.append(name)
        return make_conninfo(admin_url, dbname=name)

    yield make
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in created:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


def read_utf8(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, client_encoding="UTF8") as conn:
        return conn.execute(query).fetchall()


def test_latin1_database_takes_latin1_text_and_refuses_the_rest(
    make_database: Callable[[str], str], sql_dir: MigrationDir
):
    url = make_database(
        "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    )
    assert read_utf8(url, "SHOW server_encoding") == [("LATIN1",)]
    sql_dir.write(
        {"001_cafe.sql": "CREATE TABLE t (v text);\nINSERT INTO t VALUES ('café');\n"}
    )
    applied = run_subprocess("migrate", database_url=url, sql_dir=sql_dir)
    assert applied.returncode == 0, applied.stderr
    assert read_utf8(url, "SELECT v FROM t") == [("café",)]
    # Stored as one LATIN1 byte per character, not as UTF-8 bytes.
    assert read_utf8(url, "SELECT octet_length(v) FROM t") == [(4,)]

    sql_dir.write(
        {
            "002_arrow.sql": "INSERT INTO t VALUES ('fine');\nINSERT INTO t VALUES ('→');\n"
        }
    )
    failed = run_subprocess("migrate", database_url=url, sql_dir=sql_dir)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    target, first = without_progress(failed.stderr)[:2]
    assert target.startswith("target: ")
    assert first.startswith(f"{sql_dir.path / '002_arrow.sql'}:2:1: error: ")
    assert 'has no equivalent in encoding "LATIN1"' in first
    assert "  SQLSTATE: 22P05" in failed.stderr
    assert read_utf8(url, "SELECT version FROM schema_migrations") == [(1,)]
    assert read_utf8(url, "SELECT v FROM t") == [("café",)]


def test_sql_ascii_database_keeps_utf8_text(
    make_database: Callable[[str], str], sql_dir: MigrationDir
):
    url = make_database(
        "ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    assert read_utf8(url, "SHOW server_encoding") == [("SQL_ASCII",)]
    sql_dir.write(
        {"001_cafe.sql": "CREATE TABLE t (v text);\nINSERT INTO t VALUES ('café');\n"}
    )
    applied = run_subprocess("migrate", database_url=url, sql_dir=sql_dir)
    assert applied.returncode == 0, applied.stderr
    assert read_utf8(url, "SELECT v FROM t") == [("café",)]
    assert read_utf8(url, "SELECT version FROM schema_migrations") == [(1,)]


# --- 4. reserved schemas for the history table ---------------------------------


def catalog_snapshot(db: Connection) -> tuple[list[Any], int]:
    namespaces = db.execute("SELECT nspname FROM pg_namespace ORDER BY 1").fetchall()
    return namespaces, scalar(db, "SELECT count(*) FROM pg_class WHERE relname = 'h'")


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "--table", "{table}"],
        ["--table", "{table}", "baseline", "--version", "1"],
    ],
    ids=["migrate", "baseline"],
)
@pytest.mark.parametrize("schema", ["pg_catalog", "pg_temp"])
def test_reserved_schema_for_the_history_table_is_a_usage_error(
    run_cli, sql_dir: MigrationDir, db: Connection, schema: str, args: list[str]
):
    sql_dir.write({"001_one.sql": ONE})
    before = catalog_snapshot(db)
    table = f"{schema}.h"
    result = run_cli(*(arg.format(table=table) for arg in args))
    assert result.exit_code == 2, result.output
    assert f"invalid --table '{table}'" in result.stderr
    assert f"schema '{schema}' is reserved for the system" in result.stderr
    assert catalog_snapshot(db) == before
    assert before[1] == 0
    assert public_tables(db) == []


# --- 5. --traceback never changes the exit code --------------------------------

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/x"


@pytest.mark.parametrize(
    "args",
    [
        ["--traceback", "migrate", "-d", CLOSED_PORT_URL, "--connect-timeout", "2"],
        ["migrate", "--traceback", "-d", CLOSED_PORT_URL, "--connect-timeout", "2"],
    ],
    ids=["before the command", "after the command"],
)
def test_traceback_is_shown_and_the_exit_code_stays_3(
    sql_dir: MigrationDir, args: list[str]
):
    done = run_subprocess(*args, database_url=CLOSED_PORT_URL, sql_dir=sql_dir)
    assert done.returncode == 3, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "schemactl.errors.ConnectError: cannot connect to" in done.stderr
    assert f"\nerror: cannot connect to {CLOSED_PORT_URL}: " in done.stderr


def test_without_traceback_the_same_failure_exits_3_without_one(sql_dir: MigrationDir):
    done = run_subprocess(
        "migrate",
        "-d",
        CLOSED_PORT_URL,
        "--connect-timeout",
        "2",
        database_url=CLOSED_PORT_URL,
        sql_dir=sql_dir,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(f"error: cannot connect to {CLOSED_PORT_URL}")
    assert "Traceback" not in done.stderr


# --- 6. COPY ... TO STDOUT is refused before anything runs ---------------------


@pytest.mark.parametrize(
    "copy",
    ["COPY t TO STDOUT;", "copy (SELECT id FROM t) to stdout with (format csv);"],
    ids=["table", "query"],
)
@pytest.mark.parametrize(
    "header",
    ["", "-- schemactl:no-transaction\n"],
    ids=["transactional", "no-transaction"],
)
def test_copy_to_stdout_is_refused_before_anything_runs(
    run_cli, sql_dir: MigrationDir, db: Connection, header: str, copy: str
):
    sql_dir.write(
        {
            "001_one.sql": ONE,
            "002_copy.sql": f"{header}CREATE TABLE t (id int);\n{copy}\nSELECT 1;\n",
        }
    )
    line = header.count("\n") + 2
    result = run_cli("migrate")
    assert result.exit_code == 2, result.output
    assert (
        f"{sql_dir.path / '002_copy.sql'}:{line}:1: error: COPY ... TO STDOUT"
        in result.stderr
    )
    assert result.stdout == ""
    # Not the earlier file, not the earlier statement, not the history table.
    assert public_tables(db) == []


# --- 7. server warnings are shown with the file's location ---------------------


def test_raise_warning_is_shown_at_its_file_line(
    database_url: str, sql_dir: MigrationDir, db: Connection
):
    sql_dir.write(
        {
            "001_warn.sql": "CREATE TABLE t (id int);\n"
            "DO $$ BEGIN RAISE WARNING 'careful'; END $$;\n"
        }
    )
    done = run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir)
    assert done.returncode == 0, done.stderr
    assert f"{sql_dir.path / '001_warn.sql'}:2:1: WARNING: careful" in (
        done.stderr.splitlines()
    )
    assert history(db) == [(1, scalar(db, "SELECT current_user"), True)]


# --- 8. a failed row is not applied ------------------------------------------


@pytest.mark.parametrize(
    ("files", "version", "applied"),
    [
        ({"001_one.sql": ONE}, "1", 1),
        ({}, "none", 0),
    ],
    ids=["after an applied version", "alone"],
)
def test_status_and_verify_do_not_count_a_failed_row_as_applied(
    run_cli,
    sql_dir: MigrationDir,
    db: Connection,
    files: dict[str, str],
    version: str,
    applied: int,
):
    sql_dir.write(
        {
            **files,
            "002_half.sql": "-- schemactl:no-transaction\n"
            "CREATE TABLE half (id int);\nSELECT 1/0;\n",
        }
    )
    assert run_cli("migrate").exit_code == 1
    assert [(v, ok) for v, _, ok in history(db)][-1] == (2, False)

    status = run_cli("status")
    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert lines[-1] == f"public.schema_migrations: database at version {version}"
    assert lines[-2].split()[:3] == ["2", "half", "failed"]
    document = json.loads(run_cli("status", "--json").stdout)
    assert document["current_version"] == (None if version == "none" else int(version))

    verify = run_cli("verify")
    assert verify.exit_code == 1
    assert f"drift: {sql_dir.path / '002_half.sql'}: failed" in verify.stdout
    assert verify.stdout.splitlines()[-2] == (
        f"verify FAILED: {applied} applied, 0 pending, 1 with drift"
    )
    assert verify.stdout.splitlines()[-1].startswith(
        "  hint: a no-transaction file stopped part-way"
    )
