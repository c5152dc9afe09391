"""Which database create-db and drop-db act on: libpq's choice, made explicit."""

from __future__ import annotations

import pytest

from schemactl.config import Settings
from schemactl.db.admin import target_database
from schemactl.errors import UsageError


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        ("postgresql://app@db/app_test", {}, "app_test"),
        ("host=db dbname='my db'", {"PGDATABASE": "other"}, "my db"),
        ("host=db", {"PGDATABASE": "from_env"}, "from_env"),
        ("host=db user=alice", {}, "alice"),  # libpq: the user's name
        ("host=db", {"PGUSER": "bob"}, "bob"),
    ],
)
def test_the_target_database_is_libpq_s(monkeypatch, url, environ, expected):
    for name in ("PGDATABASE", "PGUSER", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert target_database(Settings(database_url=url)) == expected


def test_a_service_must_name_its_database(monkeypatch):
    monkeypatch.delenv("PGDATABASE", raising=False)
    with pytest.raises(UsageError, match="add dbname=NAME"):
        target_database(Settings(database_url="service=staging"))
