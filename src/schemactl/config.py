"""Settings for one run: directory, history table, connection, timeouts.

Stdlib and errors only: the CLI builds Settings for commands that must not load
psycopg (--help, new, sql). Passwords are redacted by redaction.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from schemactl.errors import UsageError

DEFAULT_DIR = Path("sql")
DEFAULT_TABLE = "public.schema_migrations"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LOCK_TIMEOUT = 60.0
# A migration statement waits this long for a table lock, then its file is
# rolled back and retried: long enough for ordinary transactions to finish, short
# enough that the queries queued behind the waiting DDL do not pile up.
DEFAULT_TABLE_LOCK_TIMEOUT = 5.0
DEFAULT_TABLE_LOCK_RETRIES = 3
DEFAULT_TABLE_LOCK_BACKOFF = 1.0
# The largest timeout: PostgreSQL keeps lock_timeout and statement_timeout as
# milliseconds in an int (about 24.8 days).
MAX_SECONDS = 2_147_483
MAX_RETRIES = 100
APPLICATION_NAME = "schemactl"
# --pooler: "auto" refuses a pooler that was detected (its pooling mode cannot
# be proven from the client); "session" declares that every pooler in front of
# the server pools sessions (the probe still runs, as a safety net).
POOLER_CHOICES = ("auto", "session")
DEFAULT_POOLER = "auto"
# PostgreSQL truncates longer identifiers (NAMEDATALEN - 1); refuse instead.
MAX_IDENTIFIER_BYTES = 63


@dataclass(frozen=True, slots=True)
class TableName:
    """The history table, always schema-qualified."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def parse_table_name(value: str) -> TableName:
    """Parse ``[SCHEMA.]NAME``; both parts are later quoted as identifiers.

    Raises:
        UsageError: for an empty part, more than one dot, a NUL byte, a part
            longer than PostgreSQL keeps, or a system schema (pg_*).
    """
    parts = value.split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2 or not all(parts):
        raise UsageError(
            f"invalid --table {value!r}: expected [SCHEMA.]NAME",
        )
    for part in parts:
        if "\x00" in part:
            raise UsageError("invalid --table: NUL byte in name")
        if len(part.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            raise UsageError(
                f"invalid --table {value!r}: {part!r} is longer than "
                f"{MAX_IDENTIFIER_BYTES} bytes"
            )
    if parts[0].startswith("pg_"):
        # pg_catalog, pg_toast and every session's pg_temp_N: system schemas,
        # where a history table would be refused or vanish with the session.
        raise UsageError(
            f"invalid --table {value!r}: schema {parts[0]!r} is reserved for the "
            "system (names starting with pg_)"
        )
    return TableName(schema=parts[0], name=parts[1])


def quote_conninfo(value: str) -> str:
    """Return a value quoted for a libpq ``key=value`` connection string."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs to know, resolved from options and environment."""

    directory: Path = DEFAULT_DIR
    table: TableName = field(default_factory=lambda: parse_table_name(DEFAULT_TABLE))
    database_url: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    table_lock_timeout: float = DEFAULT_TABLE_LOCK_TIMEOUT
    table_lock_retries: int = DEFAULT_TABLE_LOCK_RETRIES
    table_lock_backoff: float = DEFAULT_TABLE_LOCK_BACKOFF
    statement_timeout: float | None = None
    pooler: str = DEFAULT_POOLER
    secrets: tuple[str, ...] = ()
