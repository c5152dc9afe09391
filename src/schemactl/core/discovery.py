"""Find and validate migration files: names, versions, encoding, directives, statements.

Only ``discover_migrations`` touches the disk (it lists the directory and reads each
file once); everything else is pure and works on ``(name, bytes)`` inputs.
Imports only the stdlib, errors and other core modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from schemactl.core.checksum import compute_checksum, normalize_bytes
from schemactl.core.directives import DirectiveError, parse_directives
from schemactl.core.model import MigrationFile
from schemactl.core.splitting import (
    SplitError,
    Statement,
    position_to_line_column,
    split_statements,
)
from schemactl.core.statements import controls_transaction, refuses_transaction
from schemactl.errors import MigrationDirError

_FILE_NAME_RE = re.compile(
    r"^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9_]+?)(?P<down>\.down)?\.sql$"
)
_SQL_SUFFIX = ".sql"


@dataclass(frozen=True, slots=True)
class FileName:
    """A migration file name, parsed."""

    file_name: str
    version: int
    name: str
    is_down: bool


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """A migration file's text, split and checked."""

    text: str
    statements: list[Statement]
    no_transaction: bool
    checksum: str


def is_migration_candidate(file_name: str) -> bool:
    """Return True for names the directory scan must account for (``*.sql``)."""
    return file_name.lower().endswith(_SQL_SUFFIX)


def parse_file_name(file_name: str, directory: Path) -> FileName:
    """Parse ``<version>_<name>[.down].sql``.

    Raises:
        MigrationDirError: when the name does not follow the rule.
    """
    match = _FILE_NAME_RE.match(file_name)
    if match is None:
        raise MigrationDirError(
            "not a valid migration file name: expected <version>_<name>.sql or "
            "<version>_<name>.down.sql, name made of [A-Za-z0-9_]",
            path=directory / file_name,
        )
    return FileName(
        file_name=file_name,
        version=int(match.group("version")),
        name=match.group("name"),
        is_down=match.group("down") is not None,
    )


def pair_file_names(
    file_names: Iterable[str], directory: Path
) -> list[tuple[FileName, FileName | None]]:
    """Validate a directory listing and pair each up file with its down file.

    Returns (up, down-or-None) pairs in ascending version order.

    Raises:
        MigrationDirError: for a bad name, a duplicate version, or a down file
            without a matching up file.
    """
    ups: dict[int, FileName] = {}
    downs: dict[int, FileName] = {}
    for file_name in sorted(file_names):
        if not is_migration_candidate(file_name):
            continue
        parsed = parse_file_name(file_name, directory)
        bucket = downs if parsed.is_down else ups
        other = bucket.get(parsed.version)
        if other is not None:
            raise MigrationDirError(
                f"duplicate version {parsed.version}: also used by {other.file_name}",
                path=directory / file_name,
            )
        bucket[parsed.version] = parsed
    for version, down in downs.items():
        up = ups.get(version)
        if up is None or up.name != down.name:
            expected = f"{down.file_name.removesuffix('.down.sql')}.sql"
            raise MigrationDirError(
                f"down file has no up file: expected {expected}",
                path=directory / down.file_name,
            )
    return [(ups[v], downs.get(v)) for v in sorted(ups)]


def decode_source(data: bytes, path: Path) -> str:
    """Decode normalised UTF-8 text.

    Raises:
        MigrationDirError: naming the byte offset of the first invalid byte.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationDirError(
            f"file is not valid UTF-8: invalid byte 0x{data[exc.start]:02x} "
            f"at byte offset {exc.start}",
            path=path,
        ) from exc
    return normalize_bytes(data).decode("utf-8")


def parse_source(data: bytes, path: Path) -> ParsedSource:
    """Decode, split and check one migration file's bytes.

    Raises:
        MigrationDirError: naming FILE:LINE for every rule the file breaks.
    """
    text = decode_source(data, path)
    try:
        statements = split_statements(text)
    except SplitError as exc:
        line, column = position_to_line_column(text, exc.offset)
        raise MigrationDirError(
            exc.message, path=path, line=line, column=column
        ) from exc
    first_line = (
        position_to_line_column(text, statements[0].offset)[0] if statements else None
    )
    try:
        directives = parse_directives(text, first_line)
    except DirectiveError as exc:
        raise MigrationDirError(exc.message, path=path, line=exc.line) from exc
    if not directives.no_transaction:
        _check_transactional(text, statements, path)
    return ParsedSource(
        text=text,
        statements=statements,
        no_transaction=directives.no_transaction,
        checksum=compute_checksum(data),
    )


def _check_transactional(text: str, statements: list[Statement], path: Path) -> None:
    for statement in statements:
        line, column = position_to_line_column(text, statement.offset)
        refused = refuses_transaction(statement)
        if refused is not None:
            raise MigrationDirError(
                f"{refused} cannot run inside a transaction",
                path=path,
                line=line,
                column=column,
                hint="add '-- schemactl:no-transaction' at the top of the file",
            )
        if controls_transaction(statement):
            raise MigrationDirError(
                "transaction control statement in a transactional migration: "
                "schemactl already runs each file in its own transaction",
                path=path,
                line=line,
                column=column,
                hint="remove BEGIN/COMMIT, or add '-- schemactl:no-transaction' "
                "at the top of the file",
            )


def build_migration(
    up: FileName, down: FileName | None, directory: Path, data: bytes
) -> MigrationFile:
    """Validate one up file's bytes and describe it.

    Raises:
        MigrationDirError: for any rule the file breaks.
    """
    path = directory / up.file_name
    source = parse_source(data, path)
    return MigrationFile(
        version=up.version,
        name=up.name,
        path=path,
        checksum=source.checksum,
        no_transaction=source.no_transaction,
        down_path=directory / down.file_name if down is not None else None,
    )


def list_file_names(directory: Path) -> list[FileName]:
    """Return the parsed names of the migration files in directory (no contents).

    Raises:
        MigrationDirError: for a missing directory or an invalid name.
    """
    if not directory.is_dir():
        raise MigrationDirError(f"migrations directory not found: {directory}")
    names = [entry.name for entry in directory.iterdir() if entry.is_file()]
    pairs = pair_file_names(names, directory)
    return [up for up, _ in pairs] + [down for _, down in pairs if down is not None]


def discover_migrations(directory: Path) -> list[MigrationFile]:
    """Read and validate every migration file in directory, in version order.

    Each file is read once and only its checksum and directives are kept, so memory
    stays flat in the number of files. Sub-directories and non-.sql files are ignored.

    Raises:
        MigrationDirError: for a missing directory or any invalid file.
    """
    if not directory.is_dir():
        raise MigrationDirError(f"migrations directory not found: {directory}")
    names = [entry.name for entry in directory.iterdir() if entry.is_file()]
    migrations = []
    for up, down in pair_file_names(names, directory):
        migrations.append(
            build_migration(up, down, directory, read_source(directory / up.file_name))
        )
        if down is not None:
            parse_source(
                read_source(directory / down.file_name), directory / down.file_name
            )
    return migrations


def read_source(path: Path) -> bytes:
    """Read a migration file's bytes.

    Raises:
        MigrationDirError: when the file cannot be read.
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MigrationDirError(f"cannot read file: {exc.strerror}", path=path) from exc
