"""The lint use case: schemactl's own checks of each file (what migrate would
refuse) and its rules about heavy locks, or squawk's rules when squawk is
installed (`pip install squawk-cli`). Returns data; nothing here prints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemactl.core.discovery import list_file_names, parse_file_name, read_source
from schemactl.core.lint_rules import Finding, lint_statements
from schemactl.core.validation import parse_source
from schemactl.errors import MigrationDirError, UsageError

# schemactl runs every statement under a lock timeout (--table-lock-timeout):
# squawk's rule asking each file to set one would only be noise. Filtered from
# squawk's results, so that the user's own .squawk.toml still applies.
SQUAWK_EXCLUDED = ("require-lock-timeout",)


@dataclass(frozen=True, slots=True)
class LintReport:
    """The findings, file by file, and which rules produced them."""

    files: list[str]
    findings: list[Finding]
    squawk: bool


def lint(
    directory: Path, paths: Iterable[Path] = (), *, squawk: str = "auto"
) -> LintReport:
    """Lint the given files, or every migration file in directory.

    squawk: "auto" (use it when installed), "on" (required) or "off".

    Raises:
        MigrationDirError: for a directory that cannot be listed.
        UsageError: for --squawk on when squawk is not installed.
    """
    files = list(paths) or [
        directory / name.file_name for name in list_file_names(directory)
    ]
    squawk_path = _squawk(squawk)
    findings: list[Finding] = []
    for path in files:
        findings += _lint_file(path, squawk_path)
    return LintReport([str(f) for f in files], findings, squawk_path is not None)


def _lint_file(path: Path, squawk_path: str | None) -> list[Finding]:
    try:
        parse_file_name(path.name, path.parent)  # a path given may be any file
        data = read_source(path)
        source = parse_source(data, path)
    except MigrationDirError as error:
        return [
            Finding(
                str(path),
                error.line or 1,
                error.column or 1,
                "error",
                "invalid-file",
                error.message,
                error.hint,
            )
        ]
    if squawk_path is not None and not any(
        statement.is_copy_from_stdin for statement in source.statements
    ):
        # squawk does not read psql's inline COPY data: such a file gets
        # schemactl's rules instead.
        return _squawk_findings(
            squawk_path, path, data, transactional=not source.no_transaction
        )
    return lint_statements(source.text, source.statements, str(path))


def _squawk(mode: str) -> str | None:
    """Find squawk: next to this Python first (pip installs squawk-cli there,
    with schemactl's `lint` extra), then on PATH."""
    if mode == "off":
        return None
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if found is None and mode == "on":
        raise UsageError(
            "--squawk on: squawk is not installed (pip install 'schemactl[lint]', "
            "or squawk-cli)"
        )
    return found


def _squawk_findings(
    squawk: str, path: Path, data: bytes, *, transactional: bool
) -> list[Finding]:
    """Run squawk on one file, with the user's own squawk configuration (only
    schemactl's exclusion is applied, to the results). squawk exits 1 with
    findings; anything else is squawk failing, never a clean file."""
    argv = [squawk, "--reporter", "json"]
    if transactional:
        argv.append("--assume-in-transaction")  # schemactl wraps the file
    done = subprocess.run(
        [*argv, str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    try:
        reported: list[dict[str, Any]] = json.loads(done.stdout)
    except json.JSONDecodeError:
        reported = []
    if done.returncode not in (0, 1) or (done.returncode == 1 and not reported):
        reason = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        raise UsageError(f"squawk failed on {path}: {reason}")
    lines = data.split(b"\n")
    return [
        Finding(
            str(path),
            int(item.get("line") or 0) + 1,
            _character_column(
                lines, int(item.get("line") or 0), int(item.get("column") or 0)
            ),
            "error" if str(item.get("level", "")).lower() == "error" else "warning",
            f"squawk:{item.get('rule_name', 'unknown')}",
            str(item.get("message", "")),
            item.get("help"),
        )
        for item in reported
        if item.get("rule_name") not in SQUAWK_EXCLUDED
    ]


def _character_column(lines: list[bytes], line: int, byte_column: int) -> int:
    """Return the 1-based column, in characters, of squawk's 0-based column
    in bytes of the file as it is on disk (a BOM on the first line is not a
    character of the text)."""
    if line >= len(lines):
        return byte_column + 1
    before = lines[line][:byte_column]
    if line == 0:
        before = before.removeprefix(b"\xef\xbb\xbf")
    return len(before.decode("utf-8", errors="ignore")) + 1
