"""Rules about which statements a transactional migration file may hold. Stdlib only."""

from __future__ import annotations

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
    if first == "reindex" and "concurrently" in words[1:3]:
        return "REINDEX CONCURRENTLY"
    if first in ("create", "drop") and words[1:2] in (("database",), ("tablespace",)):
        return f"{first.upper()} {words[1].upper()}"
    if words[:2] == ("alter", "system"):
        return "ALTER SYSTEM"
    return None


def controls_transaction(statement: Statement) -> bool:
    """Return True for BEGIN/COMMIT/ROLLBACK and friends (not ROLLBACK TO SAVEPOINT)."""
    words = statement.words
    if not words or words[0] not in _TRANSACTION_CONTROL_WORDS:
        return False
    if words[0] == "rollback" and len(words) > 1 and words[1] == "to":
        return False
    return not (words[0] == "start" and words[1:2] != ("transaction",))
