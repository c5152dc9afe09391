"""A migration session on the test database: worker and lock connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemactl.config import Settings
from schemactl.db.connection import connect
from schemactl.db.lock import migration_lock
from schemactl.db.session import MigrationSession


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def session(settings: Settings) -> Iterator[MigrationSession]:
    """What migrate runs files with: the worker, holding the migration lock."""
    with (
        connect(settings) as worker,
        migration_lock(settings, worker) as lock,
    ):
        session = MigrationSession(worker, settings, lock)
        with session.running():
            yield session
