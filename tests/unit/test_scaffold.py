from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemactl.core.discovery import parse_file_name
from schemactl.core.scaffold import (
    create_migration_files,
    normalize_name,
    plan_new_files,
    uses_timestamps,
)
from schemactl.errors import MigrationDirError, UsageError


def names(*file_names: str):
    return [parse_file_name(n, Path("sql")) for n in file_names]


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ((), "001_add_users.sql"),
        (("001_a.sql", "002_b.sql"), "003_add_users.sql"),
        (("1_a.sql",), "002_add_users.sql"),
        (("0007_a.sql",), "0008_add_users.sql"),
        (("999_a.sql",), "1000_add_users.sql"),
        (("20240101120000_a.sql",), "20240101120001_add_users.sql"),
        (("003_a.sql", "003_a.down.sql"), "004_add_users.sql"),
    ],
    ids=[
        "first file",
        "next after two",
        "at least three digits",
        "keeps a wider padding",
        "grows past the padding",
        "timestamp versions",
        "down files do not count",
    ],
)
def test_next_file_name(existing, expected):
    assert plan_new_files(names(*existing), "add_users").up_name == expected


def test_down_file_name_matches():
    files = plan_new_files(names("001_a.sql"), "b", with_down=True)
    assert (files.up_name, files.down_name) == ("002_b.sql", "002_b.down.sql")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("add users", "add_users"),
        ("add-users-table", "add_users_table"),
        ("__x__", "x"),
    ],
)
def test_names_are_normalised(raw, name):
    assert normalize_name(raw) == name


def test_unusable_name_is_a_usage_error():
    with pytest.raises(UsageError):
        normalize_name("---")


def test_create_writes_header_and_never_overwrites(tmp_path):
    files = plan_new_files([], "a", with_down=True)
    up, down = create_migration_files(tmp_path / "sql", files)
    assert up.read_text().startswith("-- 001_a: describe the change here.")
    assert down.read_text().startswith("-- 001_a (down):")
    with pytest.raises(MigrationDirError, match="cannot create file"):
        create_migration_files(tmp_path / "sql", files)


def test_new_refuses_a_version_past_bigint():
    with pytest.raises(UsageError, match="past the largest"):
        plan_new_files(names(f"{2**63 - 1}_last.sql"), "next")


NOW = datetime(2026, 12, 5, 14, 15, 0, tzinfo=UTC)


def test_a_timestamp_version_from_the_utc_time():
    planned = plan_new_files(names("001_a.sql"), "add users", now=NOW)
    assert planned.up_name == "20261205141500_add_users.sql"
    assert planned.version == 20261205141500


def test_a_timestamp_not_above_the_newest_becomes_the_next_number():
    planned = plan_new_files(names("20261205141500_a.sql"), "b", now=NOW)
    assert planned.up_name == "20261205141501_b.sql"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (["20261205141500_a.sql"], True),
        (["001_a.sql", "20261205141560_b.sql"], True),  # bumped past a collision
        (["20261205141500_a.sql", "20261205141501_a.down.sql"], True),
        (["001_a.sql"], False),
        (["12345678901234_a.sql"], False),  # 14 digits, not a date
        ([], False),
    ],
)
def test_a_directory_uses_timestamps_when_its_newest_file_does(existing, expected):
    assert uses_timestamps(names(*existing)) is expected
