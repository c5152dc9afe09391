"""Use cases about the server rather than the migrations: wait until it accepts
connections, create and drop the target database (as dbmate's `wait`,
`create` and `drop`). Each returns data; nothing here prints."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from schemactl.config import Settings
from schemactl.db.admin import (
    create_database,
    drop_database,
    server_accepts_connections,
    target_database,
)
from schemactl.db.connection import describe_target
from schemactl.errors import ConnectError

_FIRST_PAUSE = 0.1
_LONGEST_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class DatabaseChange:
    """What create-db or drop-db did to which database."""

    name: str
    changed: bool


def target(settings: Settings) -> str:
    """Return the server and database the settings name, password masked."""
    return describe_target(settings)


def wait(settings: Settings, timeout: float, on_wait: Callable[[str], None]) -> float:
    """Wait until the server accepts connections; return the seconds waited.

    on_wait is called once, with the target, if the first attempt fails.

    Raises:
        ConnectError: when the server did not accept connections in time.
    """
    started = time.monotonic()
    deadline = started + timeout
    pause = _FIRST_PAUSE
    while not server_accepts_connections(settings):
        now = time.monotonic()
        if now >= deadline:
            raise ConnectError(
                f"{describe_target(settings)} did not accept connections within "
                f"{timeout:g} s",
                state="nothing was changed",
            )
        if pause == _FIRST_PAUSE:
            on_wait(describe_target(settings))
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, _LONGEST_PAUSE)
    return time.monotonic() - started


def create_db(settings: Settings) -> DatabaseChange:
    """Create the target database unless it exists.

    Raises:
        UsageError, ConnectError, SchemactlError: see db.admin.
    """
    name = target_database(settings)
    return DatabaseChange(name, create_database(settings, name))


def drop_db(settings: Settings, confirm: Callable[[str], bool]) -> DatabaseChange:
    """Drop the target database if it exists and confirm(name) agrees.

    Raises:
        UsageError, ConnectError, SchemactlError: see db.admin.
    """
    name = target_database(settings)
    if not confirm(name):
        return DatabaseChange(name, changed=False)
    return DatabaseChange(name, drop_database(settings, name))
