"""The use cases that need no database: new and sql.

Never imports the db package, so these commands start without loading psycopg.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from schemactl import __version__
from schemactl.config import Settings
from schemactl.core.discovery import discover_migrations, list_file_names
from schemactl.core.model import MigrationFile
from schemactl.core.scaffold import (
    create_migration_files,
    plan_new_files,
    uses_timestamps,
)
from schemactl.core.script import render_script
from schemactl.core.validation import ParsedSource, load_source, statement_error


def new_migration(
    directory: Path, name: str, *, with_down: bool = False, timestamp: bool = False
) -> list[Path]:
    """Create the next migration file (and its down file): numbered, or named by
    the current UTC time when asked or when the newest file already is.

    Raises:
        MigrationDirError: when an existing file name is invalid.
        UsageError: when the name is unusable.
    """
    existing = list_file_names(directory) if directory.exists() else []
    now = None
    if timestamp or uses_timestamps(existing):
        now = datetime.now(UTC)
    files = plan_new_files(existing, name, with_down=with_down, now=now)
    return create_migration_files(directory, files)


def sql_script(settings: Settings, *, target: int | None = None) -> Iterator[str]:
    """Yield the psql script that applies every migration up to target.

    Every file is checked before the first line is produced, so an error never
    leaves half a script on stdout.

    Raises:
        MigrationDirError: for an invalid migrations directory, or a file with
            ``COPY ... FROM stdin`` data (psql reads inline data even inside a
            skipped ``\\if`` branch, which breaks the guard on a second run).
    """
    all_files = discover_migrations(settings.directory)
    files = [f for f in all_files if target is None or f.version <= target]
    for migration in files:
        _refuse_inline_copy(migration, load_source(migration))

    def sources() -> Iterator[tuple[MigrationFile, str]]:
        for migration in files:
            yield migration, load_source(migration).text

    return render_script(
        settings.table.schema,
        settings.table.name,
        all_files,
        sources(),
        version=__version__,
    )


def _refuse_inline_copy(migration: MigrationFile, source: ParsedSource) -> None:
    for statement in source.statements:
        if statement.is_copy_from_stdin:
            raise statement_error(
                source.text,
                statement,
                migration.path,
                "COPY ... FROM stdin data cannot go into the psql script: psql "
                "reads inline data even where the script skips an applied file",
                hint="apply this file with `schemactl migrate` (it records it in "
                "the history; `psql -f` on the file alone would not)",
            )
