"""Find migration files: names, versions, pairing, encoding, checksum, directives.

This is the light pass every command makes: it never tokenizes SQL (see
validation.py for that), so `status` and `verify` stay fast and need no parser.
Only ``discover_migrations``, ``list_file_names`` and ``read_source`` touch the
disk; the rest is pure. Imports only the stdlib, errors and other core modules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from schemactl.core.checksum import checksum_of_normalized, normalize_bytes
from schemactl.core.directives import DirectiveError, Directives, parse_directives
from schemactl.core.model import MigrationFile
from schemactl.errors import MigrationDirError

_FILE_NAME_RE = re.compile(
    r"^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9_]+?)(?P<down>\.down)?\.sql$"
)
_SQL_SUFFIX = ".sql"
# Below glibc's mmap threshold: a larger buffer per small file costs more than
# the extra reads of a large one.
_READ_SIZE = 64 * 1024
# The history table's version column is a bigint.
MAX_VERSION = 2**63 - 1


class FileName(NamedTuple):
    """A migration file name, parsed (a NamedTuple: see model)."""

    file_name: str
    version: int
    name: str
    is_down: bool


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
    version = int(match.group("version"))
    if version > MAX_VERSION:
        raise MigrationDirError(
            f"version {version} is too large: the history table's version column "
            f"is a bigint (at most {MAX_VERSION})",
            path=directory / file_name,
        )
    return FileName(
        file_name=file_name,
        version=version,
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


def normalize_and_decode(data: bytes, path: Path | str) -> tuple[bytes, str]:
    """Return the normalised bytes (what the checksum covers) and their text.

    Raises:
        MigrationDirError: naming the byte offset of the first invalid byte in the
            file as it is on disk.
    """
    normalized = normalize_bytes(data)
    try:
        return normalized, normalized.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:  # report the offset in the original bytes, not the normalised ones
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationDirError(
            f"file is not valid UTF-8: invalid byte 0x{data[exc.start]:02x} "
            f"at byte offset {exc.start}",
            path=Path(path),
        ) from exc
    raise AssertionError("normalising valid UTF-8 cannot make it invalid")


def read_directives(text: str, path: Path | str) -> Directives:
    """Parse the header directives, naming FILE:LINE on error.

    Raises:
        MigrationDirError: for an unknown directive.
    """
    try:
        return parse_directives(text)
    except DirectiveError as exc:
        raise MigrationDirError(exc.message, path=Path(path), line=exc.line) from exc


def build_migration(
    up: FileName, down: FileName | None, directory: str, data: bytes
) -> MigrationFile:
    """Check one up file's encoding and header, and describe it.

    Raises:
        MigrationDirError: for any rule the file breaks.
    """
    location = _join(directory, up.file_name)
    normalized, text = normalize_and_decode(data, location)
    # Only a file that starts with a comment can hold directives: most files
    # skip the header parse (status on 10,000 files).
    no_transaction = (
        text.lstrip(" \t\r\n").startswith("--")
        and read_directives(text, location).no_transaction
    )
    return MigrationFile(  # positional: keywords cost more, 10,000 times
        up.version,
        up.name,
        location,
        checksum_of_normalized(normalized),
        no_transaction,
        _join(directory, down.file_name) if down else None,
    )


def list_file_names(directory: Path) -> list[FileName]:
    """Return the parsed names of the migration files in directory (no contents).

    Raises:
        MigrationDirError: for a missing directory or an invalid name.
    """
    pairs = pair_file_names(_regular_file_names(directory), directory)
    return [up for up, _ in pairs] + [down for _, down in pairs if down is not None]


def discover_migrations(directory: Path) -> list[MigrationFile]:
    """Find every migration file in directory, in version order (the light pass).

    Each up file is read once; only its checksum and directives are kept, so memory
    stays flat in the number of files. Down files are paired by name and read only
    by rollback. Sub-directories and non-.sql files are ignored.

    Raises:
        MigrationDirError: for a missing directory, a bad name, a duplicate version,
            a non-UTF-8 file or an unknown directive.
    """
    names = _regular_file_names(directory)
    base = os.fspath(directory)
    return [
        build_migration(up, down, base, read_source(_join(base, up.file_name)))
        for up, down in pair_file_names(names, directory)
    ]


def _join(directory: str, file_name: str) -> str:
    # Strings, not Path: building one Path per file dominated discovery time
    # (status on 10,000 files); file_name never holds a separator.
    return f"{directory}{os.sep}{file_name}"


def _regular_file_names(directory: Path) -> list[str]:
    """Return the names of the regular files (or links to one) in directory.

    Raises:
        MigrationDirError: for a missing directory, or a ``*.sql`` entry that is
            not a readable regular file (a directory, a dangling link, a FIFO):
            nothing named like a migration is skipped silently.
    """
    if not directory.is_dir():
        raise MigrationDirError(f"migrations directory not found: {directory}")
    names = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_file():
                names.append(entry.name)
            elif is_migration_candidate(entry.name):
                raise MigrationDirError(
                    f"not a regular file: {_describe_entry(entry)}",
                    path=directory / entry.name,
                )
    return names


def _describe_entry(entry: os.DirEntry[str]) -> str:
    if entry.is_dir():
        return "a directory"
    if entry.is_symlink():
        return "a symbolic link to a missing or unreadable file"
    return "a special file (FIFO, socket or device)"


def read_source(path: Path | str) -> bytes:
    """Read a migration file's bytes.

    Raises:
        MigrationDirError: when the file cannot be read.
    """
    # os.open/os.read instead of open().read(): no buffered file object per
    # file, half the time (status on 10,000 files). Reads until end of file: a
    # short read is not taken for the end.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, _READ_SIZE):
                chunks.append(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise MigrationDirError(
            f"cannot read file: {exc.strerror}", path=Path(path)
        ) from exc
    return b"".join(chunks)  # one chunk: joined without a copy
