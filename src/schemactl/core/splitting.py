"""Split migration text into statements the way psql does, and map offsets to lines.

Imports only the stdlib and pglast. The tokens come from pglast's scanner, which is
PostgreSQL's own lexer (dollar quotes, nested comments, E'' strings, quoted
identifiers). Statement boundaries follow psql's rules (psqlscan.l): a top-level
semicolon ends a statement, except inside the BEGIN ... END body of
``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` (SQL-standard ``BEGIN ATOMIC``), and the
data block after ``COPY ... FROM STDIN`` runs up to a line holding only ``\\.``.
Splitting like psql is what keeps ``psql -f`` and schemactl running the same
statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pglast.parser import Token


_COMMENT_TOKENS: frozenset[str] = frozenset({"SQL_COMMENT", "C_COMMENT"})
_SEMICOLON = "ASCII_59"
_OPEN_PAREN = "ASCII_40"
_CLOSE_PAREN = "ASCII_41"
_BACKSLASH = "ASCII_92"
# psql treats any unquoted word as an identifier when it tracks BEGIN ... END: in
# the server's scanner that is a keyword token or an IDENT that is not quoted.
_NOT_A_KEYWORD = "NO_KEYWORD"
_IDENT = "IDENT"
_FUNCTION_HEAD_WORDS: frozenset[str] = frozenset(
    {"create", "function", "procedure", "or", "replace"}
)
_KEPT_WORDS = 8
_COPY_END_LINE = "\\."


class SplitError(Exception):
    """The text cannot be split: a lexical error or a psql meta-command."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: its text as sent to the server and where it starts in the file."""

    text: str
    offset: int
    words: tuple[str, ...] = ()
    copy_data: str | None = field(default=None)

    @property
    def is_copy_from_stdin(self) -> bool:
        """Return True for ``COPY ... FROM STDIN``, which carries a data block."""
        return self.copy_data is not None


def position_to_line_column(text: str, offset: int) -> tuple[int, int]:
    """Return the 1-based line and column of a 0-based character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def line_at(text: str, line: int) -> str:
    """Return the 1-based line of text without its newline ('' when out of range)."""
    lines = text.split("\n")
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def split_statements(text: str) -> list[Statement]:
    """Split text into statements, as ``psql -f`` would send them.

    Raises:
        SplitError: on a lexical error (an unterminated quote or comment) or a psql
            meta-command (a backslash outside quotes), with the offending offset.
    """
    statements: list[Statement] = []
    position = 0
    while position < len(text):
        found, position = _split_chunk(text, position)
        statements.extend(found)
    return statements


def _scan(text: str, start: int) -> list[Token | _ErrorToken]:
    """Scan text[start:], keeping the tokens before a lexical error if any.

    A lexical error after a ``COPY ... FROM STDIN`` is usually its data block (data
    is not SQL), so the caller gets the valid prefix and decides.
    """
    # pglast is imported on first use: status and verify never tokenize SQL and
    # should not pay for loading the parser at start-up.
    from pglast import parser

    chunk = text[start:]
    tokens: list[Token | _ErrorToken]
    try:
        tokens = list(parser.scan(chunk))
    except parser.ParseError as exc:
        error_index = _error_index(exc)
        tokens = list(parser.scan(chunk[:error_index])) if error_index else []
        tokens.append(_ErrorToken(error_index, str(exc.args[0])))
    return tokens


def _error_index(exc: Exception) -> int:
    index = exc.args[1] if len(exc.args) > 1 else 0
    return index if isinstance(index, int) else 0


@dataclass(frozen=True, slots=True)
class _ErrorToken:
    """Marks where the scanner failed; only reached when no COPY data explains it."""

    start: int
    message: str
    end: int = -1
    name: str = "ERROR"


@dataclass(slots=True)
class _StatementState:
    """psql's per-statement lexer state (psqlscan.l: paren_depth, begin_depth)."""

    start: int | None = None
    paren_depth: int = 0
    begin_depth: int = 0
    word_count: int = 0
    head: list[str] = field(default_factory=lambda: ["", "", "", ""])
    words: list[str] = field(default_factory=list)
    last_word: str = ""
    reads_stdin: bool = False

    def is_function_body_head(self) -> bool:
        """True for CREATE [OR REPLACE] FUNCTION|PROCEDURE, as psql checks it."""
        first, second, third, fourth = self.head
        return first == "c" and (
            second in ("f", "p")
            or (second == "o" and third == "r" and fourth in ("f", "p"))
        )

    def see_word(self, word: str) -> None:
        lowered = word.lower()
        if len(self.words) < _KEPT_WORDS:
            self.words.append(lowered)
        if self.last_word == "from" and lowered == "stdin":
            self.reads_stdin = True
        self.last_word = lowered
        if lowered in _FUNCTION_HEAD_WORDS and self.word_count < len(self.head):
            self.head[self.word_count] = lowered[0]
        self.word_count += 1
        if not self.is_function_body_head() or self.paren_depth != 0:
            return
        if lowered == "begin" or (lowered == "case" and self.begin_depth > 0):
            self.begin_depth += 1
        elif lowered == "end" and self.begin_depth > 0:
            self.begin_depth -= 1

    def ends_at_semicolon(self) -> bool:
        return self.paren_depth == 0 and self.begin_depth == 0


def _split_chunk(text: str, base: int) -> tuple[list[Statement], int]:
    """Split from base until the end of text or the end of a COPY data block."""
    statements: list[Statement] = []
    state = _StatementState()
    for token in _scan(text, base):
        start = base + token.start
        if isinstance(token, _ErrorToken):
            raise SplitError(token.message, start)
        if token.name in _COMMENT_TOKENS:
            continue
        if token.name == _BACKSLASH:
            raise SplitError(
                "psql meta-commands (a backslash outside quotes) are not allowed "
                "in migration files",
                start,
            )
        if token.name == _SEMICOLON and state.start is None:
            continue  # an empty statement, as psql skips it
        if state.start is None:
            state.start = start
        if token.name == _SEMICOLON and state.ends_at_semicolon():
            statement = _make_statement(text, state, end=start)
            if statement.words[:1] == ("copy",) and state.reads_stdin:
                data, resume = _read_copy_data(text, start + 1)
                statements.append(
                    Statement(statement.text, statement.offset, statement.words, data)
                )
                return statements, resume
            statements.append(statement)
            state = _StatementState()
            continue
        _track_token(state, text[start : base + token.end + 1], token)
    if state.start is not None:
        statements.append(_make_statement(text, state, end=len(text)))
    return statements, len(text)


def _track_token(state: _StatementState, token_text: str, token: Token) -> None:
    if token.name == _OPEN_PAREN:
        state.paren_depth += 1
    elif token.name == _CLOSE_PAREN:
        state.paren_depth = max(0, state.paren_depth - 1)
    elif token.kind != _NOT_A_KEYWORD or (
        token.name == _IDENT and not token_text.startswith('"')
    ):
        state.see_word(token_text)


def _make_statement(text: str, state: _StatementState, *, end: int) -> Statement:
    assert state.start is not None
    return Statement(
        text=text[state.start : end].rstrip(),
        offset=state.start,
        words=tuple(state.words),
    )


def _read_copy_data(text: str, after_semicolon: int) -> tuple[str, int]:
    """Return the data block that starts on the line after the COPY statement.

    It ends before a line holding only ``\\.`` or at the end of the text, like psql.
    Returns the data and the offset where splitting resumes.
    """
    newline = text.find("\n", after_semicolon)
    if newline == -1:
        return "", len(text)
    data_start = newline + 1
    position = data_start
    while position < len(text):
        line_end = text.find("\n", position)
        if line_end == -1:
            line_end = len(text)
        if text[position:line_end] == _COPY_END_LINE:
            return text[data_start:position], min(line_end + 1, len(text))
        position = line_end + 1
    return text[data_start:], len(text)
