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
