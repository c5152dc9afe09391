"""The psql script: quoting, guards, transactions, terminators."""

from __future__ import annotations

from schemactl.core.model import MigrationFile
from schemactl.core.script import render_migration, render_script

TX = MigrationFile(1, "one", "sql/001_one.sql", "c1")
NO_TX = MigrationFile(2, "idx", "sql/002_idx.sql", "c2", no_transaction=True)


def script(*items) -> str:
    files = [migration for migration, _ in items]
    return "".join(
        render_script("public", "schema_migrations", files, items, version="9.9")
    )


def test_header_stops_on_error_and_creates_the_table():
    text = script()
    assert "\\set ON_ERROR_STOP on\n" in text
    assert 'CREATE TABLE IF NOT EXISTS "public"."schema_migrations" (' in text


def test_transactional_block_wraps_file_and_row_in_one_transaction():
    block = render_migration(
        TX, "CREATE TABLE t (id int);\n", table='"s"."h"', log='"s"."h_log"'
    )
    lines = block.splitlines()
    assert lines[1] == (
        'SELECT NOT EXISTS (SELECT 1 FROM "s"."h" WHERE version = 1) '
        "AS schemactl_pending \\gset"
    )
    assert lines[2] == "\\if :schemactl_pending"
    assert lines.index("BEGIN;") < lines.index("CREATE TABLE t (id int);")
    assert lines.index("CREATE TABLE t (id int);") < lines.index("COMMIT;")
    insert = next(line for line in lines if line.startswith("INSERT"))
    assert "VALUES (1, 'one', 'c1', " in insert
    # The audit log row, when it can be written, commits with the history row.
    log_row = lines.index("\\if :schemactl_log") + 1
    assert lines[log_row].startswith('INSERT INTO "s"."h_log" ')
    assert lines.index("CREATE TABLE t (id int);") < log_row < lines.index("COMMIT;")
    assert lines[-1] == "\\endif"


def test_no_transaction_block_records_a_failed_row_first():
    block = render_migration(
        NO_TX, "CREATE INDEX CONCURRENTLY i ON t (a);\n", table="h", log="h_log"
    )
    insert = block.index("VALUES (2, 'idx', 'c2', 0, false);")
    body = block.index("CREATE INDEX CONCURRENTLY")
    assert insert < body < block.index("SET success = true")
    # The file runs outside any transaction: only the bookkeeping has one.
    assert block.rindex("COMMIT;", 0, body) > block.rindex("BEGIN;", 0, body)
    assert block.index("BEGIN;", body) < block.index("SET success = true")


def test_hostile_table_name_is_quoted():
    text = "".join(render_script('we"ird', 'x"; DROP TABLE t; --', [], [], version="1"))
    assert '"we""ird"."x""; DROP TABLE t; --"' in text
    assert "nspname = 'we\"ird'" in text


def test_last_statement_without_semicolon_is_terminated():
    block = render_migration(TX, "SELECT 1", table="h", log="h_log")
    assert "SELECT 1\n;\nSELECT (extract(epoch" in block


def test_drift_check_comes_before_any_migration():
    text = script((TX, "SELECT 1;\n"))
    check = text.index("refusing to migrate: drift found")
    assert (
        text.index("CREATE TABLE IF NOT EXISTS") < check < text.index("-- 001_one.sql")
    )
    assert "(1, 'c1')" in text
