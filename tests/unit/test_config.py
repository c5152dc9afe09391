from __future__ import annotations

import pytest

from schemactl.config import (
    known_secrets,
    mask_url,
    parse_table_name,
    password_of,
    redact,
)
from schemactl.errors import UsageError


@pytest.mark.parametrize(
    ("value", "schema", "name"),
    [
        ("schema_migrations", "public", "schema_migrations"),
        ("ops.history", "ops", "history"),
        ('x"; DROP TABLE victim; --', "public", 'x"; DROP TABLE victim; --'),
    ],
)
def test_table_names(value, schema, name):
    table = parse_table_name(value)
    assert (table.schema, table.name) == (schema, name)


@pytest.mark.parametrize(
    "value",
    ["", ".", "a.", ".b", "a.b.c", "a" * 64, "a\x00b", "pg_catalog.h", "pg_temp.h"],
)
def test_invalid_table_names(value):
    with pytest.raises(UsageError):
        parse_table_name(value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:****@db:5432/app"),
        ("postgres://app@db/app", "postgres://app@db/app"),
        ("postgresql://app:p%40ss@db/app", "postgresql://app:****@db/app"),
        ("host=db password=s3cret user=app", "host=db password=**** user=app"),
        ("host=db password='s3 cret' user=app", "host=db password=**** user=app"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_password_of():
    assert password_of("postgresql://u:pw@h/d") == "pw"
    assert password_of("host=h password=pw") == "pw"
    assert password_of("postgresql://u@h/d") is None
    assert password_of(None) is None


def test_redact_removes_known_secrets_anywhere():
    assert redact("failed for hunter2 at x", ("hunter2",)) == "failed for **** at x"


def test_known_secrets_collects_url_passwords_and_pgpassword(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-env")
    found = known_secrets(
        "postgresql://u:from-url@h/d", None, "not a url", "host=h password=kw"
    )
    assert found == ("from-url", "kw", "from-env")
