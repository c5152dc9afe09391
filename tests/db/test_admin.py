"""Which database create-db and drop-db act on: libpq's own choice."""

from __future__ import annotations

import pytest

from schemactl.config import Settings
from schemactl.db.admin import target_database
from schemactl.errors import UsageError


@pytest.fixture(autouse=True)
def no_libpq_variables(monkeypatch, tmp_path):
    for name in ("PGDATABASE", "PGUSER", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    services = tmp_path / "pg_service.conf"
    services.write_text("[staging]\nhost=127.0.0.1\ndbname=from_service\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        ("postgresql://app@db/app_test", {}, "app_test"),
        ("host=db dbname='my db'", {"PGDATABASE": "other"}, "my db"),
        ("host=db", {"PGDATABASE": "from_env"}, "from_env"),
        ("host=db user=alice", {}, "alice"),  # libpq: the user's name
        ("host=db", {"PGUSER": "bob"}, "bob"),
        # The service file beats PGDATABASE, as libpq reads them.
        ("service=staging", {"PGDATABASE": "from_env"}, "from_service"),
        ("host=db", {"PGSERVICE": "staging", "PGDATABASE": "x"}, "from_service"),
    ],
)
def test_the_target_database_is_libpq_s(monkeypatch, url, environ, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert target_database(Settings(database_url=url)) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("host=db password=secret dbname='unterminated", "unterminated quoted string"),
        ("service=missing", 'definition of service "missing" not found'),
    ],
)
def test_an_unreadable_connection_string_is_a_usage_error(url, reason):
    with pytest.raises(UsageError, match="cannot read the connection string") as raised:
        target_database(Settings(database_url=url))
    assert reason in raised.value.message
    assert "secret" not in raised.value.message
