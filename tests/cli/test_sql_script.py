"""`schemactl sql` run with real psql leaves the same history and schema as migrate."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from schemactl.cli import cli
from tests.conftest import janitor_for, url_for

SHIPPED = Path(__file__).resolve().parents[2] / "sql"
SHIPPED_UP = [p for p in SHIPPED.glob("*.sql") if not p.name.endswith(".down.sql")]
EXTRA = {
    "900_seed.sql": "CREATE TABLE seed (id int, label text);\n"
    "INSERT INTO seed VALUES (1, E'it\\'s; here'), (2, NULL);\n"
    "CREATE FUNCTION seed_count() RETURNS bigint LANGUAGE sql\n"
    "BEGIN ATOMIC SELECT count(*) FROM seed; END;\n"
    "INSERT INTO seed VALUES (3, '100% :not_a_var')",
    "901_index.sql": "-- schemactl:no-transaction\n"
    "CREATE INDEX CONCURRENTLY seed_id ON seed (id);\n",
}

HISTORY = (
    "SELECT version, name, checksum, applied_by, success "
    "FROM schema_migrations ORDER BY version"
)
CATALOG = """
SELECT 'column', c.table_schema || '.' || c.table_name || '.' || c.column_name
       || ' ' || c.data_type || ' ' || c.is_nullable || ' ' || coalesce(c.column_default, '')
FROM information_schema.columns c WHERE c.table_schema IN ('public', 'wai')
UNION ALL
SELECT 'index', schemaname || ' ' || indexdef FROM pg_indexes
WHERE schemaname IN ('public', 'wai')
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace IN ('public'::regnamespace, 'wai'::regnamespace)
UNION ALL
SELECT 'data', string_agg(id || ':' || coalesce(label, 'NULL'), ',' ORDER BY id) FROM seed
ORDER BY 1, 2
"""


@pytest.fixture
def second_database(server_conninfo):
    name = f"schemactl_test_psql_script_{uuid.uuid4().hex[:12]}"
    with janitor_for(server_conninfo, name) as janitor:
        yield url_for(server_conninfo, janitor.dbname)


def run_psql(url: str, script: Path) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    assert psql, "psql is needed for the fallback test"
    return subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_psql_script_matches_migrate(sql_dir, database_url, second_database, tmp_path):
    for path in SHIPPED.glob("*.sql"):
        sql_dir.write({path.name: path.read_bytes()})
    sql_dir.write(EXTRA)
    runner = CliRunner()
    migrated = runner.invoke(
        cli, ["migrate", "-d", database_url, "--dir", str(sql_dir.path)]
    )
    assert migrated.exit_code == 0, migrated.output
    generated = runner.invoke(cli, ["sql", "--dir", str(sql_dir.path)])
    assert generated.exit_code == 0, generated.output
    script = tmp_path / "migrate.sql"
    script.write_text(generated.stdout)

    first = run_psql(second_database, script)
    assert first.returncode == 0, first.stderr
    second = run_psql(second_database, script)
    assert second.returncode == 0, second.stderr

    with (
        psycopg.connect(database_url) as by_migrate,
        psycopg.connect(second_database) as by_psql,
    ):
        assert (
            by_psql.execute(HISTORY).fetchall()
            == by_migrate.execute(HISTORY).fetchall()
        )
        assert len(by_psql.execute(HISTORY).fetchall()) == len(SHIPPED_UP) + len(EXTRA)
        assert (
            by_psql.execute(CATALOG).fetchall()
            == by_migrate.execute(CATALOG).fetchall()
        )


def test_psql_script_stops_at_to(sql_dir, database_url):
    sql_dir.write({"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    result = CliRunner().invoke(cli, ["sql", "--to", "1", "--dir", str(sql_dir.path)])
    assert "-- 001_a.sql" in result.stdout
    assert "002_b" not in result.stdout


def test_psql_script_honours_the_table_option(
    sql_dir, second_database, tmp_path, server_conninfo
):
    sql_dir.write({"001_a.sql": "CREATE TABLE a (id int);"})
    result = CliRunner().invoke(
        cli, ["sql", "--table", "ops.history", "--dir", str(sql_dir.path)]
    )
    script = tmp_path / "s.sql"
    script.write_text(result.stdout)
    assert run_psql(second_database, script).returncode == 0
    with psycopg.connect(second_database) as conn:
        assert conn.execute("SELECT version, success FROM ops.history").fetchall() == [
            (1, True)
        ]
    assert str(conninfo_to_dict(second_database)["dbname"]).startswith(
        "schemactl_test_psql_script_"
    )


def test_psql_script_refuses_inline_copy_data(sql_dir):
    sql_dir.write(
        {"001_a.sql": "CREATE TABLE a (id int);\n\nCOPY a FROM stdin;\n1\n\\.\n"}
    )
    result = CliRunner().invoke(cli, ["sql", "--dir", str(sql_dir.path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        f"{sql_dir.path / '001_a.sql'}:3:1: error: COPY ... FROM stdin data"
        in result.stderr
    )


@pytest.mark.parametrize(
    ("setup", "drift"),
    [
        ("failed", "version 1: failed"),
        ("edited", "version 1: checksum mismatch"),
        ("out of order", "version 1: out of order"),
        ("missing", "version 1: out of order; version 3: missing file"),
    ],
)
def test_psql_script_refuses_what_migrate_refuses(
    sql_dir, database_url, tmp_path, setup, drift
):
    """The script checks at run time, inside psql, and applies nothing."""
    runner = CliRunner()

    def migrate() -> None:
        runner.invoke(cli, ["migrate", "-d", database_url, "--dir", str(sql_dir.path)])

    if setup == "failed":
        sql_dir.write({"001_a.sql": "-- schemactl:no-transaction\nSELECT 1/0;\n"})
        migrate()
    elif setup == "edited":
        sql_dir.write({"001_a.sql": "SELECT 1;\n"})
        migrate()
        sql_dir.write({"001_a.sql": "SELECT 1; -- edited\n"})
    elif setup == "out of order":
        sql_dir.write({"002_b.sql": "SELECT 2;\n"})
        migrate()
        sql_dir.write({"001_a.sql": "SELECT 1;\n"})
    else:
        sql_dir.write({"003_c.sql": "SELECT 3;\n"})
        migrate()
        sql_dir.remove("003_c.sql")
        sql_dir.write({"001_a.sql": "SELECT 1;\n"})
    refused = runner.invoke(
        cli, ["migrate", "-d", database_url, "--dir", str(sql_dir.path)]
    )
    assert refused.exit_code == 1  # what migrate does with the same state
    sql_dir.write({"004_new.sql": "CREATE TABLE should_not_exist (id int);\n"})
    generated = runner.invoke(cli, ["sql", "--dir", str(sql_dir.path)])
    assert generated.exit_code == 0, generated.output
    script = tmp_path / "migrate.sql"
    script.write_text(generated.stdout)
    with psycopg.connect(database_url) as conn:
        before = conn.execute(HISTORY).fetchall()
    done = run_psql(database_url, script)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"schemactl: refusing to migrate: drift found: {drift}" in done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute(HISTORY).fetchall() == before
        assert conn.execute("SELECT to_regclass('should_not_exist')").fetchone() == (
            None,
        )


def test_psql_script_logs_as_migrate_does(
    sql_dir, database_url, second_database, tmp_path
):
    # The file changes the session's name: the rows are still written as the
    # login session's, by both, with the same duration in history and log.
    sql_dir.write(
        {
            "001_a.sql": "SET application_name = 'spoofed';\nSELECT 1;\n",
            "002_b.sql": "-- schemactl:no-transaction\nSET application_name = 'x';\n",
        }
    )
    generated = CliRunner().invoke(cli, ["sql", "--dir", str(sql_dir.path)])
    script = tmp_path / "migrate.sql"
    script.write_text(generated.stdout)
    assert run_psql(second_database, script).returncode == 0
    with psycopg.connect(second_database) as by_psql:
        rows = by_psql.execute(
            "SELECT l.version, l.outcome, l.application_name, "
            "l.execution_ms IS NOT DISTINCT FROM h.execution_ms "
            "FROM schema_migrations_log l JOIN schema_migrations h USING (version) "
            "ORDER BY l.id"
        ).fetchall()
    assert rows == [
        (1, "ok", "psql", True),
        (2, "started", "psql", False),  # written before the file ran
        (2, "ok", "psql", True),
    ]
