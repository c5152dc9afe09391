"""schemactl's own lint rules: heavy locks on tables that already hold data."""

from __future__ import annotations

import pytest

from schemactl.core.lint_rules import lint_statements
from schemactl.core.splitting import split_statements


def rules(text: str) -> list[tuple[int, str]]:
    found = lint_statements(text, split_statements(text), "f.sql")
    return [(f.line, f.rule) for f in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CREATE INDEX i ON t (a);", [(1, "index-blocks-writes")]),
        ("CREATE UNIQUE INDEX i ON app.t (a);", [(1, "index-blocks-writes")]),
        ("CREATE INDEX CONCURRENTLY i ON t (a);", []),
        (
            "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
            [(1, "column-type-rewrites-table")],
        ),
        (
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
            [(1, "set-not-null-scans-table")],
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id);",
            [(1, "constraint-validates-now")],
        ),
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;", []),
        ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);", []),  # not one of these rules
        ("ALTER TABLE t ADD COLUMN b int;", []),
        ("SELECT 1;\n\nCREATE INDEX i ON t (a);", [(3, "index-blocks-writes")]),
        ("CREATE INDEX i ON t (a;", []),  # a syntax error is migrate's to report
    ],
)
def test_rules(text, expected):
    assert rules(text) == expected


def test_a_table_created_in_the_same_file_is_empty_and_never_flagged():
    text = (
        "CREATE TABLE t (id bigint PRIMARY KEY, a int);\n"
        "CREATE INDEX i ON t (a);\n"
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
        "CREATE INDEX j ON other (a);\n"
    )
    assert rules(text) == [(4, "index-blocks-writes")]


def test_several_commands_of_one_alter_table_each_count():
    text = "ALTER TABLE t ALTER COLUMN a TYPE bigint, ALTER COLUMN b SET NOT NULL;"
    assert [r for _, r in rules(text)] == [
        "column-type-rewrites-table",
        "set-not-null-scans-table",
    ]


def test_a_table_is_matched_with_or_without_its_schema():
    text = (
        "CREATE TABLE public.t (a int);\nCREATE INDEX i ON t (a);\n"
        "CREATE TABLE u AS SELECT 1 AS a;\nCREATE INDEX j ON u (a);\n"
    )
    assert rules(text) == []
