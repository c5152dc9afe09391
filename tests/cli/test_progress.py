"""Progress in a CI log: a line per file as it starts, a heartbeat while one
statement runs long, and --quiet for scripts."""

from __future__ import annotations

import re

from tests.cli.test_authoring import Terminal
from tests.conftest import run_subprocess, runner_env


def test_piped_progress_names_each_file_and_a_long_statement(database_url, sql_dir):
    sql_dir.write(
        {
            "001_slow.sql": "SELECT 1;\nSELECT pg_sleep(1);\nSELECT 3;\n",
            "002_fast.sql": "SELECT 1;\n",
        }
    )
    result = run_subprocess(
        "migrate", "--heartbeat", "0.2", database_url=database_url, sql_dir=sql_dir
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[1] == "applying 001_slow.sql (1/2)"
    assert lines[-1] == "applying 002_fast.sql (2/2)"
    beats = [line for line in lines if line.startswith("still running")]
    assert beats, result.stderr  # pg_sleep(1) outlasts a 0.2 s heartbeat
    location = re.escape(f"{sql_dir.path / '001_slow.sql'}:2:1")
    assert re.fullmatch(
        rf"still running 001_slow\.sql: statement 2/3 at {location} for "
        r"\d+\.\d s \(\d+\.\d s in the file\)",
        beats[0],
    )
    # The results stay on stdout, one line per file, then the summary.
    out = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in out[:2]] == [
        "applied 001_slow.sql",
        "applied 002_fast.sql",
    ]
    assert out[2].startswith("applied 2 migrations in ")


def test_no_heartbeat_for_statements_shorter_than_it(database_url, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;\n", "002_b.sql": "SELECT 2;\n"})
    result = run_subprocess("migrate", database_url=database_url, sql_dir=sql_dir)
    assert result.returncode == 0
    assert "still running" not in result.stderr


def test_quiet_prints_the_result_only(database_url, sql_dir):
    sql_dir.write({"001_a.sql": "SELECT 1;\n", "002_b.sql": "SELECT 2;\n"})
    result = run_subprocess("-q", "migrate", database_url=database_url, sql_dir=sql_dir)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("applied 2 migrations in ")
    assert len(result.stdout.splitlines()) == 1


def test_quiet_still_shows_problems(database_url, sql_dir):
    sql_dir.write({"001_a.sql": "DO $$ BEGIN RAISE WARNING 'careful'; END $$;\n"})
    result = run_subprocess(
        "migrate", "--quiet", database_url=database_url, sql_dir=sql_dir
    )
    assert result.returncode == 0
    assert "WARNING: careful" in result.stderr


def test_the_terminal_spinner_shows_file_statement_and_time(database_url, sql_dir):
    # --heartbeat 0 turns off the piped heartbeat lines, not the spinner's text.
    sql_dir.write({"001_slow.sql": "SELECT 1;\nSELECT pg_sleep(2);\nSELECT 3;\n"})
    terminal = Terminal(
        "migrate", "--heartbeat", "0", env=runner_env(database_url, sql_dir)
    )
    shown = terminal.wait_for("statement 2/3")
    code, out = terminal.finish()
    assert code == 0
    assert "applying 001_slow.sql (1/1): statement 2/3, " in shown
    assert out.startswith("applied 001_slow.sql (")
