"""The history table's SQL text, shared by db.py and the psql script. Stdlib only.

The template has one ``{}`` for the schema-qualified, quoted table name: db.py fills
it with psycopg's ``sql.Identifier``, the psql script with ``quote_identifier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from schemactl.core.model import MigrationFile

HISTORY_TABLE_DDL: Final = """CREATE TABLE IF NOT EXISTS {} (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    execution_ms integer NOT NULL,
    success boolean NOT NULL DEFAULT true
)"""


def quote_identifier(name: str) -> str:
    """Quote one identifier the way PostgreSQL's quote_ident does (always)."""
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str, name: str) -> str:
    """Return ``"schema"."name"``, quoted as psycopg's sql.Identifier quotes it."""
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def quote_literal(value: str) -> str:
    """Quote a string literal (standard_conforming_strings, PostgreSQL 9.1+)."""
    return "'" + value.replace("'", "''") + "'"


def history_insert_sql(
    qualified_table: str, migration: MigrationFile, execution_ms: str, *, success: bool
) -> str:
    """Return the INSERT of a migration's history row as SQL text.

    Used by the runner (in the bookkeeping message after a file's statements)
    and by the psql script, so both write identical rows. qualified_table is
    already quoted; execution_ms is an SQL expression; every value is quoted
    here.
    """
    columns = "version, name, checksum, execution_ms, success"
    return (
        f"INSERT INTO {qualified_table} ({columns}) "
        f"VALUES ({int(migration.version)}, {quote_literal(migration.name)}, "
        f"{quote_literal(migration.checksum)}, {execution_ms}, "
        f"{'true' if success else 'false'})"
    )


# The audit log (layout 2): one row per change schemactl makes to the history,
# written in the same transaction as the change. Append-only: a trigger refuses
# UPDATE, DELETE and TRUNCATE. The comment on the table is the layout version.
LAYOUT_VERSION: Final = 2
LAYOUT_COMMENT: Final = (
    f"schemactl layout {LAYOUT_VERSION}: audit log of the history table"
)
LOG_SUFFIX: Final = "_log"
# Each log has its own trigger function (NAME_log_append_only), created with it
# and owned by its creator: no other log's owner can change what guards it.
GUARD_SUFFIX: Final = "_append_only"

LOG_TABLE_DDL: Final = """CREATE TABLE {log} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    history_table text NOT NULL,
    action text NOT NULL,
    version bigint NOT NULL,
    name text NOT NULL,
    checksum_before text,
    checksum_after text,
    execution_ms integer,
    outcome text NOT NULL,
    login_role text NOT NULL DEFAULT session_user,
    application_name text NOT NULL DEFAULT current_setting('application_name'),
    client_addr inet DEFAULT inet_client_addr()
)"""
APPEND_ONLY_FUNCTION_DDL: Final = """CREATE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $schemactl$
BEGIN
    RAISE EXCEPTION 'the schemactl audit log % is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$schemactl$"""
APPEND_ONLY_TRIGGERS: Final = (
    "CREATE TRIGGER schemactl_append_only BEFORE UPDATE OR DELETE ON {log} "
    "FOR EACH ROW EXECUTE FUNCTION {function}()",
    "CREATE TRIGGER schemactl_no_truncate BEFORE TRUNCATE ON {log} "
    "FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
)


def log_table_name(history_table: str) -> str:
    """Return the audit log's name for a history table's: NAME_log, shortened
    so that it fits PostgreSQL's 63 bytes (two long names may then share one
    log: each row names its history table)."""
    return _fitted(history_table, LOG_SUFFIX)


def guard_function_name(history_table: str) -> str:
    """Return the name of the log's append-only trigger function."""
    return _fitted(log_table_name(history_table), GUARD_SUFFIX)


def _fitted(name: str, suffix: str) -> str:
    while len((name + suffix).encode("utf-8")) > 63:
        name = name[:-1]
    return name + suffix


def log_insert_sql(
    qualified_log: str,
    qualified_history: str,
    action: str,
    migration: MigrationFile,
    *,
    before: str = "NULL",
    after: str = "NULL",
    execution_ms: str = "NULL",
    outcome: str = "ok",
) -> str:
    """Return the INSERT of one audit log row as SQL text. before, after and
    execution_ms are SQL expressions; the other values are quoted here."""
    columns = (
        "history_table, action, version, name, checksum_before, checksum_after, "
        "execution_ms, outcome"
    )
    return (
        f"INSERT INTO {qualified_log} ({columns}) VALUES "
        f"({quote_literal(qualified_history)}, {quote_literal(action)}, "
        f"{int(migration.version)}, {quote_literal(migration.name)}, {before}, "
        f"{after}, {execution_ms}, {quote_literal(outcome)})"
    )
