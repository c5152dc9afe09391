"""Name and write the files `schemactl new` creates. Stdlib and core only.

Only ``create_migration_files`` touches the disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from schemactl.core.discovery import MAX_VERSION, FileName
from schemactl.errors import MigrationDirError, UsageError

MIN_VERSION_WIDTH = 3
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True, slots=True)
class NewFiles:
    """The up file (and optional down file) `new` will create."""

    version: int
    name: str
    up_name: str
    down_name: str | None


def normalize_name(raw: str) -> str:
    """Turn 'add users-table' into 'add_users_table'.

    Raises:
        UsageError: when nothing usable is left.
    """
    name = _NOT_NAME_CHARS.sub("_", raw).strip("_")
    if not name:
        raise UsageError(f"invalid migration name {raw!r}: use letters, digits and _")
    return name


# A version of 14 digits from 1970 on reads as YYYYMMDDHHMMSS (dbmate, Rails).
TIMESTAMP_DIGITS = 14
_TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"


def uses_timestamps(existing: Iterable[FileName]) -> bool:
    """Return True when the newest up file's version is a timestamp."""
    ups = [f for f in existing if not f.is_down]
    newest = max(ups, key=lambda f: f.version, default=None)
    return newest is not None and _is_timestamp(newest.file_name.split("_", 1)[0])


def _is_timestamp(digits: str) -> bool:
    # The date part decides: a version bumped past a collision (…60 seconds)
    # is still one of a timestamped directory.
    if len(digits) != TIMESTAMP_DIGITS:
        return False
    try:
        datetime.strptime(digits[:8], "%Y%m%d")
    except ValueError:
        return False
    return True


def plan_new_files(
    existing: Iterable[FileName],
    raw_name: str,
    *,
    with_down: bool = False,
    now: datetime | None = None,
) -> NewFiles:
    """Return the next file names: version N+1, zero-padded like the newest file;
    or, given `now` (a UTC time), the timestamp YYYYMMDDHHMMSS, so two branches
    adding a migration never pick the same version (N+1 if that is not above
    the newest).

    Raises:
        UsageError: for a name that normalises to nothing, or a next version
            past the largest bigint.
    """
    name = normalize_name(raw_name)
    ups = [f for f in existing if not f.is_down]
    newest = max(ups, key=lambda f: f.version, default=None)
    if now is not None:
        version = int(now.strftime(_TIMESTAMP_FORMAT))
        if newest is not None and version <= newest.version:
            # Twice in one second, or a clock behind the newest file: the next
            # number still sorts after it.
            version = newest.version + 1
        return _named(version, name, f"{version}_{name}", with_down=with_down)
    version = newest.version + 1 if newest else 1
    if version > MAX_VERSION:
        raise UsageError(
            f"the next version would be {version}, past the largest the history "
            f"table holds ({MAX_VERSION})"
        )
    width = MIN_VERSION_WIDTH
    if newest is not None:
        width = max(width, len(newest.file_name.split("_", 1)[0]))
    return _named(version, name, f"{version:0{width}d}_{name}", with_down=with_down)


def _named(version: int, name: str, stem: str, *, with_down: bool) -> NewFiles:
    return NewFiles(
        version=version,
        name=name,
        up_name=f"{stem}.sql",
        down_name=f"{stem}.down.sql" if with_down else None,
    )


def up_template(stem: str) -> str:
    """Return the starting text of a new up file."""
    return (
        f"-- {stem}: describe the change here.\n"
        "-- Runs in one transaction with its history row. For CREATE INDEX\n"
        "-- CONCURRENTLY and friends, put '-- schemactl:no-transaction' on a line\n"
        "-- of this header. Left without a statement, it is refused.\n\n"
    )


def down_template(stem: str) -> str:
    """Return the starting text of a new down file."""
    return f"-- {stem} (down): undo what {stem}.sql does.\n\n"


def create_migration_files(directory: Path, files: NewFiles) -> list[Path]:
    """Create the directory if needed and write the new files (never overwrite).

    Raises:
        MigrationDirError: when a file already exists or cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = files.up_name.removesuffix(".sql")
    contents = [(files.up_name, up_template(stem))]
    if files.down_name is not None:
        contents.append((files.down_name, down_template(stem)))
    written = []
    for file_name, text in contents:
        path = directory / file_name
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise MigrationDirError(
                f"cannot create file: {exc.strerror}", path=path
            ) from exc
        written.append(path)
    return written
