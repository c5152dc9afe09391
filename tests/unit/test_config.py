from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from schemactl.config import parse_table_name
from schemactl.errors import UsageError
from schemactl.redaction import MASK, known_secrets, mask_url, redact, secret_fragments


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


# --- Passwords in every URL/conninfo/env form (shared with tests/cli/test_secrets) --

# Spaces (ASCII, no-break, em), '@', ':', '/', '%', quotes, backslashes, the URL
# and conninfo separators, and non-ASCII letters. No NUL or control characters:
# neither argv nor libpq can carry them.
PASSWORD_ALPHABET = (
    "abcXYZ0129"
    " @:/%'\"\\?&=#;,+!$*~^[]{}()<>|`"
    "\u00e9\u00df\u00f8\u65e5\U0001f511\u00a0\u2003"
)
# Eight characters, four of them different: long and varied enough that finding
# one in the output can only be a leak (eight spaces are a traceback's indent).
passwords = st.text(PASSWORD_ALPHABET, min_size=8, max_size=24).filter(
    lambda p: len(set(p)) >= 4
)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    dbname: str


def _conninfo_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conninfo_escaped(value: str) -> str:
    # An unquoted value: a backslash escapes the next character (libpq's
    # conninfo_parse), needed for spaces, quotes and backslashes.
    return "".join("\\" + char if char in " \t\n\r\f\v'\\" else char for char in value)


def _keywords(target: Target) -> str:
    return (
        f"host={target.host} port={target.port} user={target.user} "
        f"dbname={target.dbname}"
    )


#: form name -> (password, target) -> (connection string or None, environment)
FORMS: dict[str, Callable[[str, Target], tuple[str | None, dict[str, str]]]] = {
    "url userinfo": lambda p, t: (
        f"postgresql://{t.user}:{quote(p, safe='')}@{t.host}:{t.port}/{t.dbname}",
        {},
    ),
    "url query": lambda p, t: (
        f"postgresql://{t.user}@{t.host}:{t.port}/{t.dbname}"
        f"?sslmode=disable&password={quote(p, safe='')}",
        {},
    ),
    "conninfo quoted": lambda p, t: (
        f"{_keywords(t)} password={_conninfo_quoted(p)}",
        {},
    ),
    "conninfo unquoted": lambda p, t: (
        f"password = {_conninfo_escaped(p)} {_keywords(t)}",
        {},
    ),
    "PGPASSWORD": lambda p, t: (
        None,
        {
            "PGPASSWORD": p,
            "PGHOST": t.host,
            "PGPORT": str(t.port),
            "PGUSER": t.user,
            "PGDATABASE": t.dbname,
        },
    ),
}
#: Written as a careless user would, unencoded: often malformed for libpq or
#: read differently by it (the leaks of issue 9).
RAW_FORMS: dict[str, Callable[[str, Target], tuple[str | None, dict[str, str]]]] = {
    "raw url userinfo": lambda p, t: (
        f"postgresql://{t.user}:{p}@{t.host}:{t.port}/{t.dbname}",
        {},
    ),
    "raw url query": lambda p, t: (
        f"postgresql://{t.user}@{t.host}:{t.port}/{t.dbname}?password={p}",
        {},
    ),
}
ALL_FORMS = {**FORMS, **RAW_FORMS}


def spellings(password: str) -> set[str]:
    """The password and the ways the forms above write it."""
    return {
        password,
        quote(password, safe=""),
        _conninfo_quoted(password)[1:-1],
        _conninfo_escaped(password),
    }


def leaked(password: str, output: str) -> set[str]:
    return {spelling for spelling in spellings(password) if spelling in output}


UNIT_TARGET = Target("db.example.com", 5433, "app", "appdb")


# --- mask_url: the display form ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:****@db:5432/app"),
        ("postgres://app@db/app", "postgres://app@db/app"),
        ("postgresql://app:p%40ss@db/app", "postgresql://app:****@db/app"),
        ("host=db password=s3cret user=app", "host=db password=**** user=app"),
        ("host=db password='s3 cret' user=app", "host=db password=**** user=app"),
        ("host=db user=app", "host=db user=app"),
        # issue 9: a space, an '@', a query password libpq cannot decode
        ("postgresql://u:Sup3r Xy@host/db", "postgresql://u:****@host/db"),
        ("postgresql://u:Sup3r@Xy@host/db", "postgresql://u:****@host/db"),
        (
            "postgresql://u@host/db?password=Sup3r%zz",
            "postgresql://u@host/db?password=****",
        ),
        ("postgresql://u:Sup3r%zz@h/db", "postgresql://u:****@h/db"),
        # an unencoded '/' makes libpq read no password at all (host u, port a)
        ("postgresql://u:a/b@host/db", "postgresql://u:****@host/db"),
        ("postgresql://u:a/b?host=c@host/db", "postgresql://u:****@host/db"),
        ("postgresql://u:a?b#c:d@host/db", "postgresql://u:****@host/db"),
        # '@' in a query value is not user info
        (
            "postgresql://u:pw@h/db?application_name=me@x",
            "postgresql://u:****@h/db?application_name=me@x",
        ),
        (
            "postgresql://h:5432,[::1]:5433/db?application_name=me@x",
            "postgresql://h:5432,[::1]:5433/db?application_name=me@x",
        ),
        # a raw '&' in a query password runs to the next keyword=
        (
            "postgresql://u@h/db?sslmode=require&password=a&b&port=1",
            "postgresql://u@h/db?sslmode=require&password=****&port=1",
        ),
        ("postgresql://u@h/db?pass%77ord=x", "postgresql://u@h/db?pass%77ord=****"),
        ("postgresql://u:@h/db", "postgresql://u:@h/db"),
        # conninfo: escapes, spaces around '=', quotes, unterminated quotes
        ("host=db password=Sup3r\\ Xy user=app", "host=db password=**** user=app"),
        ("host=db password = 'it\\'s' user=app", "host=db password = **** user=app"),
        ("host=db password='never closed user=app", "host=db password=****"),
        ("password=a\u2003b user=app", "password=**** user=app"),
        ("host=db sslpassword=k3y", "host=db sslpassword=****"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


# --- known_secrets and redact -----------------------------------------------------


def test_known_secrets_collects_url_passwords_and_pgpassword(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-env")
    found = known_secrets(
        "postgresql://u:from-url@h/d", None, "not a url", "host=h password=kw"
    )
    assert found == ("from-url", "kw", "from-env")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # as written and as libpq reads it (decoded, unescaped)
        ("postgresql://u:p%40ss@h/d", {"p%40ss", "p@ss"}),
        ("host=h password='a \\'b'", {"'a \\'b'", "a 'b"}),
        ("host=h password=a\\ b", {"a\\ b", "a b"}),
        # both readings of an ambiguous URL: libpq's ("Sup3r") and the user's
        ("postgresql://u:Sup3r@Xy@h/d", {"Sup3r", "Sup3r@Xy"}),
        ("postgresql://u@h/d?password=a&b", {"a", "a&b"}),
        # an argument that holds a URL: -dURL, --database-url=URL
        ("-dpostgresql://u:pw1@h/d", {"pw1"}),
        ("--database-url=host=h password=pw2", {"pw2"}),
    ],
)
def test_known_secrets_reads_every_spelling(monkeypatch, written, expected):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert expected <= set(known_secrets(written))


def test_known_secrets_spells_pgpassword_as_messages_may(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "a b'c\u00e9")
    assert {"a b'c\u00e9", "a%20b%27c%C3%A9", "a b\\'c\u00e9", "a b'c\\u00e9"} <= set(
        known_secrets()
    )


def test_redact_removes_known_secrets_anywhere():
    assert redact("failed for hunter2 at x", ("hunter2",)) == "failed for **** at x"


def test_redact_removes_the_longest_secret_first():
    assert redact("pw is Sup3r@Xy", ("Sup3r", "Sup3r@Xy")) == "pw is ****"


def test_redact_removes_a_short_secret_only_where_it_stands_alone():
    text = "failed to resolve host 'a': a is not a-host"
    assert redact(text, ("a",)) == (
        "failed to resolve host '****': **** is not ****-host"
    )
    assert redact("x 1@ y1@z", ("1@",)) == "x **** y1@z"
    # nothing a text could be told apart from: blanks, punctuation
    assert redact("a - b", (" ", "-")) == "a - b"


def test_redact_masks_urls_and_password_values_it_was_not_told_about():
    text = "talking to postgresql://u:zz@h/db and host=h password='y y' now"
    assert redact(text, ()) == (
        "talking to postgresql://u:****@h/db and host=h password=**** now"
    )


def test_redact_masks_the_connection_string_libpq_echoes():
    url = "postgresql://u:pw@[::1/db"
    message = f'end of string reached ... in URI: "{url}"'
    assert redact(message, known_secrets(url), conninfo=url) == (
        'end of string reached ... in URI: "postgresql://u:****@[::1/db"'
    )


def test_redact_removes_what_libpq_cut_out_of_a_password():
    # libpq ends the password at the first '@' and reads "Xy@h" as the host.
    url = "postgresql://u:Sup3r@Xy@h/db"
    message = "failed to resolve host 'Xy@h': Name or service not known"
    assert redact(message, known_secrets(url), conninfo=url) == (
        "failed to resolve host '****': Name or service not known"
    )
    # and with '&' in a query password: libpq reads "b" as a parameter name
    url = "postgresql://u@h/db?password=a&bcd"
    message = 'missing key/value separator "=" in URI query parameter: "bcd"'
    assert "bcd" not in redact(message, known_secrets(url), conninfo=url)


@pytest.mark.parametrize(
    ("conninfo", "values", "fragments"),
    [
        (
            "postgresql://u:Sup3r@Xy@h/db",
            ["u", "Sup3r", "Xy@h", "db"],
            {"Sup3r", "Xy@h"},
        ),
        ("postgresql://u:ab/cd@h/db", ["u", "ab", "cd@h/db"], {"ab", "cd@h/db"}),
        # a user name that also occurs inside the password is not a fragment
        ("postgresql://u:Sup3r@h/db", ["u", "h", "db"], set()),
        ("host=h user=bob password=bobby", ["h", "bob"], set()),
    ],
)
def test_secret_fragments(conninfo, values, fragments):
    found = secret_fragments(conninfo, values)
    assert {value for value in values if value in found} == fragments


# --- the property: libpq's reading is always covered ---------------------------------


@given(password=passwords, form=st.sampled_from(sorted(ALL_FORMS)))
@example(password="Sup3r Xy", form="raw url userinfo")
@example(password="Sup3r@Xy", form="raw url userinfo")
@example(password="Sup3r%zz", form="raw url query")
@example(password="ab/cd@ef", form="raw url userinfo")
@example(password="x/y?host=z", form="raw url userinfo")
@example(password="a&sslmode=b", form="raw url query")
@example(password="'quoted'\\", form="conninfo unquoted")
@example(password="end\\\\\\", form="conninfo quoted")
@example(password="\u2003em\u00a0space", form="conninfo unquoted")
def test_every_form_is_masked_and_libpqs_password_is_known(password, form):
    conninfo, env = ALL_FORMS[form](password, UNIT_TARGET)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PGPASSWORD", raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        secrets = known_secrets(conninfo)
    if form in FORMS:
        # (Unencoded, "a&sslmode=b" in a query is a password "a" to anyone.)
        assert password in secrets
    if conninfo is None:
        return
    assert not leaked(password, mask_url(conninfo))
    message = f"cannot connect to {conninfo}: {conninfo}"
    assert not leaked(password, redact(message, secrets, conninfo=conninfo))
    try:
        libpq_reads = conninfo_to_dict(conninfo).get("password")
    except (ProgrammingError, UnicodeDecodeError):  # (psycopg decodes as UTF-8)
        return
    if form in FORMS:
        assert libpq_reads == password
    if libpq_reads:
        # What libpq will send is always among the secrets, in every reading.
        assert libpq_reads in secrets
        assert MASK in mask_url(conninfo)


def test_an_unquoted_conninfo_password_with_a_space_is_masked_whole():
    conninfo = "host=h password=Zq9 p@ss:w/rd dbname=x"
    assert mask_url(conninfo) == "host=h password=**** dbname=x"
    assert "Zq9 p@ss:w/rd" in known_secrets(conninfo)
