"""Parse ``-- schemactl:`` directives from the comment header of a migration file.

Stdlib only. Unlike dbmate, which drops unknown keys silently, an unknown or
misplaced directive is an error with its line, so a typo never changes behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NO_TRANSACTION = "no-transaction"
KNOWN_DIRECTIVES: frozenset[str] = frozenset({NO_TRANSACTION})

_DIRECTIVE_RE = re.compile(r"^\s*--\s*schemactl\s*:\s*(?P<body>.*?)\s*$")


class DirectiveError(Exception):
    """A directive is unknown or stands after the first statement."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Directives:
    """What the header of a file asks for."""

    no_transaction: bool = False


def parse_directives(text: str, first_statement_line: int | None) -> Directives:
    """Read the directives of a file whose first statement starts on the given line.

    Raises:
        DirectiveError: for an unknown directive, or one after the first statement.
    """
    found: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        match = _DIRECTIVE_RE.match(line)
        if match is None:
            continue
        body = match.group("body")
        if first_statement_line is not None and number >= first_statement_line:
            raise DirectiveError(
                f"directive 'schemactl:{body}' must come before the first statement",
                number,
            )
        if body not in KNOWN_DIRECTIVES:
            known = ", ".join(sorted(KNOWN_DIRECTIVES))
            raise DirectiveError(
                f"unknown directive 'schemactl:{body}' (known: {known})", number
            )
        found.add(body)
    return Directives(no_transaction=NO_TRANSACTION in found)
