"""Split migration text into statements the way psql does, and map offsets to lines.

Stdlib only, and linear in the size of the file. This is psql's own lexer
(psqlscan.l) redone with regular expressions: what psql would send to the server
is what schemactl sends, statement by statement. A top-level semicolon ends a
statement, except inside parentheses or inside the BEGIN ... END body of
``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` (SQL-standard ``BEGIN ATOMIC``); the
data block after ``COPY ... FROM STDIN`` starts on the next line and runs up to a
line holding only ``\\.``; the rest of the COPY's own line is read after it.

Where psql would read a file differently from the SQL it holds, the file is
refused with the offending offset rather than guessed at: a psql meta-command (a
backslash outside quotes), a psql variable (``:name``, ``:'name'``,
``:"name"``), a change to ``standard_conforming_strings`` (psql lexes strings by
it; schemactl's sessions keep it on), an unquoted ``begin`` that psql would take
for the start of a function body, and a statement that starts after a COPY on its
line but does not end there.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace

# Character classes, written as "every character but these ASCII ones": the
# same sets as [A-Za-z_\x80-\U0010ffff] and its kin, which the re module takes
# 15 ms to compile (a range up to U+10FFFF); negated ASCII takes microseconds,
# and every command that touches the database imports this module.
# psql: letters, _ and every byte >= 0x80 start an identifier.
_IDENT_START = r"[^\x00-@\[-^`{-\x7f]"
_IDENT_START_OR_DIGIT = r"[^\x00-/:-@\[-^`{-\x7f]"
_IDENT_CONT = r"[^\x00-#%-/:-@\[-^`{-\x7f]"  # also digits and $
_VARIABLE_CHAR = _IDENT_START_OR_DIGIT

# One token at a time, tried in this order at the current offset. Strings,
# quoted identifiers, dollar quotes and block comments only have their opening
# matched here; their bodies are found by the patterns below. A number takes one
# letter glued to it, as psql's "junk" rules do (2begin holds no BEGIN).
_TOKEN_RE = re.compile(
    rf"""
    (?P<space>[ \t\n\r\f\v]+)
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<extended_string>[eE]')
  | (?P<bit_string>[bBxX]')
  | (?P<string>(?:[nN]|[uU]&)?')
  | (?P<quoted_identifier>(?:[uU]&)?")
  | (?P<dollar_quote>\$(?:{_IDENT_START}{_IDENT_START_OR_DIGIT}*)?\$)
  | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?{_IDENT_START}?)
  | (?P<word>{_IDENT_START}{_IDENT_CONT}*)
  | (?P<typecast>::)
  | (?P<variable>:(?:{_VARIABLE_CHAR}+|'{_VARIABLE_CHAR}+'
        |"{_VARIABLE_CHAR}+"|\{{\?{_VARIABLE_CHAR}+\}}))
  | (?P<semicolon>;)
  | (?P<open_paren>\()
  | (?P<close_paren>\))
  | (?P<backslash>\\)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# Once a statement's first words are known and it is neither a COPY nor a
# function head, later words no longer matter: runs of blanks, words, numbers
# and operators that cannot open a string, a comment or a quote, nor end the
# statement, are skipped in one match. Possessive quantifiers keep a word or a
# number whole: one directly before a quote (E'...', date'...') is left to the
# token pattern, which decides what kind of string follows.
_SKIP_RE = re.compile(
    rf"""(?:
        [ \t\n\r\f\v]++
      | {_IDENT_START}{_IDENT_CONT}*+(?!['"])
      | [0-9]++(?:\.[0-9]*+)?+(?:[eE][+-]?+[0-9]*+)?+(?!{_IDENT_START}|['"])
      | [,.+*<>=!~@#%^&|`?\[\]{{}}]
      | /(?!\*)
      | -(?!-)
    )++""",
    re.VERBOSE,
)
# Bodies, from just after the opening quote to just after the closing one.
# standard_conforming_strings is on: only E'' strings take backslash escapes.
# Possessive: a doubled quote is always an escaped quote (psql's longest match),
# never the end of one string and the start of the next.
_STRING_BODY = re.compile(r"(?:[^']++|'')*+'")
_EXTENDED_STRING_BODY = re.compile(r"(?:[^'\\]++|\\.|'')*+'", re.DOTALL)
_BIT_STRING_BODY = re.compile(r"[^']*'")
_QUOTED_IDENTIFIER_BODY = re.compile(r'(?:[^"]++|"")*+"')
_COMMENT_EDGE = re.compile(r"/\*|\*/")

_STRING_BODIES = {
    "string": _STRING_BODY,
    "extended_string": _EXTENDED_STRING_BODY,
    "bit_string": _BIT_STRING_BODY,
    "quoted_identifier": _QUOTED_IDENTIFIER_BODY,
}
_UNTERMINATED = {
    "string": "unterminated quoted string",
    "extended_string": "unterminated quoted string",
    "bit_string": "unterminated bit string literal",
    "quoted_identifier": "unterminated quoted identifier",
}
_SKIPPED = frozenset({"space", "line_comment"})
_FUNCTION_HEAD_WORDS: frozenset[str] = frozenset(
    {"create", "function", "procedure", "or", "replace"}
)
_KEPT_WORDS = 8
# Statements whose later words matter: for psql (COPY ... FROM STDIN, BEGIN
# ATOMIC bodies), for the rules in statements.py (CONCURRENTLY, transaction
# control) or for standard_conforming_strings. Others keep their first word only.
_WORDY_STATEMENTS: frozenset[str] = frozenset(
    {
        "abort",
        "alter",
        "begin",
        "cluster",
        "commit",
        "copy",
        "create",
        "discard",
        "drop",
        "end",
        "prepare",
        "reindex",
        "reset",
        "rollback",
        "set",
        "start",
        "vacuum",
    }
)
_COPY_END_LINE = "\\."
_SCS = "standard_conforming_strings"
_BLANKS = frozenset(" \t\n\r\f\v")
_EMPTY_AFTER_COPY_MESSAGE = (
    "the statement right after COPY ... FROM stdin data must start with a word: "
    "psql 15 reads the lines after an empty statement, or one that starts with "
    "'(', a quote, a number or '$', as more COPY data and drops them"
)
_COPY_LINE_MESSAGE = (
    "a statement that starts after COPY ... FROM stdin on the same line must end "
    "on that line (psql would continue it after the data block)"
)


class SplitError(Exception):
    """The text cannot be split as psql would: a lexical error, or something psql
    reads differently from the SQL (a meta-command, a variable, ...)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement: where it stands in the file's text, its first words, and
    the data block of a COPY ... FROM STDIN.

    The text is a slice of the file's, made when it is sent: a seed file of a
    million statements keeps one copy of its text, not two.
    """

    source: str = field(repr=False, compare=False)
    offset: int
    end: int
    # Lower-cased unquoted words from the start: up to 8, or only the first
    # where later ones cannot matter (see _WORDY_STATEMENTS).
    words: tuple[str, ...] = ()
    copy_data: str | None = field(default=None)

    @property
    def text(self) -> str:
        """Return the statement as sent to the server."""
        return self.source[self.offset : self.end]

    @property
    def is_copy_from_stdin(self) -> bool:
        """Return True for ``COPY ... FROM STDIN``, which carries a data block."""
        return self.copy_data is not None


def position_to_line_column(text: str, offset: int) -> tuple[int, int]:
    """Return the 1-based line and column of a 0-based character offset.

    Linear in offset: call it for the one statement a message is about, never
    for every statement of a file.
    """
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def line_at(text: str, line: int) -> str:
    """Return the 1-based line of text without its newline ('' when out of range)."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return ""
    if line < 1:
        return ""
    end = text.find("\n", start)
    return text[start:] if end == -1 else text[start:end]


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
    # Offset of a `begin` that opened a function body and must be followed by
    # ATOMIC; anything else means psql reads the name as a body it never ends.
    unconfirmed_begin: int | None = None

    def is_function_body_head(self) -> bool:
        """True for CREATE [OR REPLACE] FUNCTION|PROCEDURE, as psql checks it."""
        first, second, third, fourth = self.head
        return first == "c" and (
            second in ("f", "p")
            or (second == "o" and third == "r" and fourth in ("f", "p"))
        )

    def see_word(self, word: str, offset: int) -> None:
        # Interned: a large file repeats the same few words many times over.
        lowered = sys.intern(word.lower())
        if self.unconfirmed_begin is not None:
            self.confirm_begin(atomic=lowered == "atomic")
        if len(self.words) < _KEPT_WORDS:
            self.words.append(lowered)
        if self.last_word == "from" and lowered == "stdin":
            self.reads_stdin = True
        self.last_word = lowered
        if lowered == _SCS:
            _refuse_scs(offset)
        if lowered in _FUNCTION_HEAD_WORDS and self.word_count < len(self.head):
            self.head[self.word_count] = lowered[0]
        self.word_count += 1
        if self.paren_depth != 0 or not self.is_function_body_head():
            return
        if lowered == "begin":
            self.begin_depth += 1
            self.unconfirmed_begin = offset
        elif lowered == "case" and self.begin_depth > 0:
            self.begin_depth += 1
        elif lowered == "end" and self.begin_depth > 0:
            self.begin_depth -= 1

    def confirm_begin(self, *, atomic: bool) -> None:
        """Check the token after a counted `begin`: only ATOMIC opens a body."""
        offset = self.unconfirmed_begin
        self.unconfirmed_begin = None
        if not atomic and offset is not None:
            raise SplitError(
                "psql reads this unquoted 'begin' as the start of a function body "
                "(BEGIN ATOMIC) and would send the rest of the file as one "
                'statement; write it as a quoted identifier ("begin")',
                offset,
            )

    def ends_at_semicolon(self) -> bool:
        return self.paren_depth == 0 and self.begin_depth == 0

    def words_matter(self) -> bool:
        """False once later words cannot change how the statement is read, nor
        what the rules about statements look at (statements.py)."""
        words = self.words
        if not words:
            return True
        if words[0] not in _WORDY_STATEMENTS:
            return False  # INSERT, UPDATE, SELECT, ...: the first word says it all
        return (
            len(words) < _KEPT_WORDS
            or words[0] == "copy"
            or self.is_function_body_head()
        )


def _refuse_scs(offset: int) -> None:
    raise SplitError(
        "changing standard_conforming_strings is not supported: psql reads every "
        "later string by it (a backslash could end a string early and start a "
        "meta-command); schemactl keeps it on",
        offset,
    )


def split_statements(text: str) -> list[Statement]:
    """Split text into statements, as ``psql -f`` would send them.

    Raises:
        SplitError: on a lexical error (an unterminated quote or comment), or
            where psql would read the text differently (see the module docstring),
            with the offending offset.
    """
    return _Splitter(text).run()


class _Splitter:
    """One pass over the text; COPY data blocks make it jump (see `_end_copy`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.statements: list[Statement] = []
        self.state = _StatementState()
        # Scanning stops at `limit`, then resumes at `resume`: after a COPY,
        # the rest of its line is read first, then the text after the data.
        self.limit = len(text)
        self.resume: int | None = None
        # Until the next statement starts: psql 15 reads the lines after an
        # empty statement here as more COPY data (a psql quirk).
        self.after_copy_data = False
        # One tuple per distinct word list: a seed file of a million INSERTs
        # holds one ("insert",), not a million of them.
        self._word_lists: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _shared(self, words: tuple[str, ...]) -> tuple[str, ...]:
        return self._word_lists.setdefault(words, words)

    def run(self) -> list[Statement]:
        text = self.text
        pos = 0
        skip = _SKIP_RE.match
        while True:
            while pos < self.limit:
                if not self.state.words_matter():
                    skipped = skip(text, pos, self.limit)
                    if skipped is not None:
                        pos = skipped.end()
                        continue
                pos = self._token(pos)
            if self.resume is None:
                break
            self._end_of_copy_line()
            pos, self.resume, self.limit = self.resume, None, len(text)
        state = self.state
        if state.unconfirmed_begin is not None:
            state.confirm_begin(atomic=False)
        if state.start is not None:
            statement = self._make_statement(len(text))
            if state.reads_stdin and statement.words[:1] == ("copy",):
                # At the end of the file psql sends it and has no data to give.
                statement = replace(statement, copy_data="")
            self.statements.append(statement)
        return self.statements

    def _token(self, pos: int) -> int:
        """Consume the token at pos; return where the next one starts."""
        text = self.text
        limit = self.limit
        match = _TOKEN_RE.match(text, pos, limit)
        assert match is not None  # `other` matches any character
        kind = match.lastgroup
        end = match.end()
        if kind in _SKIPPED:
            return end
        if kind == "block_comment":
            return self._block_comment_end(pos)
        state = self.state
        if kind == "semicolon":
            if state.start is None:
                if self.after_copy_data:
                    raise SplitError(_EMPTY_AFTER_COPY_MESSAGE, pos)
                return end  # an empty statement, as psql skips it
            if state.unconfirmed_begin is not None:
                state.confirm_begin(atomic=False)
            if state.ends_at_semicolon():
                return self._end_statement(pos)
            return end
        if kind == "backslash":
            raise SplitError(
                "psql meta-commands (a backslash outside quotes) are not allowed "
                "in migration files",
                pos,
            )
        if kind == "variable" and not match.group()[1:].isdigit():
            raise SplitError(
                f"psql would substitute the variable {match.group()!r} here; "
                "variables are not allowed in migration files (for an array slice "
                "such as a[lo:hi], put a space after the colon; a[1:2] is fine: "
                "psql leaves :2 alone, no variable is named 2)",
                pos,
            )
        if state.start is None:
            if self.after_copy_data and kind != "word":
                raise SplitError(_EMPTY_AFTER_COPY_MESSAGE, pos)
            state.start = pos
            self.after_copy_data = False
        if kind == "word":
            state.see_word(match.group(), pos)
            return end
        if state.unconfirmed_begin is not None:
            state.confirm_begin(atomic=False)
        if kind == "open_paren":
            state.paren_depth += 1
        elif kind == "close_paren":
            state.paren_depth = max(0, state.paren_depth - 1)
        elif kind == "dollar_quote":
            close = text.find(match.group(), end, limit)
            if close == -1:
                raise self._unterminated("unterminated dollar-quoted string", pos)
            return close + end - pos
        elif kind in _STRING_BODIES:
            body = _STRING_BODIES[kind].match(text, end, limit)
            if body is None:
                raise self._unterminated(_UNTERMINATED[kind], pos)
            if text[end : body.end() - 1].lower() == _SCS:
                # set_config('standard_conforming_strings', ...), or SET with
                # the name quoted. Other spellings (built by dynamic SQL) are
                # caught when they run: see db/session.py.
                _refuse_scs(pos)
            return body.end()
        return end

    def _block_comment_end(self, start: int) -> int:
        """Return the offset after the block comment at start (comments nest)."""
        depth = 0
        for edge in _COMMENT_EDGE.finditer(self.text, start, self.limit):
            depth += 1 if edge.group() == "/*" else -1
            if depth == 0:
                return edge.end()
        raise self._unterminated("unterminated /* comment", start)

    def _unterminated(self, message: str, start: int) -> SplitError:
        """A quote or comment not closed before the limit: the end of the file,
        or the end of a COPY's line (psql would go on after the data block)."""
        if self.resume is not None:
            return SplitError(_COPY_LINE_MESSAGE, start)
        return SplitError(message, start)

    def _make_statement(self, end: int) -> Statement:
        state = self.state
        assert state.start is not None
        text = self.text
        # Trailing blanks are not sent (psql's blanks: a no-break space is not
        # one, it would be part of a word).
        while end > state.start and text[end - 1] in _BLANKS:
            end -= 1
        return Statement(
            source=text,
            offset=state.start,
            end=end,
            words=self._shared(tuple(state.words)),
        )

    def _end_statement(self, semicolon: int) -> int:
        """Record the statement ended by the semicolon; return where to go on."""
        statement = self._make_statement(semicolon)
        reads_stdin = self.state.reads_stdin and statement.words[:1] == ("copy",)
        self.state = _StatementState()
        if not reads_stdin:
            self.statements.append(statement)
            return semicolon + 1
        return self._end_copy(statement, semicolon)

    def _end_copy(self, statement: Statement, semicolon: int) -> int:
        """Attach the data block to a COPY ... FROM STDIN and plan the jump.

        psql sends the COPY at its semicolon; the data comes from the next line
        of the file on (or from after the previous data block, for a second
        COPY on the same line), then psql goes on with the rest of the COPY's
        line, then with the text after the data.
        """
        text = self.text
        if self.resume is None:
            line_end = text.find("\n", semicolon)
            data_start = len(text) if line_end == -1 else line_end + 1
            self.limit = len(text) if line_end == -1 else line_end
        else:
            data_start = self.resume
        data, self.resume = _read_copy_data(text, data_start)
        self.after_copy_data = True
        self.statements.append(replace(statement, copy_data=data))
        return semicolon + 1

    def _end_of_copy_line(self) -> None:
        """The rest of a COPY's line is read: a statement still open there would
        go on after the data block in psql; refuse it rather than join them."""
        if self.state.start is not None:
            raise SplitError(_COPY_LINE_MESSAGE, self.state.start)


def _read_copy_data(text: str, data_start: int) -> tuple[str, int]:
    """Return the data block that starts at data_start and where text resumes.

    It ends before a line holding only ``\\.`` or at the end of the text, like psql.
    """
    position = data_start
    while position < len(text):
        line_end = text.find("\n", position)
        if line_end == -1:
            line_end = len(text)
        # Only a whole line ends the data: psql sends a last "\\." without a
        # newline as data (and the server then refuses it).
        line = text[position:line_end]
        if line.removesuffix("\r") == _COPY_END_LINE and line_end < len(text):
            return text[data_start:position], line_end + 1
        position = line_end + 1
    return text[data_start:], len(text)
