"""The configuration file: `schemactl.toml`, or `[tool.schemactl]` in
`pyproject.toml`, with named environments. Stdlib only (tomllib).

Found the way ruff and pytest find theirs: from the working directory upwards,
the first directory holding a `schemactl.toml`, or a `pyproject.toml` with a
`[tool.schemactl]` table (in one directory, `schemactl.toml` wins). Keys are the
long option names; `dir` is relative to the file's directory. An environment
(`[environments.NAME]`, chosen with `--env NAME`) overrides the top-level keys.

This module reads and checks the file; the CLI applies its values under the
command line and the environment variables (flag > env > file > default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemactl.config import (
    MAX_RETRIES,
    MAX_SECONDS,
    POOLER_CHOICES,
    parse_table_name,
    quote_conninfo,
)
from schemactl.errors import UsageError

CONFIG_FILE = "schemactl.toml"
PYPROJECT = "pyproject.toml"
ENVIRONMENTS = "environments"
GROUPS = "groups"
# The most processes a fleet run may start at once (each holds two
# connections to its server).
MAX_JOBS = 256

# TOML key -> the Settings field it sets.
_PLAIN_KEYS = {
    "dir": "directory",
    "table": "table",
    "connect-timeout": "connect_timeout",
    "lock-timeout": "lock_timeout",
    "table-lock-timeout": "table_lock_timeout",
    "table-lock-retries": "table_lock_retries",
    "table-lock-backoff": "table_lock_backoff",
    "statement-timeout": "statement_timeout",
    "pooler": "pooler",
}
# Three ways to name the database; at most one per level, and an environment
# that names one replaces the top level's.
_URL_KEYS = ("database-url", "database-url-env", "service")
_KNOWN_KEYS = (*_PLAIN_KEYS, *_URL_KEYS)
_INTEGER_FIELDS = frozenset({"table_lock_retries"})


@dataclass(frozen=True, slots=True)
class DatabaseSource:
    """How the file names the database: read only when it is the one used (a
    flag or DATABASE_URL may name another, and `new` needs none)."""

    key: str
    value: str
    origin: str
    path: Path

    def describe(self) -> str:
        """Return where the URL comes from, for `schemactl config`."""
        if self.key == "database-url-env":
            return f"{self.origin} database-url-env {self.value}"
        return f"{self.origin} {self.key}"

    def url(self, environ: Mapping[str, str]) -> str:
        """Return the URL or conninfo string.

        Raises:
            UsageError: when database-url-env names a variable that is not set.
        """
        if self.key == "service":
            # A libpq service (pg_service.conf): the connection details and the
            # password stay out of the repository.
            return f"service={quote_conninfo(self.value)}"
        if self.key == "database-url-env":
            url = environ.get(self.value)
            if not url:
                raise UsageError(
                    f"{self.path}: environment variable {self.value} is not set "
                    f"(named by database-url-env in {self.origin})"
                )
            return url
        return self.value


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """A named group of target databases (`[groups.NAME]`): a list of URLs or
    service names, or a query that lists them; and how many to run at once."""

    name: str
    targets: tuple[str, ...] = ()
    query: str | None = None
    jobs: int | None = None


@dataclass(frozen=True, slots=True)
class FileSettings:
    """What the configuration file sets: Settings field -> value, and for each
    the place it came from (for `schemactl config`); the database apart."""

    path: Path
    environment: str | None
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    database: DatabaseSource | None = None
    groups: dict[str, TargetGroup] = field(default_factory=dict)

    def group(self, name: str) -> TargetGroup:
        """Return the named group.

        Raises:
            UsageError: when the file has no such group.
        """
        if name not in self.groups:
            known = ", ".join(sorted(self.groups)) or "none"
            raise _bad(self.path, f"no group {name!r} (groups: {known})")
        return self.groups[name]


def find_config_file(start: Path) -> Path | None:
    """Return the configuration file that applies in `start`, if any.

    Raises:
        UsageError: for a pyproject.toml on the way up that cannot be read, or
            that mentions schemactl and is not valid TOML.
    """
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT
        if pyproject.is_file() and _has_schemactl_table(pyproject):
            return pyproject
    return None


def _has_schemactl_table(pyproject: Path) -> bool:
    # Most pyproject.toml files never mention schemactl: those are passed over
    # without loading the TOML parser (about 10 ms on every command).
    # An unreadable one is not passed over: the parent project's settings
    # would apply instead.
    data = _read_bytes(pyproject)
    if b"schemactl" not in data:
        return False
    return _schemactl_table(pyproject, _parse_toml(pyproject, data)) is not None


def load_config_file(path: Path, environment: str | None) -> FileSettings:
    """Read and check a configuration file, with `environment` applied.

    Every environment is checked, not only the one chosen: a typo in
    [environments.prod] fails in CI, not in production.

    Raises:
        UsageError: for a file that is missing or not TOML, a pyproject.toml
            without [tool.schemactl], an unknown key, a value of the wrong type
            or out of range, or an unknown environment.
    """
    table = _read_toml(path)
    if path.name == PYPROJECT:
        found = _schemactl_table(path, table)
        if found is None:
            raise _bad(path, "no [tool.schemactl] table")
        table = found
    prefix = "tool.schemactl." if path.name == PYPROJECT else ""
    environments = table.get(ENVIRONMENTS, {})
    if not isinstance(environments, dict):
        raise _bad(path, f"[{prefix}{ENVIRONMENTS}] must be a table of environments")
    top_origin = f"{path.name} [tool.schemactl]" if prefix else path.name
    groups = _read_groups(path, table.get(GROUPS, {}), prefix)
    top = _Level.read(
        path,
        {k: v for k, v in table.items() if k not in (ENVIRONMENTS, GROUPS)},
        top_origin,
    )
    levels = {
        name: _Level.read(path, level, f"{path.name} [{prefix}{ENVIRONMENTS}.{name}]")
        for name, level in environments.items()
    }
    chosen = [top]
    if environment is not None:
        if environment not in levels:
            known = ", ".join(sorted(levels)) or "none"
            raise _bad(path, f"no environment {environment!r} (environments: {known})")
        chosen.append(levels[environment])
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    database = None
    for level in chosen:
        for name, value in level.values.items():
            values[name], origins[name] = value, level.origin
        database = level.database or database
    if database is not None:
        origins["database_url"] = database.describe()
    return FileSettings(path, environment, values, origins, database, groups)


def _read_groups(path: Path, table: Any, prefix: str) -> dict[str, TargetGroup]:
    """Read and check every `[groups.NAME]` table."""
    if not isinstance(table, dict):
        raise _bad(path, f"[{prefix}{GROUPS}] must be a table of groups")
    return {
        name: _read_group(path, name, group, f"[{prefix}{GROUPS}.{name}]")
        for name, group in table.items()
    }


def _read_group(path: Path, name: str, table: Any, origin: str) -> TargetGroup:
    if not isinstance(table, dict):
        raise _bad(path, f"{origin} must be a table")
    unknown = sorted(set(table) - {"targets", "query", "jobs"})
    if unknown:
        raise _bad(
            path,
            f"unknown key {unknown[0]!r} in {origin} (known: targets, query, jobs)",
        )
    if ("targets" in table) == ("query" in table):
        raise _bad(path, f"{origin} needs either 'targets' or 'query' (one of them)")
    targets = table.get("targets", [])
    if (
        not isinstance(targets, list)
        or not all(isinstance(t, str) and t for t in targets)
        or ("targets" in table and not targets)
    ):
        raise _bad(
            path,
            f"targets in {origin} must be a non-empty list of URLs or service names",
        )
    query = table.get("query")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise _bad(path, f"query in {origin} must be a non-empty string")
    jobs = table.get("jobs")
    if jobs is not None and (
        isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS
    ):
        raise _bad(
            path, f"jobs in {origin} must be a whole number from 1 to {MAX_JOBS}"
        )
    return TargetGroup(name, tuple(targets), query, jobs)


@dataclass(frozen=True, slots=True)
class _Level:
    """The checked keys of the top level or of one environment."""

    origin: str
    values: dict[str, Any]
    database: DatabaseSource | None

    @classmethod
    def read(cls, path: Path, table: Any, origin: str) -> _Level:
        if not isinstance(table, dict):
            raise _bad(path, f"{origin} must be a table")
        unknown = sorted(set(table) - set(_KNOWN_KEYS))
        if unknown:
            raise _bad(
                path,
                f"unknown key {unknown[0]!r} in {origin} (known: "
                f"{', '.join(_KNOWN_KEYS)}, and [{ENVIRONMENTS}.NAME] tables)",
            )
        values = {
            name: _checked(path, origin, key, name, table[key])
            for key, name in _PLAIN_KEYS.items()
            if key in table
        }
        given = [key for key in _URL_KEYS if key in table]
        if len(given) > 1:
            raise _bad(path, f"{origin} sets both {given[0]!r} and {given[1]!r}")
        database = None
        if given:
            key = given[0]
            value = table[key]
            if not isinstance(value, str) or not value:
                raise _bad(path, f"{key} in {origin} must be a non-empty string")
            database = DatabaseSource(key, value, origin, path)
        return cls(origin, values, database)


def _checked(path: Path, origin: str, key: str, name: str, value: Any) -> Any:
    if name == "pooler":
        if value not in POOLER_CHOICES:
            raise _bad(
                path, f"{key} in {origin} must be one of {', '.join(POOLER_CHOICES)}"
            )
        return value
    if name in ("directory", "table"):
        if not isinstance(value, str) or not value:
            raise _bad(path, f"{key} in {origin} must be a non-empty string")
        if name == "directory":
            return path.parent / value
        try:
            parse_table_name(value)
        except UsageError as exc:
            raise _bad(path, f"{key} in {origin}: {exc.message}") from None
        return value
    if name in _INTEGER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, f"{key} in {origin} must be a whole number")
        if not 0 <= value <= MAX_RETRIES:
            raise _bad(path, f"{key} in {origin} must be from 0 to {MAX_RETRIES}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(path, f"{key} in {origin} must be a number of seconds")
    if not 0 <= value <= MAX_SECONDS:  # false for NaN too
        raise _bad(path, f"{key} in {origin} must be from 0 to {MAX_SECONDS} seconds")
    return float(value)


def _schemactl_table(path: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    tool = document.get("tool", {})
    if not isinstance(tool, dict) or "schemactl" not in tool:
        return None
    table = tool["schemactl"]
    if not isinstance(table, dict):
        raise _bad(path, "[tool.schemactl] must be a table")
    return table


def _read_toml(path: Path) -> dict[str, Any]:
    return _parse_toml(path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise _bad(path, "is a directory, not a configuration file") from None
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror}") from None


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    import tomllib  # only a run that finds a file pays for it

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _bad(path, f"not valid TOML: not UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, f"not valid TOML: {exc}") from None


def _bad(path: Path, message: str) -> UsageError:
    return UsageError(f"{path}: {message}")
