"""Applying one migration: atomicity with its history row, error locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemactl import runner
from schemactl.config import Settings, parse_table_name
from schemactl.core.discovery import discover_migrations
from schemactl.core.model import MigrationFile
from schemactl.core.validation import load_source, parse_source
from schemactl.db.history import ensure_history_table
from schemactl.db.session import MigrationSession
from schemactl.errors import MigrationFailed

TABLE = parse_table_name("schema_migrations")


def apply(
    session: MigrationSession, text: str, version: int = 1, name: str = "m"
) -> int:
    path = Path(f"sql/{version:03}_{name}.sql")
    source = parse_source(text.encode(), path)
    migration = MigrationFile(
        version, name, str(path), source.checksum, no_transaction=source.no_transaction
    )
    ensure_history_table(session.conn, TABLE)
    return session.apply(migration, source)


def history(conn):
    return conn.execute(
        "SELECT version, name, success FROM schema_migrations ORDER BY version"
    ).fetchall()


def test_statements_and_history_row_commit_together(db, session):
    apply(session, "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert history(db) == [(1, "m", True)]


def test_failing_third_statement_leaves_nothing_of_the_file(db, session):
    text = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1/0);\n"
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert db.execute("SELECT to_regclass('t')").fetchone() == (None,)
    assert history(db) == []
    assert (error.line, error.column, error.statement_number) == (3, 1, 3)
    assert error.sqlstate == "22012"
    assert error.source_line == "INSERT INTO t VALUES (1/0);"


def test_syntax_error_position_maps_into_the_file(db, session):
    text = (
        "-- header\nCREATE TABLE t (id int);\n\nSELECT id\n  FROM t\n  WHER id = 1;\n"
    )
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert (str(error.path), error.line, error.column) == ("sql/001_m.sql", 6, 8)
    assert error.sqlstate == "42601"
    assert error.source_line == "  WHER id = 1;"


def test_runtime_error_without_position_names_the_statement_start(db, session):
    text = (
        "CREATE TABLE t (id int PRIMARY KEY);\n"
        "INSERT INTO t VALUES (1);\n"
        "  INSERT INTO t\n  VALUES (1);\n"
    )
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert (error.line, error.column) == (3, 3)
    assert error.sqlstate == "23505"
    assert error.detail is not None
    assert "Key (id)=(1) already exists." in error.detail


def test_error_position_after_multibyte_characters(db, session):
    text = "SELECT 'héllo wörld', nope_column;"
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    assert caught.value.column == text.index("nope_column") + 1


def test_hint_is_kept(db, session):
    with pytest.raises(MigrationFailed) as caught:
        apply(session, "SELECT lenght('x');")
    assert caught.value.hint is not None


def test_copy_from_stdin_loads_its_data(db, session):
    apply(
        session,
        "CREATE TABLE t (id int, label text);\nCOPY t FROM stdin;\n1\tit's; here\n2\t\\N\n\\.\nSELECT 1;\n",
    )
    assert db.execute("SELECT id, label FROM t ORDER BY id").fetchall() == [
        (1, "it's; here"),
        (2, None),
    ]


def test_percent_signs_are_not_parameters(db, session):
    apply(session, "CREATE TABLE t (s text);\nINSERT INTO t VALUES ('100%s %d %%');\n")
    assert db.execute("SELECT s FROM t").fetchone() == ("100%s %d %%",)


def test_session_settings_do_not_leak_into_the_next_migration(db, session):
    db.execute("CREATE SCHEMA other")
    apply(session, "SET search_path TO other;\nCREATE TABLE a (id int);\n", version=1)
    apply(session, "CREATE TABLE b (id int);\n", version=2)
    assert db.execute("SELECT to_regclass('other.a') IS NOT NULL").fetchone() == (True,)
    assert db.execute("SELECT to_regclass('public.b') IS NOT NULL").fetchone() == (
        True,
    )


def test_no_transaction_file_runs_concurrent_index(db, session):
    db.execute("CREATE TABLE t (id int)")
    apply(
        session,
        "-- schemactl:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    )
    assert db.execute("SELECT to_regclass('t_id') IS NOT NULL").fetchone() == (True,)
    assert history(db) == [(1, "m", True)]


def test_no_transaction_failure_keeps_earlier_statements_and_a_failed_row(db, session):
    text = (
        "-- schemactl:no-transaction\n"
        "CREATE TABLE t (id int);\n"
        "CREATE INDEX CONCURRENTLY t_id ON t (id);\n"
        "CREATE INDEX CONCURRENTLY t_bad ON t (nope);\n"
    )
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert not error.transactional
    assert (error.statement_number, error.statements_done, error.line) == (3, 2, 4)
    assert db.execute("SELECT to_regclass('t_id') IS NOT NULL").fetchone() == (True,)
    assert history(db) == [(1, "m", False)]


def test_syntax_error_in_the_first_statement_skips_the_glued_begin(db, session):
    with pytest.raises(MigrationFailed) as caught:
        apply(session, "SELEC 1;\nSELECT 2;\n")
    assert (caught.value.line, caught.value.column) == (1, 1)
    with pytest.raises(MigrationFailed) as caught:
        apply(session, "SELECT 1 FROM nowhere_at_all;")
    assert (caught.value.line, caught.value.column) == (1, 15)


def test_connection_is_usable_after_a_failure(db, session):
    with pytest.raises(MigrationFailed):
        apply(session, "CREATE TABLE t (id int);\nSELECT 1/0;\n", version=1)
    apply(session, "CREATE TABLE t (id int);\n", version=2)
    assert history(db) == [(2, "m", True)]


@pytest.mark.parametrize(
    "text",
    [
        "CREATE TABLE t (id int) -- no newline, no semicolon",
        "CREATE TABLE t (id int); -- trailing comment",
        "CREATE TABLE t (id int)\n/* block */",
    ],
    ids=[
        "comment instead of a semicolon",
        "trailing comment",
        "trailing block comment",
    ],
)
def test_trailing_comments_do_not_swallow_the_history_row(db, session, text):
    apply(session, text)
    assert history(db) == [(1, "m", True)]
    assert db.execute("SELECT to_regclass('t') IS NOT NULL").fetchone() == (True,)


def test_a_file_marked_empty_is_recorded(db, session):
    apply(session, "-- schemactl:allow-empty\n-- a placeholder version\n")
    assert history(db) == [(1, "m", True)]


def test_copy_as_first_and_last_statement(db, session):
    db.execute("CREATE TABLE t (id int)")
    apply(session, "COPY t FROM stdin;\n1\n\\.\nCOPY t FROM stdin;\n2\n\\.\n")
    assert db.execute("SELECT array_agg(id ORDER BY id) FROM t").fetchone() == ([1, 2],)
    assert history(db) == [(1, "m", True)]


def test_history_records_a_server_measured_duration(db, session):
    apply(session, "SELECT pg_sleep(0.05);")
    (ms,) = db.execute("SELECT execution_ms FROM schema_migrations").fetchone()
    assert ms >= 50


def test_flush_leaves_the_session_setting_as_it_was(db, session):
    apply(session, "SELECT 1;")
    before = session.conn.execute("SHOW synchronous_commit").fetchone()
    session.flush()
    assert session.conn.execute("SHOW synchronous_commit").fetchone() == before


def test_migrate_rereads_files_past_the_checked_sources_budget(
    database_url, sql_dir, db, monkeypatch
):
    monkeypatch.setattr(runner, "CHECKED_SOURCES_BUDGET", 30)
    sql_dir.write(
        {
            "001_a.sql": "CREATE TABLE a (id int);\n",  # 25 characters: kept
            "002_b.sql": "CREATE TABLE b (id int);\n",  # over the budget: re-read
        }
    )
    kept = runner.check_before_running(discover_migrations(sql_dir.path), load_source)
    assert [source is not None for source in kept] == [True, False]
    result = runner.migrate(Settings(directory=sql_dir.path, database_url=database_url))
    assert [a.migration.version for a in result.applied] == [1, 2]
    assert history(db) == [(1, "a", True), (2, "b", True)]


def test_copy_in_a_no_transaction_file(db, session):
    apply(
        session,
        "-- schemactl:no-transaction\nCREATE TABLE t (id int);\n"
        "COPY t FROM stdin;\n7\n\\.\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    )
    assert db.execute("SELECT array_agg(id) FROM t").fetchone() == ([7],)
    assert history(db) == [(1, "m", True)]


SEED_ROWS = 1500  # past the size where statements travel together


def seed_text(bad_line: int | None = None, bad: str = "") -> str:
    lines = ["CREATE TABLE seed (id int PRIMARY KEY, label text);"]
    for i in range(1, SEED_ROWS):
        lines.append(f"INSERT INTO seed VALUES ({i}, 'row {i}; -- not a comment');")
    if bad_line is not None:
        lines[bad_line - 1] = bad
    return "\n".join(lines) + "\n"


def test_a_large_file_applies_whole(db, session):
    apply(session, seed_text())
    assert db.execute("SELECT count(*) FROM seed").fetchone() == (SEED_ROWS - 1,)
    assert history(db) == [(1, "m", True)]


def test_a_runtime_error_in_a_large_file_names_its_statement(db, session):
    text = seed_text(1203, "INSERT INTO seed VALUES (7, 'again');")
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert (error.line, error.column, error.statement_number) == (1203, 1, 1203)
    assert error.sqlstate == "23505"
    assert error.source_line == "INSERT INTO seed VALUES (7, 'again');"
    assert db.execute("SELECT to_regclass('seed')").fetchone() == (None,)
    assert history(db) == []


def test_a_syntax_error_in_a_large_file_points_at_its_token(db, session):
    text = seed_text(1400, "INSERT INTO seed VALUES (1400, 'x') RETURNIN id;")
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert (error.line, error.column) == (1400, 37)
    assert error.sqlstate == "42601"
    assert history(db) == []


def test_statements_travel_together_only_in_large_files():
    from schemactl.db.session import _statement_messages

    small = parse_source(b"SELECT 1;\nSELECT 2;\n", Path("sql/001_a.sql"))
    assert [len(m.parts) for m in _statement_messages(small)] == [1, 1]
    large = parse_source(seed_text().encode(), Path("sql/001_a.sql"))
    sizes = [len(m.parts) for m in _statement_messages(large)]
    assert sum(sizes) == SEED_ROWS
    assert max(sizes) == 500
    assert len(sizes) == 3
    assert [len(m.parts) for m in _statement_messages(large, batch=False)] == [
        1
    ] * SEED_ROWS


def test_an_error_in_a_large_file_is_located_from_a_reset_session(db, session):
    text = seed_text(800, "INSERT INTO seed VALUES (1/0, 'x');").replace(
        "CREATE TABLE seed (id int PRIMARY KEY, label text);",
        "CREATE TABLE seed (id int PRIMARY KEY, label text);\nPREPARE p AS SELECT 1;",
        1,
    )
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert (error.line, error.sqlstate) == (801, "22012")
    assert history(db) == []


def test_an_error_that_does_not_happen_again_says_where_it_may_be(db, session):
    db.execute("CREATE SEQUENCE sq")
    text = seed_text(900, "SELECT 1 / (nextval('sq') - 1);")
    with pytest.raises(MigrationFailed) as caught:
        apply(session, text)
    error = caught.value
    assert error.sqlstate == "22012"
    assert error.line == 501  # the first statement of the group that failed
    assert "statements 501-1000, sent together" in error.message
    assert "did not happen again" in error.message
