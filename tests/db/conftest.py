"""A migration session on the test database: worker and lock connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemactl import db as schemactl_db
from schemactl.config import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def session(settings: Settings) -> Iterator[schemactl_db.MigrationSession]:
    """What migrate runs files with: the worker, holding the migration lock."""
    with (
        schemactl_db.connect(settings) as worker,
        schemactl_db.migration_lock(settings, worker) as lock,
    ):
        session = schemactl_db.MigrationSession(worker, settings, lock)
        with session.running():
            yield session
