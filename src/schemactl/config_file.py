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

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemactl.errors import UsageError

CONFIG_FILE = "schemactl.toml"
PYPROJECT = "pyproject.toml"
ENVIRONMENTS = "environments"

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
}
# Three ways to name the database; at most one per level, and an environment
# that names one replaces the top level's.
_URL_KEYS = ("database-url", "database-url-env", "service")
_KNOWN_KEYS = (*_PLAIN_KEYS, *_URL_KEYS)
_INTEGER_FIELDS = frozenset({"table_lock_retries"})


@dataclass(frozen=True, slots=True)
class FileSettings:
    """What the configuration file sets: Settings field -> value, and for each
    the place it came from (for `schemactl config`)."""

    path: Path
    environment: str | None
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


def find_config_file(start: Path) -> Path | None:
    """Return the configuration file that applies in `start`, if any.

    Raises:
        UsageError: when a pyproject.toml on the way up that mentions schemactl
            is not valid TOML.
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
    try:
        if b"schemactl" not in pyproject.read_bytes():
            return False
    except OSError:
        return False  # unreadable: passed over, as by a walk that finds none
    tool = _read_toml(pyproject).get("tool", {})
    return isinstance(tool, dict) and "schemactl" in tool


def load_config_file(
    path: Path, environment: str | None, environ: Mapping[str, str] = os.environ
) -> FileSettings:
    """Read and check a configuration file, with `environment` applied.

    Every environment is checked, not only the one chosen: a typo in
    [environments.prod] fails in CI, not in production.

    Raises:
        UsageError: for a file that is missing or not TOML, an unknown key, a
            value of the wrong type, an unknown environment, or a
            database-url-env naming a variable that is not set.
    """
    table = _read_toml(path)
    if path.name == PYPROJECT:
        table = table.get("tool", {}).get("schemactl", {})
    environments = table.get(ENVIRONMENTS, {})
    if not isinstance(environments, dict):
        raise _bad(path, f"[{ENVIRONMENTS}] must be a table of environments")
    top = _Level.read(path, {k: v for k, v in table.items() if k != ENVIRONMENTS})
    levels = {
        name: _Level.read(path, level, f"{path.name} [{ENVIRONMENTS}.{name}]")
        for name, level in environments.items()
    }
    settings = FileSettings(path=path, environment=environment)
    top.apply(settings, environ)
    if environment is not None:
        if environment not in levels:
            known = ", ".join(sorted(levels)) or "none"
            raise _bad(path, f"no environment {environment!r} (environments: {known})")
        levels[environment].apply(settings, environ)
    return settings


@dataclass(frozen=True, slots=True)
class _Level:
    """The checked keys of the top level or of one environment."""

    path: Path
    origin: str
    values: dict[str, Any]
    url_key: str | None
    url_value: str

    @classmethod
    def read(cls, path: Path, table: Any, origin: str | None = None) -> _Level:
        origin = origin or path.name
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
        url_key = given[0] if given else None
        url_value = ""
        if url_key is not None:
            url_value = table[url_key]
            if not isinstance(url_value, str) or not url_value:
                raise _bad(path, f"{url_key} in {origin} must be a non-empty string")
        return cls(path, origin, values, url_key, url_value)

    def apply(self, settings: FileSettings, environ: Mapping[str, str]) -> None:
        """Set this level's values over what settings holds."""
        for name, value in self.values.items():
            settings.values[name] = value
            settings.origins[name] = self.origin
        if self.url_key is not None:
            settings.values["database_url"] = self._database_url(environ)
            settings.origins["database_url"] = f"{self.origin} {self.url_key}"

    def _database_url(self, environ: Mapping[str, str]) -> str:
        if self.url_key == "service":
            # A libpq service (pg_service.conf): the connection details and the
            # password stay out of the repository.
            return f"service={_quote_conninfo(self.url_value)}"
        if self.url_key == "database-url-env":
            url = environ.get(self.url_value)
            if not url:
                raise _bad(
                    self.path,
                    f"environment variable {self.url_value} is not set (named by "
                    f"{self.url_key} in {self.origin})",
                )
            return url
        return self.url_value


def _checked(path: Path, origin: str, key: str, name: str, value: Any) -> Any:
    if name in ("directory", "table"):
        if not isinstance(value, str) or not value:
            raise _bad(path, f"{key} in {origin} must be a non-empty string")
        return path.parent / value if name == "directory" else value
    if name in _INTEGER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(path, f"{key} in {origin} must be a whole number >= 0")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad(path, f"{key} in {origin} must be a number of seconds >= 0")
    return float(value)


def _quote_conninfo(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only a run that finds a file pays for it

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror}") from None


def _bad(path: Path, message: str) -> UsageError:
    return UsageError(f"{path}: {message}")
