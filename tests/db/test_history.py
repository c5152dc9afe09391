"""The history table: contract columns, idempotent creation, quoting, reading."""

from __future__ import annotations

import pytest
from psycopg import sql

from schemactl.config import Settings, parse_table_name
from schemactl.core.history import qualified_name
from schemactl.db.connection import connect
from schemactl.db.history import (
    ensure_history_table,
    history_table_exists,
    read_history,
)
from schemactl.errors import ConnectError, SchemactlError

CONTRACT_COLUMNS = [
    ("version", "bigint", "NO", None),
    ("name", "text", "NO", None),
    ("checksum", "text", "NO", None),
    ("applied_at", "timestamp with time zone", "NO", "now()"),
    ("applied_by", "text", "NO", "CURRENT_USER"),
    ("execution_ms", "integer", "NO", None),
    ("success", "boolean", "NO", "true"),
]


def columns(conn, schema: str, table: str):
    return conn.execute(
        "SELECT column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()


def test_history_table_has_the_contract_columns(db):
    table = parse_table_name("schema_migrations")
    ensure_history_table(db, table)
    assert columns(db, "public", "schema_migrations") == CONTRACT_COLUMNS
    primary_key = db.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'public.schema_migrations'::regclass AND i.indisprimary"
    ).fetchall()
    assert primary_key == [("version",)]


def test_creation_is_idempotent_and_creates_the_schema(db):
    table = parse_table_name("ops.history")
    ensure_history_table(db, table)
    ensure_history_table(db, table)
    assert len(columns(db, "ops", "history")) == len(CONTRACT_COLUMNS)


def test_missing_table_reads_as_no_rows_and_is_not_created(db):
    table = parse_table_name("schema_migrations")
    assert read_history(db, table) == []
    assert not history_table_exists(db, table)


def test_hostile_table_name_is_quoted_never_executed(db):
    db.execute("CREATE TABLE victim (id int)")
    hostile = parse_table_name('x"; DROP TABLE victim; --')
    ensure_history_table(db, hostile)
    assert read_history(db, hostile) == []
    assert db.execute("SELECT to_regclass('public.victim') IS NOT NULL").fetchone() == (
        True,
    )
    names = db.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE 'x%%' AND relkind = 'r'"
    ).fetchall()
    assert names == [('x"; DROP TABLE victim; --',)]


def test_a_foreign_table_with_other_columns_is_reported(db):
    db.execute("CREATE TABLE schema_migrations (version varchar PRIMARY KEY)")
    with pytest.raises(SchemactlError, match="cannot read history table"):
        read_history(db, parse_table_name("schema_migrations"))


def test_rows_round_trip(db):
    table = parse_table_name("schema_migrations")
    ensure_history_table(db, table)
    db.execute(
        "INSERT INTO schema_migrations (version, name, checksum, execution_ms) "
        "VALUES (2, 'b', 'c2', 5), (1, 'a', 'c1', 3)"
    )
    rows = read_history(db, table)
    assert [
        (r.version, r.name, r.checksum, r.execution_ms, r.success) for r in rows
    ] == [
        (1, "a", "c1", 3, True),
        (2, "b", "c2", 5, True),
    ]
    assert rows[0].applied_by == db.execute("SELECT current_user").fetchone()[0]


def test_connection_sets_application_name(database_url):
    with connect(Settings(database_url=database_url)) as conn:
        name = conn.execute("SHOW application_name").fetchone()
        assert name == ("schemactl",)
        assert conn.autocommit


def test_connect_failure_is_a_connect_error_with_masked_password():
    url = "postgresql://app:hunter2@127.0.0.1:1/app"
    with pytest.raises(ConnectError) as caught:
        connect(Settings(database_url=url, secrets=("hunter2",)))
    assert "hunter2" not in caught.value.message
    assert "postgresql://app:****@127.0.0.1:1/app" in caught.value.message
    assert caught.value.exit_code == 3
    # The psycopg error is not chained: a --traceback must not show its text.
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("schema", "name"),
    [
        ("public", "schema_migrations"),
        ('we"ird', 'x"; DROP TABLE t; --'),
        ("ünï", "cödé"),
    ],
)
def test_text_quoting_matches_psycopg_identifier_quoting(db, schema, name):
    assert qualified_name(schema, name) == sql.Identifier(schema, name).as_string(db)
