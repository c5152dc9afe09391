"""schemactl's own lint rules: statements that take a heavy lock on a table that
already holds data. Pure; pglast (the server's parser) reads each statement.

A table created earlier in the same file is empty, so nothing done to it there
blocks anyone: the rules look only at tables the file did not create.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from schemactl.core.splitting import Statement, position_to_line_column
from schemactl.core.statements import parse_tree


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file, where a person would look for it."""

    path: str
    line: int
    column: int
    level: str  # "error" or "warning"
    rule: str
    message: str
    hint: str | None = None

    def describe(self) -> str:
        """Return 'FILE:LINE:COL: warning: message [rule]'."""
        where = f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.level}: {self.message} [{self.rule}]"


_CONCURRENT_HINT = (
    "build it with CREATE INDEX CONCURRENTLY, alone in a file marked "
    "'-- schemactl:no-transaction'"
)
_NOT_VALID_HINT = (
    "add it NOT VALID here, and VALIDATE CONSTRAINT in a later migration (which "
    "takes a lock that lets writes through)"
)


def lint_statements(text: str, statements: list[Statement], path: str) -> list[Finding]:
    """Return the findings of the rules below for a parsed file, in file order."""
    created: set[str] = set()
    findings: list[Finding] = []
    for statement in statements:
        tree = parse_tree(statement)
        if tree is None:
            continue
        kind = type(tree).__name__
        if kind == "CreateStmt":
            created.add(tree.relation.relname)
            continue
        if kind == "CreateTableAsStmt":
            created.add(tree.into.rel.relname)
            continue
        for rule, message, hint in _problems(tree, kind, created):
            line, column = position_to_line_column(text, statement.offset)
            findings.append(Finding(path, line, column, "warning", rule, message, hint))
    return findings


def _problems(
    tree: Any, kind: str, created: set[str]
) -> Iterator[tuple[str, str, str | None]]:
    # Tables are matched by name alone: public.t and t are the same table.
    new_table = tree.relation.relname in created if hasattr(tree, "relation") else False
    if kind == "IndexStmt" and not tree.concurrent and not new_table:
        yield (
            "index-blocks-writes",
            f"CREATE INDEX on {_relation(tree)} blocks writes to the table until "
            "the index is built",
            _CONCURRENT_HINT,
        )
    if kind != "AlterTableStmt" or new_table:
        return
    table = _relation(tree)
    for command in tree.cmds or ():
        subtype = command.subtype.name
        if subtype == "AT_AlterColumnType":
            yield (
                "column-type-rewrites-table",
                f"ALTER COLUMN {command.name} TYPE on {table} may rewrite the "
                "whole table under an ACCESS EXCLUSIVE lock (no reads, no writes)",
                "add a new column, backfill it in batches, then switch to it",
            )
        elif subtype == "AT_SetNotNull":
            yield (
                "set-not-null-scans-table",
                f"SET NOT NULL on {table}.{command.name} scans the whole table "
                "under an ACCESS EXCLUSIVE lock",
                "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later "
                "migration, then SET NOT NULL (PostgreSQL 12+ uses the check)",
            )
        elif subtype == "AT_AddConstraint" and _validates_now(command.def_):
            yield (
                "constraint-validates-now",
                f"adding constraint {command.def_.conname or ''} to {table} "
                "checks every row while writes are blocked".replace("  ", " "),
                _NOT_VALID_HINT,
            )


def _validates_now(constraint: Any) -> bool:
    contype = constraint.contype.name
    return contype in ("CONSTR_FOREIGN", "CONSTR_CHECK") and not (
        constraint.skip_validation
    )


def _relation(tree: Any) -> str:
    relation = tree.relation
    schema = f"{relation.schemaname}." if relation.schemaname else ""
    return f"{schema}{relation.relname}"
