from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemactl.core.splitting import (
    SplitError,
    line_at,
    position_to_line_column,
    split_statements,
)


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


CASES = [
    ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1", ["SELECT 1"]),
    (";;SELECT 1;;", ["SELECT 1"]),
    ("-- only a comment\n", []),
    ("SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", "SELECT 2"]),
    ("SELECT E'it\\'s;'; SELECT 2", ["SELECT E'it\\'s;'", "SELECT 2"]),
    ('SELECT 1 AS "we;ird"; SELECT 2', ['SELECT 1 AS "we;ird"', "SELECT 2"]),
    (
        "SELECT $$a;b$$; SELECT $tag$ $$ ; $tag$;",
        ["SELECT $$a;b$$", "SELECT $tag$ $$ ; $tag$"],
    ),
    ("/* a; /* nested; */ still; */ SELECT 1;", ["SELECT 1"]),
    (
        "SELECT 1 -- trailing; comment\n; SELECT 2",
        ["SELECT 1 -- trailing; comment", "SELECT 2"],
    ),
    (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;"
        " SELECT 2",
        [
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
            "SELECT 2",
        ],
    ),
    (
        "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3;",
        [
            "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql\n"
            "BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
            "SELECT 3",
        ],
    ),
    (
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;",
        [
            "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END"
        ],
    ),
    ("BEGIN; SELECT 1; END;", ["BEGIN", "SELECT 1", "END"]),
    (
        "SELECT CASE WHEN true THEN 1 END; SELECT 2",
        ["SELECT CASE WHEN true THEN 1 END", "SELECT 2"],
    ),
    (
        "CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);",
        ["CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2)"],
    ),
]


@pytest.mark.parametrize(
    ("sql", "expected"),
    CASES,
    ids=[
        "two statements",
        "last statement without a semicolon",
        "empty statements are skipped",
        "a file of comments has no statements",
        "semicolon inside a string",
        "semicolon inside an E string with an escaped quote",
        "semicolon inside a quoted identifier",
        "dollar quotes, tagged and untagged",
        "nested block comments",
        "line comment before the semicolon",
        "plpgsql body",
        "BEGIN ATOMIC body with CASE END",
        "BEGIN ATOMIC procedure",
        "transaction control is split like psql",
        "CASE END outside a function body",
        "semicolons inside parentheses",
    ],
)
def test_split_like_psql(sql, expected):
    assert texts(sql) == expected


def test_statement_offsets_point_at_the_first_token():
    sql = "-- header\n\n  SELECT 1;\n/* c */ SELECT 2;"
    first, second = split_statements(sql)
    assert position_to_line_column(sql, first.offset) == (3, 3)
    assert position_to_line_column(sql, second.offset) == (4, 9)


def test_offsets_are_characters_not_bytes():
    sql = "SELECT 'héllo'; SELECT 2;"
    assert split_statements(sql)[1].offset == sql.index("SELECT 2")


def test_copy_from_stdin_carries_its_data_block():
    sql = "COPY t (a, b, c, d, e, f, g, h) FROM stdin;\n1\tit's; \\N\n2\tx\n\\.\nSELECT 2;\n"
    copy, after = split_statements(sql)
    assert copy.text == "COPY t (a, b, c, d, e, f, g, h) FROM stdin"
    assert copy.copy_data == "1\tit's; \\N\n2\tx\n"
    assert after.text == "SELECT 2"
    assert position_to_line_column(sql, after.offset) == (5, 1)


def test_copy_data_runs_to_the_end_without_terminator():
    (copy,) = split_statements("COPY t FROM STDIN;\n1\n2\n")
    assert copy.copy_data == "1\n2\n"


def test_copy_to_stdout_has_no_data_block():
    statements = split_statements("COPY t TO stdout; SELECT 1;")
    assert [s.copy_data for s in statements] == [None, None]


@pytest.mark.parametrize(
    ("sql", "offset", "message"),
    [
        ("SELECT 1;\n\\set x 1\n", 10, "meta-command"),
        ("SELECT 1 \\gset\n", 9, "meta-command"),
        ("SELECT 1;\nSELECT 'abc\n", 17, "unterminated quoted string"),
        ("SELECT $$abc", 7, "unterminated dollar-quoted string"),
        ("SELECT 1; /* open", 10, "unterminated /* comment"),
    ],
    ids=[
        "meta-command at line start",
        "meta-command after a statement",
        "unterminated quote",
        "unterminated dollar quote",
        "unterminated comment",
    ],
)
def test_split_errors_carry_the_offset(sql, offset, message):
    with pytest.raises(SplitError) as caught:
        split_statements(sql)
    assert caught.value.offset == offset
    assert message in caught.value.message


def test_backslash_inside_strings_is_not_a_meta_command():
    assert texts("SELECT 'a\n\\b', $$\n\\c$$;") == ["SELECT 'a\n\\b', $$\n\\c$$"]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, (1, 1)), (3, (1, 4)), (4, (2, 1)), (6, (2, 3)), (99, (2, 4))],
)
def test_position_to_line_column(offset, expected):
    assert position_to_line_column("abc\ndef", offset) == expected


def test_line_at():
    assert line_at("a\nb\nc", 2) == "b"
    assert line_at("a", 5) == ""


identifier = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
string_literal = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10
).map(lambda s: "'" + s.replace("'", "''") + "'")
dollar_body = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="$\x00"), max_size=10
).map(lambda s: f"$q${s}$q$")
statement = st.one_of(
    identifier.map(lambda i: f"SELECT 1 AS {i}"),
    string_literal.map(lambda s: f"SELECT {s}"),
    dollar_body.map(lambda s: f"SELECT {s}"),
    identifier.map(lambda i: f'SELECT 1 AS "{i};x"'),
)
separator = st.sampled_from([";", ";\n", "; -- c;\n", ";\n/* a; /* b; */ */\n"])


@given(st.lists(statement, min_size=1, max_size=8), separator)
def test_split_recovers_joined_statements(statements, sep):
    sql = sep.join(statements) + ";"
    found = split_statements(sql)
    assert [s.text for s in found] == statements
    for original, got in zip(statements, found, strict=True):
        assert sql[got.offset : got.offset + len(original)] == original


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT E''' \\'; DROP TABLE keep; --\n",
        "SELECT 'it''; DROP TABLE keep; --\n",
        'SELECT 1 AS "a""; DROP TABLE keep; --\n',
    ],
    ids=["E string", "plain string", "quoted identifier"],
)
def test_a_doubled_quote_never_ends_a_string(sql):
    # psql reads '' as an escaped quote (its longest match): the string stays
    # open, so the DROP is never a statement of its own.
    with pytest.raises(SplitError, match="unterminated"):
        split_statements(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "COPY t FROM stdin;\n1\n\\.\n;\nSELECT 2;\n",
        "COPY t FROM stdin;\n1\n\\.\n/* c */;\nSELECT 2;\n",
    ],
    ids=["lone semicolon", "comment only"],
)
def test_an_empty_statement_right_after_copy_data_is_refused(sql):
    with pytest.raises(SplitError, match="as more COPY data") as caught:
        split_statements(sql)
    assert sql[caught.value.offset] == ";"


def test_an_empty_statement_later_is_still_skipped():
    sql = "COPY t FROM stdin;\n1\n\\.\nSELECT 1;\n;\nSELECT 2;\n"
    assert [s.text for s in split_statements(sql)] == [
        "COPY t FROM stdin",
        "SELECT 1",
        "SELECT 2",
    ]


def test_a_statement_after_copy_data_must_start_with_a_word():
    sql = "COPY t FROM stdin;\n1\n\\.\n(SELECT 1);\nSELECT 2;\n"
    with pytest.raises(SplitError, match="must start with a word") as caught:
        split_statements(sql)
    assert sql[caught.value.offset] == "("


def test_a_letter_glued_to_a_number_is_no_word():
    # psql reads 2b as one (junk) token: this begin opens no function body.
    sql = "CREATE FUNCTION k() RETURNS int LANGUAGE sql RETURN 2begin;\nSELECT 2;\n"
    assert len(split_statements(sql)) == 2
