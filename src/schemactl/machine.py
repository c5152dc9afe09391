"""Output for machines: the JSON documents of `--format json` and the GitHub
Actions annotations of `--format github`. Stdlib only; nothing here prints.

Every command's JSON document has the same frame, on success and on failure:

    {"format_version": 1, "command": "migrate", "ok": true, "exit_code": 0,
     ...the command's own keys..., "error": null}

`error` is null or an object: `type`, `exit_code`, `message`, `hint`, `state`,
and where known `sqlstate`, `detail`, `file`, `line`, `column` (README: "Output
for machines"). Keys are only
ever added within a format version; `format_version` changes when one is
removed or changes meaning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemactl.errors import (
    Cancelled,
    DriftError,
    MigrationDirError,
    MigrationFailed,
    SchemactlError,
)

if TYPE_CHECKING:
    from schemactl.core.fleet import FleetResult, TargetResult
    from schemactl.core.lint_rules import Finding
    from schemactl.core.model import LogRow, MigrationFile, StatusEntry
    from schemactl.core.planning import RepairPlan

FORMAT_VERSION = 1
FORMATS = ("text", "json", "github")


def document(command: str, exit_code: int, **payload: Any) -> dict[str, Any]:
    """Return a command's document: the frame around its own keys."""
    error = payload.pop("error", None)
    return {
        "format_version": FORMAT_VERSION,
        "command": command,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        **payload,
        "error": error,
    }


def wants_json(arguments: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Return True when a command line asks for JSON, read from the words as
    written: for the errors raised before (or while) click parses them."""
    chosen = environ.get("SCHEMACTL_FORMAT", "text").lower()
    words = list(arguments)
    for index, word in enumerate(words):
        if word == "--json":
            chosen = "json"
        elif word == "--format" and index + 1 < len(words):
            chosen = words[index + 1].lower()
        elif word.startswith("--format="):
            chosen = word.removeprefix("--format=").lower()
    return chosen == "json"


def failure_document(
    arguments: Sequence[str],
    environ: Mapping[str, str],
    command: str,
    error: SchemactlError,
) -> str | None:
    """Return the document of a command that failed before (or while) its
    command line was parsed, or None unless the words as written ask for JSON."""
    if not wants_json(arguments, environ):
        return None
    return dumps(document(command, error.exit_code, error=error_json(error)))


def dumps(doc: dict[str, Any]) -> str:
    """Return a document as printed: indented, one document per run."""
    return json.dumps(doc, indent=2, default=str)


def error_json(error: SchemactlError) -> dict[str, Any]:
    """Return the `error` object of a document."""
    found: dict[str, Any] = {
        "type": type(error).__name__,
        "exit_code": error.exit_code,
        "message": error.message,
        "hint": error.hint,
        "state": error.state,
    }
    if isinstance(error, MigrationFailed):
        found.update(
            sqlstate=error.sqlstate,
            detail=error.detail,
            file=str(error.path),
            line=error.line,
            column=error.column,
            statement=error.statement_number,
            statements_done=error.statements_done,
            transactional=error.transactional,
        )
    elif isinstance(error, MigrationDirError):
        found.update(
            file=str(error.path) if error.path else None,
            line=error.line,
            column=error.column,
        )
    elif isinstance(error, DriftError):
        found["drift"] = [entry_json(entry) for entry in error.drift]
    elif error.where is not None:
        found.update(zip(("file", "line", "column"), error.where, strict=True))
    return found


def entry_json(entry: StatusEntry) -> dict[str, Any]:
    """Return one version of status, verify or a drift error."""
    return {
        "version": entry.version,
        "name": entry.name,
        "state": entry.state.value,
        "file": entry.file.location if entry.file else None,
        "applied_at": entry.applied_at.isoformat() if entry.applied_at else None,
        "checksum": entry.file.checksum if entry.file else None,
        "applied_checksum": entry.row.checksum if entry.row else None,
        "execution_ms": entry.row.execution_ms if entry.row else None,
    }


def migration_json(migration: MigrationFile, **extra: Any) -> dict[str, Any]:
    """Return one migration file of a migrate, rollback or baseline document."""
    return {
        "version": migration.version,
        "name": migration.name,
        "file": migration.location,
        **extra,
    }


def repair_plan_json(plan: RepairPlan) -> dict[str, Any]:
    """Return what repair changes (and leaves alone), version by version."""
    return {
        "realign": [entry_json(e) for e in plan.realign],
        "delete_failed": [entry_json(e) for e in plan.delete_failed],
        "left_missing": [entry_json(e) for e in plan.left_missing],
        "left_renamed": [entry_json(e) for e in plan.left_renamed],
    }


def log_row_json(row: LogRow) -> dict[str, Any]:
    """Return one audit log row."""
    return {**row._asdict(), "at": row.at.isoformat()}


def finding_json(finding: Finding) -> dict[str, Any]:
    """Return one lint finding."""
    return {
        "file": finding.path,
        "line": finding.line,
        "column": finding.column,
        "level": finding.level,
        "rule": finding.rule,
        "message": finding.message,
        "hint": finding.hint,
    }


# --- GitHub Actions ---------------------------------------------------------


def error_annotations(error: SchemactlError) -> list[str]:
    """Return the annotations of an error: on its file and line where known."""
    if isinstance(error, Cancelled):
        return [annotation("error", error.message)]
    if isinstance(error, MigrationFailed):
        message = error.message
        if error.sqlstate:
            message = f"{message} (SQLSTATE {error.sqlstate})"
        return [
            annotation(
                "error",
                message,
                title="migration failed",
                file=str(error.path),
                line=error.line,
                col=error.column,
            )
        ]
    if isinstance(error, MigrationDirError) and error.path is not None:
        return [
            annotation(
                "error",
                error.message,
                title="invalid migration",
                file=str(error.path),
                line=error.line,
                col=error.column,
            )
        ]
    if isinstance(error, DriftError):
        return [
            annotation("error", error.message, title="drift"),
            *drift_annotations(error.drift, "error"),
        ]
    if error.where is not None:
        file, line, column = error.where
        return [annotation("error", error.message, file=file, line=line, col=column)]
    return [annotation("error", error.message)]


def finding_annotation(finding: Finding) -> str:
    """Return the annotation of one lint finding, on its line."""
    message = finding.message
    if finding.hint:
        message = f"{message}\n{finding.hint}"
    return annotation(
        finding.level,
        message,
        title=finding.rule,
        file=finding.path,
        line=finding.line,
        col=finding.column,
    )


def drift_annotations(entries: Iterable[StatusEntry], level: str) -> list[str]:
    """Return one annotation per version in drift, on its file when it has one."""
    return _entry_annotations(entries, level, "drift", lambda e: f": {e.state.value}")


def pending_annotations(entries: Iterable[StatusEntry], level: str) -> list[str]:
    """Return one annotation per pending version, on its file."""
    return _entry_annotations(
        entries, level, "pending migration", lambda e: " is pending"
    )


def _entry_annotations(
    entries: Iterable[StatusEntry],
    level: str,
    title: str,
    says: Callable[[StatusEntry], str],
) -> list[str]:
    return [
        annotation(
            level,
            f"version {entry.version} ({entry.name}){says(entry)}",
            title=title,
            file=entry.file.location if entry.file else None,
            line=1 if entry.file else None,
        )
        for entry in entries
    ]


def annotation(
    level: str,
    message: str,
    *,
    title: str | None = None,
    file: str | None = None,
    line: int | None = None,
    col: int | None = None,
) -> str:
    """Return one workflow command (`::error file=F,line=L,col=C::message`).

    The file is made relative to the workspace (GITHUB_WORKSPACE, else the
    working directory) when it lies inside it: GitHub places annotations by
    repository path. Values are escaped as the runner expects.
    """
    properties = []
    if file is not None:
        properties.append(f"file={_property(_workspace_path(file))}")
    if line is not None:
        properties.append(f"line={line}")
    if col is not None:
        properties.append(f"col={col}")
    if title is not None:
        properties.append(f"title={_property(title)}")
    head = f"{level} {','.join(properties)}" if properties else level
    return f"::{head}::{_data(message)}"


def _workspace_path(file: str) -> str:
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    absolute = Path(file).resolve()
    if absolute.is_relative_to(workspace):
        return absolute.relative_to(workspace).as_posix()
    return file


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def fleet_json(result: FleetResult) -> dict[str, Any]:
    """Return the keys of a many-target document: one entry per target, in the
    order listed, each with the whole document its own run printed."""
    return {
        "jobs": result.jobs,
        "fail_fast": result.fail_fast,
        "cancelled": result.cancelled_by is not None,
        "counts": result.counts(),
        "targets": [_fleet_target_json(target) for target in result.results],
    }


def _fleet_target_json(result: TargetResult) -> dict[str, Any]:
    started = result.exit_code is not None
    return {
        "target": result.target.label,
        "outcome": result.outcome.value,
        "exit_code": result.exit_code,
        "version_before": result.version_before,
        "version_after": result.version_after,
        "duration_ms": round(result.duration * 1000) if started else None,
        "detail": result.describe(),
        "error": result.error,
        "result": result.document,
    }
