"""Read a comparable snapshot of a database's catalog (for identity checks)."""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMAS = ("public", "wai")

SNAPSHOT_QUERIES = {
    "columns": """
        SELECT table_schema, table_name, column_name, data_type, is_nullable,
               coalesce(column_default, ''), ordinal_position
        FROM information_schema.columns WHERE table_schema = ANY(%(schemas)s)
        ORDER BY 1, 2, 7""",
    "indexes": """
        SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = ANY(%(schemas)s) ORDER BY 1, 2, 3""",
    "constraints": """
        SELECT n.nspname, c.conrelid::regclass::text, c.conname,
               pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = ANY(%(schemas)s) ORDER BY 1, 2, 3""",
    "triggers": """
        SELECT event_object_schema, event_object_table, trigger_name,
               action_timing, event_manipulation, action_statement
        FROM information_schema.triggers WHERE event_object_schema = ANY(%(schemas)s)
        ORDER BY 1, 2, 3, 5""",
    "functions": """
        SELECT n.nspname, p.proname, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(%(schemas)s) AND p.prokind = 'f'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
                          AND d.deptype = 'e')
        ORDER BY 1, 2""",
    "comments": """
        SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = 'r' ORDER BY 1, 2""",
    "column_comments": """
        SELECT n.nspname, c.relname, a.attname, col_description(c.oid, a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NOT NULL
        ORDER BY 1, 2, 3""",
    "identities": """
        SELECT table_schema, table_name, column_name, identity_generation
        FROM information_schema.columns
        WHERE table_schema = ANY(%(schemas)s) AND is_identity = 'YES'
        ORDER BY 1, 2, 3""",
    "schemas": """
        SELECT nspname FROM pg_namespace WHERE nspname = ANY(%(schemas)s) ORDER BY 1""",
}


def catalog_snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Return every column, index, constraint, trigger, function, comment and
    identity."""
    return {
        name: conn.execute(query, {"schemas": list(SCHEMAS)}).fetchall()
        for name, query in SNAPSHOT_QUERIES.items()
    }
