"""Rules about statements: which a transactional migration file may hold, and
which index a concurrent build leaves behind. Stdlib, and pglast when needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemactl.core.splitting import Statement

_TRANSACTION_CONTROL_WORDS: frozenset[str] = frozenset(
    {"begin", "start", "commit", "end", "abort", "rollback"}
)


def refuses_transaction(statement: Statement) -> str | None:
    """Name the command if PostgreSQL refuses to run it inside a transaction block."""
    words = statement.words
    if not words:
        return None
    first = words[0]
    if first == "vacuum":
        return "VACUUM"
    if first in ("create", "drop") and "concurrently" in words[1:4]:
        return f"{first.upper()} INDEX CONCURRENTLY"
    if first == "reindex" and "concurrently" in words[1:]:
        # Also with options first: REINDEX (VERBOSE) TABLE CONCURRENTLY t.
        return "REINDEX CONCURRENTLY"
    if first == "reindex" and words[1:2] in (("database",), ("system",)):
        return f"REINDEX {words[1].upper()}"
    if words[:2] == ("discard", "all"):
        return "DISCARD ALL"
    if first in ("create", "drop") and words[1:2] in (("database",), ("tablespace",)):
        return f"{first.upper()} {words[1].upper()}"
    if words[:2] == ("alter", "system"):
        return "ALTER SYSTEM"
    return None


def controls_transaction(statement: Statement) -> bool:
    """Return True for BEGIN/COMMIT/ROLLBACK and friends, PREPARE TRANSACTION and
    COMMIT/ROLLBACK PREPARED; not for ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT]."""
    words = statement.words
    if words[:2] == ("prepare", "transaction"):
        return True
    if not words or words[0] not in _TRANSACTION_CONTROL_WORDS:
        return False
    if words[0] in ("rollback", "abort") and "to" in words[1:3]:
        return words[0] == "abort"  # ABORT has no TO form: the server refuses it
    return not (words[0] == "start" and words[1:2] != ("transaction",))


@dataclass(frozen=True, slots=True)
class ConcurrentIndex:
    """The index a ``CREATE INDEX CONCURRENTLY`` statement builds.

    When such a statement fails or is cancelled, PostgreSQL leaves the index
    behind, INVALID: a re-run with IF NOT EXISTS would then skip it silently.
    """

    name: str
    table_schema: str | None
    table: str


def concurrent_index(statement: Statement) -> ConcurrentIndex | None:
    """Return the named index a CREATE INDEX CONCURRENTLY builds, else None.

    An index without a name gets one from the server that cannot be known in
    advance: None then (the README asks for named concurrent indexes).
    """
    words = statement.words
    if words[:1] != ("create",) or "concurrently" not in words[1:4]:
        return None
    node = parse_tree(statement)
    if type(node).__name__ != "IndexStmt" or not node.concurrent or not node.idxname:
        return None
    relation = node.relation
    return ConcurrentIndex(node.idxname, relation.schemaname, relation.relname)


def copies_to_client(statement: Statement) -> bool:
    """Return True for ``COPY ... TO STDOUT``: rows for psql to print, which a
    migration has nowhere to send."""
    if statement.words[:1] != ("copy",) or statement.is_copy_from_stdin:
        return False
    node = parse_tree(statement)
    return (
        type(node).__name__ == "CopyStmt"
        and not node.is_from
        and node.filename is None
        and not node.is_program
    )


def parse_tree(statement: Statement) -> Any:
    """Return the statement's parse tree (pglast: the server's own parser), or
    None when it does not parse as one statement (the server then reports it).

    Imported on first use: only the few statements the rules above look into
    pay for loading the parser.
    """
    from pglast import parse_sql

    try:
        parsed = parse_sql(statement.text)
    except Exception:  # a syntax error: the server reports it when it runs
        return None
    return parsed[0].stmt if len(parsed) == 1 else None
