from __future__ import annotations

import os
from pathlib import Path

import pytest

from schemactl.core.discovery import (
    discover_migrations,
    pair_file_names,
    parse_file_name,
)
from schemactl.core.validation import parse_source
from schemactl.errors import MigrationDirError

DIR = Path("sql")


@pytest.mark.parametrize(
    ("file_name", "version", "name", "is_down"),
    [
        ("001_initial_schema.sql", 1, "initial_schema", False),
        ("1_x.sql", 1, "x", False),
        ("20240101120000_Add_Users2.sql", 20240101120000, "Add_Users2", False),
        ("002_add_index.down.sql", 2, "add_index", True),
    ],
)
def test_valid_file_names(file_name, version, name, is_down):
    parsed = parse_file_name(file_name, DIR)
    assert (parsed.version, parsed.name, parsed.is_down) == (version, name, is_down)


@pytest.mark.parametrize(
    "file_name",
    [
        "initial.sql",
        "001-initial.sql",
        "001_.sql",
        "001_a-b.sql",
        "001_a.up.sql",
        "v1_a.sql",
    ],
)
def test_invalid_file_names_are_errors_naming_the_file(file_name):
    with pytest.raises(MigrationDirError) as caught:
        pair_file_names([file_name], DIR)
    assert caught.value.path == DIR / file_name
    assert caught.value.exit_code == 2


def test_non_sql_files_are_ignored():
    pairs = pair_file_names(["README.md", ".gitkeep", "001_a.sql"], DIR)
    assert [up.file_name for up, _ in pairs] == ["001_a.sql"]


def test_upper_case_sql_suffix_is_not_silently_skipped():
    with pytest.raises(MigrationDirError):
        pair_file_names(["001_a.SQL"], DIR)


def test_versions_compare_as_integers_so_001_and_1_collide():
    with pytest.raises(MigrationDirError, match="duplicate version 1: also used by"):
        pair_file_names(["001_a.sql", "1_b.sql"], DIR)


def test_files_are_ordered_by_integer_version():
    pairs = pair_file_names(["10_c.sql", "9_b.sql", "0001_a.sql"], DIR)
    assert [up.version for up, _ in pairs] == [1, 9, 10]


def test_down_files_pair_with_their_up_file():
    ((up, down),) = pair_file_names(["001_a.sql", "001_a.down.sql"], DIR)
    assert down is not None
    assert (up.file_name, down.file_name) == ("001_a.sql", "001_a.down.sql")


@pytest.mark.parametrize(
    "names",
    [["001_a.down.sql"], ["001_a.sql", "001_b.down.sql"]],
    ids=["no up file", "different name"],
)
def test_down_file_without_its_up_file_is_an_error(names):
    with pytest.raises(MigrationDirError, match="down file has no up file"):
        pair_file_names(names, DIR)


def test_non_utf8_file_names_the_byte_offset():
    with pytest.raises(MigrationDirError) as caught:
        parse_source(b"SELECT 'caf\xe9';", DIR / "001_a.sql")
    assert "byte offset 11" in caught.value.message
    assert "0xe9" in caught.value.message


def test_bom_and_crlf_are_accepted():
    source = parse_source(b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n", DIR / "001_a.sql")
    assert [s.text for s in source.statements] == ["SELECT 1", "SELECT 2"]


def test_meta_command_names_file_and_line():
    with pytest.raises(MigrationDirError) as caught:
        parse_source(b"SELECT 1;\n\n\\i other.sql\n", DIR / "001_a.sql")
    assert caught.value.location == "sql/001_a.sql:3:1"
    assert "meta-command" in caught.value.message


def test_no_transaction_directive():
    source = parse_source(
        b"-- Build the index online.\n-- schemactl:no-transaction\n"
        b"CREATE INDEX CONCURRENTLY i ON t (a);\n",
        DIR / "001_a.sql",
    )
    assert source.no_transaction


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (b"-- schemactl:no-transation\nSELECT 1;", 1, "unknown directive"),
        (b"SELECT 1;\n-- schemactl:no-transaction\n", 2, "before the first statement"),
        (b"-- SCHEMACTL:no-transaction\nSELECT 1;", 1, "'SCHEMACTL:no-transaction'"),
        (b"-- schemactl:NO-TRANSACTION\nSELECT 1;", 1, "in lower case"),
    ],
    ids=[
        "typo in a directive",
        "directive after the first statement",
        "upper-case prefix is not ignored",
        "upper-case directive is not ignored",
    ],
)
def test_bad_directives_name_the_line(text, line, message):
    with pytest.raises(MigrationDirError, match=message) as caught:
        parse_source(text, DIR / "001_a.sql")
    assert caught.value.line == line


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently i on t (a)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("REINDEX (VERBOSE) TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY"),
        ("REINDEX DATABASE d", "REINDEX DATABASE"),
        ("DISCARD ALL", "DISCARD ALL"),
        ("VACUUM t", "VACUUM"),
        ("CREATE DATABASE d", "CREATE DATABASE"),
        ("ALTER SYSTEM SET work_mem = '1MB'", "ALTER SYSTEM"),
    ],
)
def test_statements_that_cannot_run_in_a_transaction_are_caught(sql, refused):
    text = f"SELECT 1;\n\n{sql};\n".encode()
    with pytest.raises(MigrationDirError) as caught:
        parse_source(text, DIR / "001_a.sql")
    assert caught.value.message == f"{refused} cannot run inside a transaction"
    assert caught.value.line == 3
    assert caught.value.hint is not None
    assert "schemactl:no-transaction" in caught.value.hint


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "COMMIT",
        "START TRANSACTION",
        "ROLLBACK",
        "END",
        "ABORT",
        "ROLLBACK AND CHAIN",
        "PREPARE TRANSACTION 'x'",
        "COMMIT PREPARED 'x'",
    ],
)
def test_transaction_control_in_a_transactional_file_is_refused(sql):
    with pytest.raises(MigrationDirError, match="transaction control"):
        parse_source(f"{sql};\nSELECT 1;".encode(), DIR / "001_a.sql")


def test_savepoints_are_allowed():
    source = parse_source(
        b"SAVEPOINT s; SELECT 1; ROLLBACK TO SAVEPOINT s; RELEASE s;\n"
        b"ROLLBACK TRANSACTION TO SAVEPOINT s; ROLLBACK WORK TO s;",
        DIR / "001_a.sql",
    )
    assert len(source.statements) == 6


def test_versions_past_bigint_are_refused_up_front():
    largest = 2**63 - 1
    assert parse_file_name(f"{largest}_a.sql", DIR).version == largest
    with pytest.raises(MigrationDirError, match="too large") as caught:
        parse_file_name(f"{largest + 1}_a.sql", DIR)
    assert caught.value.path == DIR / f"{largest + 1}_a.sql"


@pytest.mark.parametrize("kind", ["directory", "dangling link", "fifo"])
def test_sql_entries_that_are_not_regular_files_are_errors(tmp_path, kind):
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    odd = tmp_path / "002_b.sql"
    if kind == "directory":
        odd.mkdir()
    elif kind == "dangling link":
        odd.symlink_to(tmp_path / "nowhere.sql")
    else:
        os.mkfifo(odd)
    with pytest.raises(MigrationDirError, match="not a regular file") as caught:
        discover_migrations(tmp_path)
    assert caught.value.path == odd


def test_links_to_regular_files_are_followed(tmp_path):
    (tmp_path / "real.txt").write_text("SELECT 1;")
    (tmp_path / "001_a.sql").symlink_to(tmp_path / "real.txt")
    assert [m.version for m in discover_migrations(tmp_path)] == [1]


def test_discover_reads_validates_and_orders(tmp_path):
    (tmp_path / "002_b.sql").write_text("SELECT 2;")
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_a.down.sql").write_text("SELECT 0;")
    (tmp_path / "README.md").write_text("# notes")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "junk.sql").write_text("\\q")
    found = discover_migrations(tmp_path)
    assert [(m.version, m.name) for m in found] == [(1, "a"), (2, "b")]
    assert found[0].down_path == tmp_path / "001_a.down.sql"
    assert found[1].down_path is None


def test_discovery_is_light_it_does_not_tokenize(tmp_path):
    # A meta-command is found by validation, before the file runs, not by status.
    (tmp_path / "001_a.sql").write_text("\\echo hi\n")
    (found,) = discover_migrations(tmp_path)
    assert found.version == 1


def test_discovery_reads_header_directives(tmp_path):
    (tmp_path / "001_a.sql").write_text("-- schemactl:no-transaction\nVACUUM;\n")
    (found,) = discover_migrations(tmp_path)
    assert found.no_transaction


def test_discovery_refuses_unknown_directives(tmp_path):
    (tmp_path / "001_a.sql").write_text("-- note\n-- schemactl:nope\nSELECT 1;\n")
    with pytest.raises(MigrationDirError) as caught:
        discover_migrations(tmp_path)
    assert caught.value.location == f"{tmp_path / '001_a.sql'}:2"


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(MigrationDirError, match="not found"):
        discover_migrations(tmp_path / "nope")


def test_crlf_inside_a_literal_is_sent_as_written_but_not_checksummed():
    crlf = parse_source(b"SELECT 'a\r\nb';\r\nSELECT 2;\r\n", DIR / "001_a.sql")
    lf = parse_source(b"SELECT 'a\nb';\nSELECT 2;\n", DIR / "001_a.sql")
    assert [s.text for s in crlf.statements] == ["SELECT 'a\r\nb'", "SELECT 2"]
    assert crlf.checksum == lf.checksum


def test_copy_data_in_a_crlf_file_ends_at_its_marker():
    source = parse_source(
        b"COPY t FROM stdin;\r\n1\r\n\\.\r\nSELECT 2;\r\n", DIR / "001_a.sql"
    )
    copy, after = source.statements
    assert copy.copy_data == "1\r\n"
    assert after.text == "SELECT 2"
