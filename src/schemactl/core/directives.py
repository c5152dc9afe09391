"""Parse ``-- schemactl:`` directives from the comment header of a migration file.

Stdlib only. The header is the leading run of blank lines and ``--`` comment
lines; directives live there and nowhere else. Unlike dbmate, which drops unknown
keys silently, an unknown directive is an error with its line, so a typo never
changes behaviour. (validation.py reports a directive found after the header.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

NO_TRANSACTION = "no-transaction"
# A file with no statement is refused unless it says it means to be empty.
ALLOW_EMPTY = "allow-empty"
KNOWN_DIRECTIVES: frozenset[str] = frozenset({NO_TRANSACTION, ALLOW_EMPTY})

# Matched in any case, so `-- SCHEMACTL:no-transaction` is reported, not ignored.
DIRECTIVE_RE = re.compile(
    r"^\s*--\s*(?P<prefix>schemactl)\s*:\s*(?P<body>.*?)\s*$", re.IGNORECASE
)


class DirectiveError(Exception):
    """A directive is unknown or stands after the header."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Directives:
    """What the header of a file asks for."""

    no_transaction: bool = False
    header_lines: int = 0
    allow_empty: bool = False


def parse_directives(text: str) -> Directives:
    """Read the directives in the header (leading blank and ``--`` lines) of text.

    Raises:
        DirectiveError: for an unknown directive.
    """
    if not text.lstrip(" \t\r\n").startswith("--"):
        return Directives()  # no comment header: nothing to read
    found: set[str] = set()
    header_lines = 0
    for number, line in enumerate(_leading_lines(text), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        header_lines = number
        match = DIRECTIVE_RE.match(line)
        if match is None:
            continue
        body = match.group("body")
        if match.group("prefix") != "schemactl" or body not in KNOWN_DIRECTIVES:
            known = ", ".join(sorted(KNOWN_DIRECTIVES))
            written = f"{match.group('prefix')}:{body}"
            raise DirectiveError(
                f"unknown directive '{written}' (known, in lower case: "
                f"schemactl:{known})",
                number,
            )
        found.add(body)
    return Directives(
        no_transaction=NO_TRANSACTION in found,
        header_lines=header_lines,
        allow_empty=ALLOW_EMPTY in found,
    )


def _leading_lines(text: str) -> Iterator[str]:
    """Yield lines one at a time: the header is short, the file may be long."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end == -1:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1
