"""The full check of a file about to run: split it as psql would and apply the rules.

Imports the stdlib, errors, other core modules and (through splitting) pglast.
Runs only for files that will be executed, before the first of them runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from schemactl.core.checksum import (
    UTF8_BOM,
    checksum_of_file,
    checksum_of_normalized,
)
from schemactl.core.directives import DIRECTIVE_RE
from schemactl.core.discovery import normalize_and_decode, read_directives, read_source
from schemactl.core.model import MigrationFile
from schemactl.core.splitting import (
    SplitError,
    Statement,
    position_to_line_column,
    split_statements,
)
from schemactl.core.statements import (
    controls_transaction,
    copies_to_client,
    refuses_transaction,
)
from schemactl.errors import MigrationDirError


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """A migration file's text, split into statements and checked."""

    text: str
    statements: list[Statement]
    no_transaction: bool
    checksum: str


def parse_source(data: bytes, path: Path | str) -> ParsedSource:
    """Decode, split and check one migration file's bytes.

    Raises:
        MigrationDirError: naming FILE:LINE for every rule the file breaks.
    """
    normalized, text = normalize_and_decode(data, path)
    if b"\r" in data:
        # The checksum ignores line ends; what runs keeps them, as psql sends
        # them: a CRLF inside a string literal is part of its value.
        text = data.removeprefix(UTF8_BOM).decode("utf-8")
    directives = read_directives(text, path)
    try:
        statements = split_statements(text)
    except SplitError as exc:
        line, column = position_to_line_column(text, exc.offset)
        raise MigrationDirError(
            exc.message, path=Path(path), line=line, column=column
        ) from exc
    _check_directives_in_header(text, directives.header_lines, path)
    if not statements and not directives.allow_empty:
        raise MigrationDirError(
            "the file has no statement: run as it is, it would be recorded as "
            "done, and SQL written into it later would never run",
            path=Path(path),
            line=1,
            column=1,
            hint="write its SQL, or mark a deliberately empty migration with "
            "'-- schemactl:allow-empty' in its header",
        )
    _check_no_copy_to_client(text, statements, path)
    if not directives.no_transaction:
        _check_transactional(text, statements, path)
    return ParsedSource(
        text=text,
        statements=statements,
        no_transaction=directives.no_transaction,
        checksum=checksum_of_normalized(normalized),
    )


def _check_directives_in_header(text: str, header_lines: int, path: Path | str) -> None:
    """Refuse a directive after the header: it would silently do nothing."""
    after_header = 0
    for _ in range(header_lines):
        after_header = text.find("\n", after_header) + 1
        if after_header == 0:
            return  # the whole file is header
    for match in _DIRECTIVE_LINE_RE.finditer(text, after_header):
        if DIRECTIVE_RE.match(match.group()):
            raise MigrationDirError(
                "directives must stand in the leading '--' comment lines of the "
                "file, before the first statement",
                path=Path(path),
                line=text.count("\n", 0, match.start()) + 1,
            )


# Lines that may hold a directive: found by one search over the text rather than
# by splitting a large file into lines.
_DIRECTIVE_LINE_RE = re.compile(r"^[ \t]*--[ \t]*schemactl[^\n]*", re.M | re.I)


def _check_no_copy_to_client(
    text: str, statements: list[Statement], path: Path | str
) -> None:
    for statement in statements:
        if copies_to_client(statement):
            raise statement_error(
                text,
                statement,
                path,
                "COPY ... TO STDOUT sends rows to the client, and a migration has "
                "nowhere to put them (psql -f would print them)",
                hint="write to a server file (COPY ... TO 'file') or remove it",
            )


def _check_transactional(
    text: str, statements: list[Statement], path: Path | str
) -> None:
    for statement in statements:
        refused = refuses_transaction(statement)
        if refused is not None:
            raise statement_error(
                text,
                statement,
                path,
                f"{refused} cannot run inside a transaction",
                hint="add '-- schemactl:no-transaction' at the top of the file",
            )
        if controls_transaction(statement):
            raise statement_error(
                text,
                statement,
                path,
                "transaction control statement in a transactional migration: "
                "schemactl already runs each file in its own transaction",
                hint="remove BEGIN/COMMIT, or add '-- schemactl:no-transaction' "
                "at the top of the file",
            )


def statement_error(
    text: str,
    statement: Statement,
    path: Path | str,
    message: str,
    *,
    hint: str | None = None,
) -> MigrationDirError:
    """Return the error refusing a statement, at its FILE:LINE:COLUMN (counted
    for this statement only: counting for every statement would make a large
    file quadratic)."""
    line, column = position_to_line_column(text, statement.offset)
    return MigrationDirError(
        message, path=Path(path), line=line, column=column, hint=hint
    )


def still_unchanged(source: ParsedSource, path: Path | str) -> ParsedSource:
    """Return source if the file on disk still has its checksum (no parsing).

    A source is checked before the migration lock is taken and may run much
    later: the file must not have been edited, or removed, meanwhile.

    Raises:
        MigrationDirError: when the file changed or cannot be read any more.
    """
    try:
        current = checksum_of_file(path)
    except OSError as exc:
        raise MigrationDirError(
            f"cannot read file: {exc.strerror}", path=Path(path)
        ) from exc
    if current != source.checksum:
        raise MigrationDirError(
            "file changed while schemactl was running; nothing of it was applied",
            path=Path(path),
        )
    return source


def load_source(migration: MigrationFile) -> ParsedSource:
    """Re-read a migration file just before it runs, check it, and that it is unchanged.

    Raises:
        MigrationDirError: when the file changed since discovery or breaks a rule.
    """
    source = parse_source(read_source(migration.location), migration.location)
    if source.checksum != migration.checksum:
        raise MigrationDirError(
            "file changed while schemactl was running; nothing of it was applied",
            path=migration.path,
        )
    return source
