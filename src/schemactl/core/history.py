"""The history table's DDL, shared by db.py and the psql script. Stdlib only.

The template has one ``{}`` for the schema-qualified, quoted table name: db.py fills
it with psycopg's ``sql.Identifier``, the psql script with ``quote_identifier``.
"""

from __future__ import annotations

from typing import Final

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


def quote_literal(value: str) -> str:
    """Quote a string literal (standard_conforming_strings, PostgreSQL 9.1+)."""
    return "'" + value.replace("'", "''") + "'"
