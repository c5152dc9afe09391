"""schemactl lint: the files migrate would refuse, heavy locks, squawk, formats."""

from __future__ import annotations

import json

import pytest

GOOD = "CREATE TABLE t (id bigint PRIMARY KEY, a bigint);\nCREATE INDEX t_a ON t (a);\n"
LOCKING = "CREATE INDEX t_a2 ON t (a);\n"


def test_clean_files_exit_0(run_cli, sql_dir):
    sql_dir.write({"001_t.sql": GOOD})
    result = run_cli("lint", "--squawk", "off")
    assert result.exit_code == 0, result.output
    assert result.stdout == "lint: 1 file clean (schemactl's rules)\n"


def test_findings_name_file_line_and_column_and_exit_1(run_cli, sql_dir):
    sql_dir.write(
        {
            "001_t.sql": GOOD,
            "002_i.sql": "SELECT 1;\n" + LOCKING,
            "003_m.sql": "SELECT 1;\n  \\i x.sql\n",
        }
    )
    result = run_cli("lint", "--squawk", "off")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{sql_dir.path / '002_i.sql'}:2:1: warning: CREATE INDEX on t blocks writes "
        "to the table until the index is built [index-blocks-writes]"
    )
    assert lines[2].startswith(
        f"{sql_dir.path / '003_m.sql'}:2:3: error: psql meta-commands"
    )
    assert lines[-1] == "lint: 2 problems in 3 files (schemactl's rules)"


def test_an_empty_file_is_a_finding(run_cli, sql_dir):
    sql_dir.write({"001_t.sql": "-- nothing yet\n"})
    result = run_cli("lint", "--squawk", "off")
    assert result.exit_code == 1
    assert "error: the file has no statement" in result.stdout


def test_paths_as_a_pre_commit_hook_passes_them(run_cli, sql_dir):
    sql_dir.write({"001_t.sql": GOOD, "002_i.sql": LOCKING})
    result = run_cli("lint", "--squawk", "off", str(sql_dir.path / "001_t.sql"))
    assert result.exit_code == 0
    assert result.stdout == "lint: 1 file clean (schemactl's rules)\n"


def test_json_and_github(run_cli, sql_dir, monkeypatch):
    monkeypatch.setenv("GITHUB_WORKSPACE", str(sql_dir.path.parent))
    sql_dir.write({"001_i.sql": LOCKING})
    doc = json.loads(run_cli("lint", "--squawk", "off", "--format", "json").stdout)
    assert doc["exit_code"] == 1
    assert [(f["line"], f["rule"], f["level"]) for f in doc["findings"]] == [
        (1, "index-blocks-writes", "warning")
    ]
    github = run_cli("lint", "--squawk", "off", "--format", "github")
    assert any(
        line.startswith(
            "::warning file=sql/001_i.sql,line=1,col=1,title=index-blocks-writes::"
        )
        for line in github.stdout.splitlines()
    )


def test_squawk_rules_when_asked(run_cli, sql_dir):
    # squawk-cli is in the dev extra: this runs the real binary.
    sql_dir.write({"001_i.sql": LOCKING})
    result = run_cli("lint", "--squawk", "on", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["squawk"] is True
    found = {f["rule"] for f in doc["findings"]}
    assert "squawk:require-concurrent-index-creation" in found
    # schemactl sets a lock timeout on every statement: that rule is left out.
    assert "squawk:require-lock-timeout" not in found
    lines = {(f["rule"], f["line"], f["column"]) for f in doc["findings"]}
    assert ("squawk:require-concurrent-index-creation", 1, 1) in lines


@pytest.mark.parametrize("mode", ["off", "auto"])
def test_a_file_migrate_refuses_is_an_error_whatever_the_rules(run_cli, sql_dir, mode):
    sql_dir.write({"001_t.sql": "BEGIN;\nCREATE TABLE t (id bigint);\nCOMMIT;\n"})
    result = run_cli("lint", "--squawk", mode)
    assert result.exit_code == 1
    assert "[invalid-file]" in result.stdout


def test_a_failing_squawk_is_never_a_clean_file(
    run_cli, sql_dir, tmp_path, monkeypatch
):
    sql_dir.write({"001_i.sql": LOCKING})
    (tmp_path / ".squawk.toml").write_text("excluded_rules = [\n")  # broken
    monkeypatch.chdir(tmp_path)
    result = run_cli("lint", "--squawk", "on")
    assert result.exit_code == 2
    assert "squawk failed on" in result.output


def test_a_path_that_is_no_migration_name_is_a_finding(run_cli, sql_dir, tmp_path):
    other = tmp_path / "seed.SQL"
    other.write_text("SELECT 1;\n")
    result = run_cli("lint", "--squawk", "off", str(other))
    assert result.exit_code == 1
    assert "not a valid migration file name" in result.stdout


def test_squawk_columns_count_characters_not_bytes(run_cli, sql_dir):
    sql_dir.write(
        {
            "001_a.sql": "\ufeffCREATE INDEX i ON t (a);\n",
            "002_b.sql": "SELECT 'héllo wörld 日本語'; CREATE INDEX j ON t (a);\n",
        }
    )
    doc = json.loads(run_cli("lint", "--squawk", "on", "--format", "json").stdout)
    found = {
        (f["file"].rsplit("/", 1)[-1], f["line"], f["column"])
        for f in doc["findings"]
        if f["rule"] == "squawk:require-concurrent-index-creation"
    }
    assert found == {("001_a.sql", 1, 1), ("002_b.sql", 1, 27)}


def test_a_file_with_copy_data_gets_schemactl_s_rules_under_squawk(run_cli, sql_dir):
    sql_dir.write(
        {"001_c.sql": "CREATE TABLE c (a bigint);\nCOPY c FROM stdin;\n1\n\\.\n"}
    )
    result = run_cli("lint", "--squawk", "on")
    assert result.exit_code == 0, result.output
