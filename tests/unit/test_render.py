"""Piped status output: aligned plain columns (render.py, no terminal)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from schemactl.core.model import HistoryRow, MigrationFile, State, StatusEntry
from schemactl.render import Output, render_status
from schemactl.reports import StatusReport

APPLIED_AT = datetime(2026, 12, 5, 13, 15, 3, 250_000, tzinfo=UTC)


def rendered(entries: list[StatusEntry]) -> str:
    stream = io.StringIO()
    render_status(StatusReport("public.schema_migrations", entries), Output(stream))
    return stream.getvalue()


def entry(version: int, name: str, applied_at: datetime | None) -> StatusEntry:
    file = MigrationFile(version, name, f"sql/{version:03d}_{name}.sql", "c")
    if applied_at is None:
        return StatusEntry(version, name, State.PENDING, file, None)
    row = HistoryRow(version, name, "c", applied_at, "postgres", 1)
    return StatusEntry(version, name, State.APPLIED, file, row)


def test_columns_are_padded_to_the_widest_cell_and_lines_have_no_trailing_blanks():
    text = rendered([entry(1, "a", APPLIED_AT), entry(10, "a_longer_name", None)])
    assert text.splitlines() == [
        "version  name           state    applied at",
        "1        a              applied  2026-12-05 13:15:03+00:00",
        "10       a_longer_name  pending",
        "public.schema_migrations: database at version 1",
    ]


def test_a_row_without_a_time_prints_an_empty_cell():
    # schemactl's own table has applied_at NOT NULL, but a table created by
    # hand (CREATE TABLE IF NOT EXISTS keeps it) may hold a NULL.
    row = HistoryRow(3, "n3", "x", None, "postgres", 0)
    text = rendered([StatusEntry(3, "n3", State.MISSING_FILE, None, row)])
    assert text.splitlines()[1].split() == ["3", "n3", "missing", "file"]
