"""Generate docs/schema.md from the live catalog of a database migrated with sql/.

Usage: python scripts/schema_doc.py SERVER_URL [OUTPUT]
Creates a scratch database on the server, applies sql/ with schemactl, renders a
Mermaid entity-relationship diagram and a paragraph per table, and drops the
scratch database. `render(conn)` is what the drift test compares with the file.
"""

from __future__ import annotations

import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schemactl import runner
from schemactl.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ("public", "wai")
ON_DELETE = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
HISTORY_TABLE = "schema_migrations"
# The runner's own tables (the history and its audit log) are not the schema.
RUNNER_TABLES = [HISTORY_TABLE, f"{HISTORY_TABLE}_log"]

COLUMNS = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, NULL),
       a.attnotnull, a.attnum
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = 'r' AND a.attnum > 0
  AND NOT a.attisdropped AND c.relname <> ALL(%(runner_tables)s)
ORDER BY 1, 2, a.attnum
"""
KEYS = """
SELECT n.nspname, c.conrelid::regclass::text, c.contype,
       array(SELECT attname FROM pg_attribute
             WHERE attrelid = c.conrelid AND attnum = ANY(c.conkey) ORDER BY attnum),
       c.confrelid::regclass::text, c.confdeltype
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.contype IN ('p', 'f')
  AND (SELECT relname FROM pg_class WHERE oid = c.conrelid) <> ALL(%(runner_tables)s)
ORDER BY 1, 2, c.conname
"""
COMMENTS = """
SELECT n.nspname, c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = 'r'
  AND c.relname <> ALL(%(runner_tables)s)
ORDER BY 1, 2
"""


def short_type(formatted: str) -> str:
    """Return a one-word type for Mermaid (no spaces)."""
    replacements = {
        "timestamp with time zone": "timestamptz",
        "timestamp without time zone": "timestamp",
        "character varying": "varchar",
        "double precision": "float8",
        "character": "char",
    }
    for long, short in replacements.items():
        formatted = formatted.replace(long, short)
    return formatted.replace(" ", "_")


def bare(name: str) -> str:
    """Strip the schema from a regclass name (public tables have none)."""
    return name.rsplit(".", 1)[-1]


@dataclass
class Catalog:
    """What the document shows, read once from pg_catalog."""

    columns: dict[tuple[str, str], list[tuple[str, str, bool]]]
    primary: dict[str, set[str]]
    foreign: dict[str, list[tuple[list[str], str, str]]]
    comments: dict[tuple[str, str], str]


def qualified(schema: str, table: str) -> str:
    """Return the name as regclass prints it (public tables are unqualified)."""
    return table if schema == "public" else f"{schema}.{table}"


def read_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """Read columns, keys and comments of the documented schemas."""
    params = {
        "schemas": list(SCHEMAS),
        "runner_tables": RUNNER_TABLES,
    }
    catalog = Catalog(defaultdict(list), defaultdict(set), defaultdict(list), {})
    for schema, table, column, type_, not_null, _ in conn.execute(COLUMNS, params):
        catalog.columns[(schema, table)].append((column, short_type(type_), not_null))
    for _schema, table, kind, cols, target, action in conn.execute(KEYS, params):
        if kind == "p":
            catalog.primary[table].update(cols)
        else:
            catalog.foreign[table].append((cols, target, ON_DELETE[action]))
    for schema, table, comment in conn.execute(COMMENTS, params):
        catalog.comments[(schema, table)] = comment
    return catalog


def diagram(catalog: Catalog, schema: str, tables: list[str]) -> list[str]:
    """Return the Mermaid erDiagram of one schema."""
    out = ["```mermaid", "erDiagram"]
    for table in tables:
        name = qualified(schema, table)
        fk_columns = {c for cols, _, _ in catalog.foreign[name] for c in cols}
        out.append(f"    {table} {{")
        for column, type_, _ in catalog.columns[(schema, table)]:
            keys = []
            if column in catalog.primary[name]:
                keys.append("PK")
            if column in fk_columns:
                keys.append("FK")
            suffix = f" {','.join(keys)}" if keys else ""
            out.append(f"        {type_} {column}{suffix}")
        out.append("    }")
    for table in tables:
        not_null = {c for c, _, nn in catalog.columns[(schema, table)] if nn}
        for cols, target, action in catalog.foreign[qualified(schema, table)]:
            # Parent side: exactly one for a NOT NULL key, zero or one otherwise.
            parent = "||" if set(cols) <= not_null else "|o"
            label = f"{', '.join(cols)} ({action})"
            out.append(f'    {bare(target)} {parent}--o{{ {table} : "{label}"')
    return [*out, "```", ""]


def paragraph(catalog: Catalog, schema: str, table: str) -> list[str]:
    """Return the heading and paragraph describing one table."""
    name = qualified(schema, table)
    pk = ", ".join(sorted(catalog.primary[name])) or "none"
    refs = "; ".join(
        f"{', '.join(cols)} -> {target} (ON DELETE {action})"
        for cols, target, action in catalog.foreign[name]
    )
    referenced_by = sorted(
        f"{other} ({', '.join(cols)}, ON DELETE {action})"
        for other, fks in catalog.foreign.items()
        for cols, target, action in fks
        if target == name
    )
    text = f"{len(catalog.columns[(schema, table)])} columns; primary key ({pk})."
    if refs:
        text += f" References: {refs}."
    if referenced_by:
        text += f" Referenced by: {'; '.join(referenced_by)}."
    comment = catalog.comments[(schema, table)] or "(no comment)"
    return [f"### `{name}`", "", comment, "", text, ""]


def render(conn: psycopg.Connection[Any]) -> str:
    """Return docs/schema.md for the schemas in the connected database."""
    catalog = read_catalog(conn)
    out = [
        "# Database schema",
        "",
        "Generated from the live catalog by `make docs` (scripts/schema_doc.py) after",
        "applying `sql/`; a test fails when this file and `sql/` disagree. Do not edit",
        "by hand.",
        "",
    ]
    for schema in SCHEMAS:
        tables = sorted(t for s, t in catalog.columns if s == schema)
        out += [f"## Schema `{schema}` ({len(tables)} tables)", ""]
        out += diagram(catalog, schema, tables)
        for table in tables:
            out += paragraph(catalog, schema, table)
    return "\n".join(out)


def generate(server_url: str) -> str:
    """Apply sql/ to a scratch database on the server and render it."""
    dbname = f"schemactl_docs_{uuid.uuid4().hex[:8]}"
    params = {k: v for k, v in conninfo_to_dict(server_url).items() if k != "dbname"}
    url = make_conninfo("", **params, dbname=dbname)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        try:
            runner.migrate(Settings(directory=ROOT / "sql", database_url=url))
            with psycopg.connect(url) as conn:
                return render(conn)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def main() -> None:
    server_url = sys.argv[1]
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "schema.md"
    output.parent.mkdir(exist_ok=True)
    output.write_text(generate(server_url))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
