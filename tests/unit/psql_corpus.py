r"""Hand-written files that psql and a naive splitter may read differently (issue 9).

Data only: tests/cli/test_psql_differential.py feeds each file to real psql and to
schemactl's check, and bench/psql_fuzz.py starts its campaign from them. A case is
the text of a migration file without its header: the differential test puts
``-- schemactl:no-transaction`` in front (psql drops a leading ``--`` line), so
that schemactl's transaction rules do not hide what the splitter does.

Conventions the oracle relies on:

- the only meta-command is ``\echo`` (never ``\!``, ``\i`` or ``\set``); its
  argument is a word starting with MARK, which psql prints when it runs it;
- ``foo`` and ``bar`` are set on psql's command line, like DBNAME, USER, HOST and
  PORT, which psql always sets; ``:2`` (as in ``arr[1:2]``) is never set;
- ``t (a text, b text)``, ``keep`` and ``begin (a int)`` exist in the database,
  so every ``COPY t FROM stdin`` reaches copy mode.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Case:
    """One edge-case file: an id for test names, its text, and why it is here."""

    id: str
    text: str
    why: str

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")


CASES: tuple[Case, ...] = (
    # -- standard_conforming_strings: psql follows the server's setting ----------
    Case(
        "scs-off-hides-a-meta-command",
        "SET standard_conforming_strings = off;\nSELECT 'a\\';\nSELECT ' \\echo MARK #';\n",
        "issue 9 case 1: with the setting off, 'a\\' does not end a string, so the "
        "\\echo is outside quotes for psql",
    ),
    Case(
        "scs-off-backslash-quote-in-a-plain-string",
        "SET standard_conforming_strings = off;\nSELECT 'it\\'s';\nSELECT 2;\n",
        "with the setting off, \\' is an escaped quote inside '...'",
    ),
    Case(
        "scs-off-then-on",
        "SET standard_conforming_strings = off;\nSELECT 'a\\\\';\n"
        "SET standard_conforming_strings = on;\nSELECT 'b\\';\nSELECT 3;\n",
        "the setting switched back: '\\\\' then '\\' are both whole strings",
    ),
    Case(
        "scs-off-e-strings-and-dollar-quotes",
        "SET standard_conforming_strings TO off;\n"
        "SELECT E'a\\'', $$b\\$$, U&'c\\' ;\nSELECT 4;\n",
        "E'' always escapes, dollar quotes and U&'' never do",
    ),
    Case(
        "scs-off-backslash-semicolon-in-a-string",
        "SET standard_conforming_strings = off;\nSELECT 'a\\'; SELECT 1; -- ';\nSELECT 5;\n",
        "with the setting off the first statement runs to the quote in the comment",
    ),
    # -- psql variables ---------------------------------------------------------
    Case(
        "variable-plain",
        "SELECT 1;\nSELECT :foo;\n",
        "psql substitutes :foo when foo is set",
    ),
    Case(
        "variable-dbname-quoted-literal",
        "SELECT :'DBNAME';\n",
        "DBNAME is always set: psql sends the database name as a literal",
    ),
    Case(
        "variable-user-quoted-identifier",
        'SELECT 1 AS :"USER";\n',
        "USER is always set: psql sends it as a quoted identifier",
    ),
    Case(
        "variable-alter-database",
        "ALTER DATABASE :\"DBNAME\" SET work_mem = '8MB';\n",
        "issue 9 case 2: passes --dry-run today, fails at run time",
    ),
    Case(
        "variable-host-and-port",
        "SELECT :'HOST', :PORT;\n",
        "HOST and PORT are always set",
    ),
    Case(
        "variable-existence-test",
        "SELECT :{?bar} AND :{?nope};\n",
        "psql replaces :{?name} by TRUE or FALSE, set or not",
    ),
    Case(
        "variable-in-a-function-body",
        "CREATE OR REPLACE FUNCTION psqldiff_v() RETURNS text LANGUAGE sql\n"
        "BEGIN ATOMIC SELECT :'bar'; END;\n",
        "a variable inside a BEGIN ATOMIC body is substituted too",
    ),
    Case(
        "not-variables-casts-and-slices",
        "SELECT 1::int, (ARRAY[1,2,3])[1:2], '{1,2}'::int[], 'y'::text ::foo;\n",
        ":: is a cast even before a set name, and :2 is never set",
    ),
    Case(
        "not-variables-in-quotes-and-comments",
        "SELECT ':foo', E':''foo''', $$:foo$$, 1 AS \":foo\"; -- :foo\n"
        "/* :'DBNAME' */ SELECT 2;\n",
        "psql substitutes no variable inside quotes or comments",
    ),
    # -- meta-commands ----------------------------------------------------------
    Case(
        "meta-command-on-its-own-line",
        "SELECT 1;\n\\echo MARK\nSELECT 2;\n",
        "a meta-command between statements",
    ),
    Case(
        "meta-command-inside-a-statement",
        "SELECT 1,\n\\echo MARK\n2;\n",
        "psql runs the meta-command and keeps collecting the statement around it",
    ),
    Case(
        "backslash-semicolon-escape",
        "SELECT 1 \\; SELECT 2;\n",
        "psql sends \\; as a semicolon that does not end the statement",
    ),
    Case(
        "not-meta-commands-in-quotes-and-comments",
        "SELECT '\\echo MARK', $$\\echo MARK$$, \"\\echo\"; -- \\echo MARK\n"
        "/* \\echo MARK */ SELECT 2;\n",
        "a backslash inside quotes or comments is no meta-command",
    ),
    # -- COPY FROM stdin --------------------------------------------------------
    Case(
        "copy-then-statement-on-one-line",
        "COPY t FROM stdin; DROP TABLE keep;\n1\tx\n\\.\nSELECT 2;\n",
        "issue 9 case 3: psql reads the data from the next line, then runs the DROP",
    ),
    Case(
        "copy-then-statement-on-the-last-line",
        "SELECT 1;\nCOPY t FROM stdin; SELECT 2;",
        "no data at all, then the statement after the COPY",
    ),
    Case(
        "copy-text-data",
        "COPY t FROM stdin;\na\\\\b\t\\N\nit's; $$\t-- /*\n\\.x\t \\.\n\\.\nSELECT 3;\n",
        "text data with backslashes, quotes, comment starts; \\.x is no end marker",
    ),
    Case(
        "copy-csv-data",
        'COPY t FROM stdin WITH (FORMAT csv);\n1,"a;b"\n2,"multi\nline"\n3,"q""uote"\n\\.\n'
        "SELECT 4;\n",
        "CSV data with quoted separators and a quoted newline",
    ),
    Case(
        "copy-csv-end-marker-inside-quotes",
        'COPY t FROM stdin CSV;\n1,"\n\\.\nSELECT 5;\n',
        "psql ends the data at a \\. line even inside a CSV quoted value",
    ),
    Case(
        "copy-data-to-the-end-of-the-file",
        "COPY t FROM stdin;\n1\tx\n2\ty\n",
        "no end marker: the data runs to the end of the file",
    ),
    Case(
        "copy-end-marker-without-newline",
        "COPY t FROM stdin;\n1\tx\n\\.",
        "the end marker is the last line and has no newline",
    ),
    Case(
        "copy-without-semicolon-at-the-end",
        "SELECT 1;\nCOPY t FROM stdin",
        "psql sends the COPY at the end of the file and the server waits for data",
    ),
    Case(
        "copy-then-empty-statement",
        "COPY t FROM stdin;\n1\tx\n\\.\n;\nSELECT 2;\nSELECT 3;\n",
        "psql 15.20 takes an empty statement right after COPY data for another COPY "
        "FROM STDIN and drops the lines after it: here the rest of the file (exit 0)",
    ),
    Case(
        "copy-then-empty-statement-skips-to-the-next-end-marker",
        "COPY t FROM stdin;\n\\.\n;\nSELECT 2;\n\\.\nSELECT 3;\n",
        "psql reads the lines after that empty statement as COPY data up to the next "
        "\\. line and drops them: SELECT 2 never runs, SELECT 3 does",
    ),
    Case(
        "copy-then-statement-in-parentheses",
        "COPY t FROM stdin;\n1\tx\n\\.\n(SELECT 1);\nCREATE TABLE psqldiff_skipped ();\n",
        "the same for any statement that does not start with a word: psql runs the "
        "SELECT, then drops the CREATE TABLE",
    ),
    Case(
        "copy-refused-by-the-server",
        "COPY nosuch FROM stdin;\nSELECT 1;\n\\.\nSELECT 2;\n",
        "psql 15.20 skips the data of a COPY the server refused; the run stops there",
    ),
    Case(
        "copy-then-comment-only-statement",
        "COPY t FROM stdin;\n\\.\n/* c */;\nSELECT 2;\n",
        "the same with a statement that is only a comment",
    ),
    Case(
        "copy-data-that-looks-like-psql",
        "COPY t FROM stdin;\n:foo\t\\echo MARK\n\\.\nSELECT 6;\n",
        "data is data: no variable, no meta-command",
    ),
    Case(
        "copy-upper-case-and-comments",
        "COPY t (a, b) /* c */ FROM\n  STDIN;\nx\ty\n\\.\nSELECT 7;\n",
        "the COPY spans lines: the data starts after the line with the semicolon",
    ),
    # -- BEGIN ... END bodies and words named begin/end/case/atomic ---------------
    Case(
        "function-returns-setof-begin",
        "CREATE OR REPLACE FUNCTION psqldiff_f() RETURNS SETOF begin LANGUAGE sql\n"
        "AS $$ SELECT * FROM begin $$;\nCOMMIT;\nSELECT 1;\n",
        "issue 9 case 4: psql too counts the table name begin as a BEGIN",
    ),
    Case(
        "begin-atomic-with-case-end",
        "CREATE OR REPLACE FUNCTION psqldiff_g() RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN true THEN 1 ELSE 2 END;\n  SELECT 3;\nEND;\n"
        "SELECT 4;\n",
        "CASE ... END inside BEGIN ATOMIC does not end the body",
    ),
    Case(
        "begin-atomic-procedure",
        "CREATE PROCEDURE psqldiff_p() LANGUAGE sql\nBEGIN ATOMIC INSERT INTO t VALUES "
        "('1'); END;\nSELECT 5;\n",
        "a procedure body",
    ),
    Case(
        "begin-atomic-with-quoted-end",
        'CREATE OR REPLACE FUNCTION psqldiff_h() RETURNS int LANGUAGE sql\nBEGIN ATOMIC SELECT 1 AS "end"; END;\nSELECT 6;\n',
        'a quoted "end" is an identifier, not the end of the body',
    ),
    Case(
        "begin-atomic-with-atomic-and-case-words",
        "CREATE FUNCTION psqldiff_i() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS "
        "atomic; SELECT (CASE WHEN true THEN 2 END); END;\nSELECT 7;\n",
        "a CASE in parentheses is not counted; atomic is only a word",
    ),
    Case(
        "parameter-named-begin",
        "CREATE FUNCTION psqldiff_j(begin int) RETURNS int LANGUAGE sql RETURN begin;\n"
        "SELECT 8;\n",
        "begin in parentheses is not counted, begin after RETURN is",
    ),
    Case(
        "number-glued-to-begin",
        "CREATE FUNCTION psqldiff_k() RETURNS int LANGUAGE sql RETURN 2begin;\nSELECT 2;\n",
        "psql 15 lexes a number with a letter right after it as one token (trailing "
        "junk): this begin is no word, psql counts no BEGIN and ends at the ;",
    ),
    Case(
        "words-begin-end-case-atomic",
        'CREATE TABLE IF NOT EXISTS psqldiff_words (begin int, "end" int, atomic int, "case" int);\n'
        'SELECT begin, "end", atomic, "case" FROM psqldiff_words;\nBEGIN;\nEND;\n',
        "outside CREATE FUNCTION these are ordinary words and statements",
    ),
    # -- comments, quotes, dollar quotes ------------------------------------------
    Case(
        "nested-block-comments",
        "/* /* */ */ SELECT 1; /* a /* b; */ c; */ SELECT 2;\nSELECT 3 /* x; /* y */ ; */;\n",
        "block comments nest",
    ),
    Case(
        "e-strings",
        "SELECT E'\\'';\nSELECT E'\\\\';\nSELECT e'a\\';b';\nSELECT E'\\\\\\'';\n",
        "E'' escapes: \\' and \\\\",
    ),
    Case(
        "unterminated-e-string-with-escaped-quotes",
        "SELECT E''' \\'; DROP TABLE keep; --\n",
        "the E'' string never ends (both quotes after the first are escaped): psql "
        "sends the rest of the file as one query and the server rejects it",
    ),
    Case(
        "unicode-escape-strings",
        "SELECT U&'d\\0061t\\+000061';\nSELECT U&'\\\\' ;\nSELECT U&'!0061' UESCAPE '!';\n"
        'SELECT 1 AS U&"d\\0061t";\n',
        "U&'' strings: a backslash is a Unicode escape, never a quote escape",
    ),
    Case(
        "dollar-quote-nesting",
        "SELECT $a$ $b$ ; $a$;\nSELECT $b$ $a$ ; $b$;\nSELECT $$ $a$ ; $$;\n"
        "SELECT $a$$$;$a$;\nSELECT 1 AS a$b$;\nSELECT 2;\n",
        "a dollar quote ends only at its own tag; a$b$ is an identifier",
    ),
    Case(
        "e-string-continued-on-the-next-line",
        "SELECT E'x'\n'\\'; SELECT 2; -- ';\nSELECT 3;\n",
        "the server continues an E'' string across a newline with its escapes; psql "
        "does not, and splits at the first semicolon",
    ),
    Case(
        "doubled-backslashes-everywhere",
        "SELECT 'a\\\\b', E'a\\\\b', $$a\\\\b$$, U&'a\\\\b', 1 AS \"a\\\\b\";\n"
        "-- c \\\\ c\n/* \\\\ */ SELECT 1;\n",
        "\\\\ in every quoting context and in comments",
    ),
    Case(
        "doubled-backslashes-with-scs-off",
        "SET standard_conforming_strings = off;\n"
        "SELECT 'a\\\\b', E'a\\\\b', $$a\\\\b$$, 1 AS \"a\\\\b\";\nSELECT 2;\n",
        "the same with the setting off",
    ),
    Case(
        "quoted-identifier-with-backslash",
        'SELECT 1 AS "a\\";\nSELECT 2;\n',
        "a backslash never escapes in a quoted identifier",
    ),
    # -- file shape ---------------------------------------------------------------
    Case("no-final-newline", "SELECT 1;\nSELECT 2", "the last statement has no ;"),
    Case(
        "crlf-line-ends",
        "SELECT 1;\r\nSELECT 2;\r\n",
        "Windows line ends between statements",
    ),
    Case(
        "trailing-comment-without-semicolon",
        "SELECT 1;\nSELECT 2 -- trailing",
        "the comment is part of the last statement",
    ),
    Case(
        "comment-after-the-last-semicolon",
        "SELECT 1; -- done\n",
        "a line comment after the last statement",
    ),
    Case(
        "empty-statements",
        ";;SELECT 1;;\n;\nSELECT 2;;",
        "psql skips empty statements",
    ),
    Case(
        "utf8-bom",
        "\ufeffSELECT 1;\n",
        "psql skips a UTF-8 byte order mark on the first line (the header goes after it)",
    ),
)

# Files psql sends differently in ways that only matter byte for byte: checked
# strictly (no comment or line-end allowance) by their own tests.
STRICT_CASES: tuple[Case, ...] = (
    Case(
        "leading-block-comment-is-sent",
        "/* c */ SELECT 1;\n",
        "psql sends a comment before a statement's first token with it",
    ),
    Case(
        "comment-only-tail-is-sent",
        "SELECT 1; /* done */\n",
        "psql sends a trailing block comment as an empty query",
    ),
    Case(
        "empty-statement-is-sent",
        "SELECT 1;;\n",
        "psql sends a lone ; as an empty query",
    ),
    Case(
        "empty-line-inside-a-statement-is-dropped",
        "SELECT 1,\n\n2;\n",
        "psql drops an empty line outside quotes before it reads the line",
    ),
    Case(
        "crlf-inside-a-literal",
        "SELECT 'a\r\nb';\r\n",
        "psql sends the carriage return inside the string literal",
    ),
)
