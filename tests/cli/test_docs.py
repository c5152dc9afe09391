"""Every command has help and is documented in the README (sqlite-utils' test_docs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from schemactl.cli import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert cli.commands[name].get_short_help_str()
    assert "--database-url" in result.output


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_is_in_the_readme(name):
    assert f"### `schemactl {name}" in README


@pytest.mark.parametrize("code", ["0", "1", "2", "3"])
def test_exit_codes_are_documented(code):
    assert f"| {code} |" in README
