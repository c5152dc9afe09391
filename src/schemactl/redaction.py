"""Redaction of passwords from anything shown: one redaction for every message.

Stdlib only: the CLI redacts a crash report for commands that must not load
psycopg (--help, new, sql); schemactl.db.connection adds libpq's own reading.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, unquote

MASK = "****"

#
# One redaction, in two halves:
#
# * Here, with the stdlib only (the layering rule keeps psycopg inside
#   schemactl.db, and --help, `new`, `sql` and a crash report must not load it):
#   the *password spans* of a connection string, found by reading it the way
#   libpq does (fe-connect.c: conninfo_parse for key=value strings,
#   conninfo_uri_parse_options and conninfo_uri_parse_params for URLs) and,
#   where the string is malformed or ambiguous, wider than libpq would.
#   `mask_url` shows a string with its spans as ****; `known_secrets` turns the
#   spans (and PGPASSWORD) into the values to remove; `redact` removes them from
#   any text, then masks whatever a URL or password= in it still shows.
# * schemactl.db.connection, just before and after connecting: libpq's own parse
#   of the string (PQconninfoParse, through psycopg.conninfo.conninfo_to_dict)
#   adds what libpq itself reads as the password, and every value it cut out of a
#   password span, to the secrets the connect error is redacted with.
#
# No regular expression reads a connection string: a password may hold spaces,
# '@', ':', '/', quotes and backslashes, which is exactly where the old patterns
# cut it short (issue 9).

#: Connection keywords whose value is a secret (libpq: a password, and the
#: password of the client's SSL key).
SECRET_KEYWORDS: Final = ("password", "sslpassword")

# libpq's connection keywords (PostgreSQL 18, plus the JDBC `ssl`): a raw '&' or
# '@' inside a URL query counts as a separator only before one of them.
_LIBPQ_KEYWORDS: Final = frozenset(
    {
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "dbname",
        "fallback_application_name",
        "gssdelegation",
        "gssencmode",
        "gsslib",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "krbsrvname",
        "load_balance_hosts",
        "max_protocol_version",
        "min_protocol_version",
        "oauth_client_id",
        "oauth_client_secret",
        "oauth_issuer",
        "oauth_scope",
        "options",
        "passfile",
        "password",
        "port",
        "replication",
        "require_auth",
        "requirepeer",
        "service",
        "ssl",
        "ssl_max_protocol_version",
        "ssl_min_protocol_version",
        "sslcert",
        "sslcertmode",
        "sslcompression",
        "sslcrl",
        "sslcrldir",
        "sslkey",
        "sslkeylogfile",
        "sslmode",
        "sslnegotiation",
        "sslpassword",
        "sslrootcert",
        "sslsni",
        "target_session_attrs",
        "tcp_user_timeout",
        "user",
    }
)
# libpq splits key=value strings on C isspace(), ASCII only: a no-break or em
# space is part of a value.
_SPACES: Final = " \t\n\r\f\v"

Span = tuple[int, int]


def mask_url(conninfo: str) -> str:
    """Return a URL or conninfo string for display, every password in it ****.

    ``postgresql://app:****@db/app``, ``...?password=****``, ``host=db
    password=****`` (a quoted value is masked with its quotes). Where the string
    is malformed or ambiguous (an unencoded '@' or '/' in the password), all that
    may be the password is masked, e.g. ``postgresql://u:****@db/app`` for
    ``postgresql://u:p@ss@db/app``.
    """
    return _mask_spans(conninfo, _merged(_secret_spans(conninfo)))


def known_secrets(*texts: str | None) -> tuple[str, ...]:
    """Return the passwords in the given URLs or conninfo strings (or in command
    line arguments holding one) and in PGPASSWORD, in every spelling a message
    may use, to remove them from text."""
    found: list[str] = []
    for text in texts:
        if text:
            found += _written_secrets(text)
    from_env = os.environ.get("PGPASSWORD")
    if from_env:
        found += secret_forms(from_env)
    return tuple(dict.fromkeys(found))


def redact(text: str, secrets: Iterable[str], *, conninfo: str | None = None) -> str:
    """Remove every known secret from text, then mask any password a URL or a
    ``password=`` in it still shows (the last net).

    With ``conninfo``, text is a message about that connection string (libpq's
    parse errors echo it, or a piece of it): the string is shown masked, and a
    quoted token that libpq can only have cut out of a password is removed too.
    """
    fragments: list[str] = []
    if conninfo:
        text = text.replace(conninfo, mask_url(conninfo))
        fragments = secret_fragments(conninfo, _quoted_tokens(text))
    # Longest first: a secret that contains another is removed whole.
    for secret in sorted({*secrets, *fragments}, key=len, reverse=True):
        if len(secret) >= _ANYWHERE_LENGTH:
            text = text.replace(secret, MASK)
        elif any(char.isalnum() for char in secret):
            text = _replace_standalone(text, secret)
    return _mask_spans(text, _merged(_loose_spans(text)))


# A short secret (a misread piece of a password, such as the "a" libpq keeps of
# "a@b" in a URL) is removed only where it stands alone, not from inside words:
# "failed" stays readable and "'a'" becomes "'****'". One without a letter or
# digit (" ", "\\", "@@") cannot be told from the text around it and is left.
_ANYWHERE_LENGTH: Final = 6


def _replace_standalone(text: str, secret: str) -> str:
    before = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return re.sub(before + re.escape(secret) + after, MASK, text)


def secret_forms(value: str) -> list[str]:
    """Return value and the spellings a message may show it in: percent-encoded
    (URLs), backslash-escaped (conninfo, Python reprs), JSON-escaped."""
    if not value:
        return []
    forms = [
        value,
        quote(value, safe=""),
        quote(value),
        value.replace("\\", "\\\\").replace("'", "\\'"),
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
    ]
    return list(dict.fromkeys(form for form in forms if form))


def secret_fragments(conninfo: str, values: Iterable[str]) -> list[str]:
    """Return the values that libpq can only have read out of a password of
    conninfo, in their message spellings.

    An unencoded '@' or '/' in a URL's password makes libpq end the password
    early and read the rest as a host, port or database name, which its errors
    then echo (``failed to resolve host 'Xy@db'``). A value is such a fragment
    when one of its occurrences in conninfo crosses the edge of a password span,
    or when every occurrence lies inside one.
    """
    spans = _merged(_secret_spans(conninfo))
    found: list[str] = []
    for value in values:
        starts = _occurrences(conninfo, value)
        if not starts:
            continue
        ends = [(start, start + len(value)) for start in starts]
        inside = [any(s <= a and b <= e for s, e in spans) for a, b in ends]
        crossing = any(
            a < e and s < b and not (s <= a and b <= e)
            for a, b in ends
            for s, e in spans
        )
        if crossing or all(inside):
            found += secret_forms(value)
    return found


def _written_secrets(text: str) -> list[str]:
    """Return each password span of text as written and as libpq reads it."""
    found: list[str] = []
    for start, end in _secret_spans(text):
        written = text[start:end]
        # libpq trims the spaces around a URL's (decoded) value.
        for value in (
            written,
            _unescape_conninfo(written),
            unquote(written),
            unquote(written).strip(" "),
        ):
            found += secret_forms(value)
    return found


def _secret_spans(conninfo: str) -> list[Span]:
    """Return the ranges of a whole connection string that may hold a password."""
    spans: list[Span] = []
    for begin in _url_starts(conninfo):
        spans += _url_spans(conninfo, begin, len(conninfo))
    spans += _keyword_spans(conninfo, to_line_end=False)
    return spans


def _loose_spans(text: str) -> list[Span]:
    """Return the password ranges of URLs and conninfo strings quoted in free text
    (a message, a traceback), where a URL ends at a space or a quote."""
    spans: list[Span] = []
    for begin in _url_starts(text):
        end = begin
        while end < len(text) and text[end] not in _SPACES and text[end] not in "\"'":
            end += 1
        spans += _url_spans(text, begin, end)
    spans += _keyword_spans(text, to_line_end=True)
    return spans


def _url_starts(text: str) -> list[int]:
    """Return the index after each ``://`` (whatever the scheme: conservative)."""
    starts = []
    found = text.find("://")
    while found != -1:
        starts.append(found + 3)
        found = text.find("://", found + 3)
    return starts


def _url_spans(text: str, begin: int, end: int) -> list[Span]:
    """Return the password ranges of the URL whose authority starts at begin."""
    userinfo_ends = [
        at
        for at in (_libpq_userinfo_end(text, begin, end), _last_at(text, begin, end))
        if at is not None
    ]
    spans: list[Span] = []
    for at in userinfo_ends:
        colon = text.find(":", begin, at)
        if colon != -1 and colon + 1 < at:
            spans.append((colon + 1, at))
    for query_from in {begin, *userinfo_ends}:
        spans += _query_spans(text, query_from, end)
    return spans


def _libpq_userinfo_end(text: str, begin: int, end: int) -> int | None:
    # conninfo_uri_parse_options: "Look ahead for possible user credentials
    # designator": the first '@' before any '/'.
    at = text.find("@", begin, end)
    slash = text.find("/", begin, end)
    return at if at != -1 and (slash == -1 or at < slash) else None


def _last_at(text: str, begin: int, end: int) -> int | None:
    # The conservative reading: a password with an unencoded '@' or '/' runs to
    # the last '@' that is not inside a query parameter such as
    # ?application_name=me@host; to the very last '@' when what libpq would read
    # as host and port is no host list (`u:a/b?host=c@db`: port "a").
    at = text.rfind("@", begin, end)
    if _has_userinfo(text, begin, end) or _is_host_list(text, begin, end):
        while at != -1 and _in_query_value(text, begin, at):
            at = text.rfind("@", begin, at)
    return None if at == -1 else at


def _has_userinfo(text: str, begin: int, end: int) -> bool:
    return _libpq_userinfo_end(text, begin, end) is not None


def _is_host_list(text: str, begin: int, end: int) -> bool:
    """Tell whether the netloc libpq reads (no user info) is host[:port],..."""
    stops = [
        i for i in (text.find("/", begin, end), text.find("?", begin, end)) if i != -1
    ]
    netloc = text[begin : min(stops, default=end)]
    for item in netloc.split(","):
        if item.startswith("["):
            _, bracket, rest = item.partition("]")
            port = rest.removeprefix(":")
            if not bracket or (rest and not rest.startswith(":")):
                return False
        else:
            _, _, port = item.partition(":")
        if port and not port.isdigit():
            return False
    return True


def _in_query_value(text: str, begin: int, at: int) -> bool:
    # Inside a query when some '?' or '&' before it starts a keyword= parameter.
    separator = max(text.rfind("?", begin, at), text.rfind("&", begin, at))
    while separator != -1:
        key, equals, _ = text[separator + 1 : at].partition("=")
        if equals and unquote(key) in _LIBPQ_KEYWORDS:
            return True
        separator = max(
            text.rfind("?", begin, separator), text.rfind("&", begin, separator)
        )
    return False


def _query_spans(text: str, begin: int, end: int) -> list[Span]:
    # conninfo_uri_parse_params: key=value pairs split on '&' after the first '?'.
    spans: list[Span] = []
    separator = text.find("?", begin, end)
    while separator != -1:
        equals = text.find("=", separator + 1, end)
        if equals == -1:
            break
        key = text[separator + 1 : equals]
        if "&" not in key and unquote(key) in SECRET_KEYWORDS:
            amp = text.find("&", equals + 1, end)
            for value_end in (
                end if amp == -1 else amp,  # libpq's reading
                _query_value_end(text, equals + 1, end),
            ):
                if value_end > equals + 1:
                    spans.append((equals + 1, value_end))
        separator = text.find("&", separator + 1, end)
    return spans


def _query_value_end(text: str, start: int, end: int) -> int:
    # libpq ends a value at the next '&'; a raw '&' in a password would end it
    # early, so here only a '&' that starts another keyword= parameter does.
    amp = text.find("&", start, end)
    while amp != -1:
        key, equals, _ = text[amp + 1 : end].partition("=")
        if equals and unquote(key) in _LIBPQ_KEYWORDS:
            return amp
        amp = text.find("&", amp + 1, end)
    return end


def _keyword_spans(text: str, *, to_line_end: bool) -> list[Span]:
    # conninfo_parse: keyword, spaces, '=', spaces, then a value that is either
    # quoted ('...' with backslash escapes) or runs to the next space (backslash
    # escapes a space). Keywords are matched ignoring case (conservative).
    spans: list[Span] = []
    lowered = text.lower()
    for keyword in SECRET_KEYWORDS:
        found = lowered.find(keyword)
        while found != -1:
            if found == 0 or text[found - 1] in _SPACES or text[found - 1] == "=":
                equals = _skip_spaces(text, found + len(keyword))
                if equals < len(text) and text[equals] == "=":
                    start = _skip_spaces(text, equals + 1)
                    stop = _conninfo_value_end(text, start, to_line_end=to_line_end)
                    if stop > start:
                        spans.append((start, stop))
            found = lowered.find(keyword, found + 1)
    return spans


def _skip_spaces(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACES:
        index += 1
    return index


def _conninfo_value_end(text: str, start: int, *, to_line_end: bool) -> int:
    index = start
    if index < len(text) and text[index] == "'":
        index += 1
        while index < len(text):
            if text[index] == "\\":
                index += 2
            elif text[index] == "'":
                return index + 1
            elif to_line_end and text[index] == "\n":
                return index
            else:
                index += 1
        # Unterminated: libpq refuses the string; mask to its end.
        return len(text)
    while index < len(text) and text[index] not in _SPACES:
        index += 2 if text[index] == "\\" else 1
    index = min(index, len(text))
    if to_line_end:
        return index
    # In a connection string, words after an unquoted password that are not
    # `keyword=value` can only be the rest of a password with a space in it
    # (libpq refuses the string, and its error echoes them): mask them too.
    while True:
        word = _skip_spaces(text, index)
        word_end = word
        while word_end < len(text) and text[word_end] not in _SPACES:
            word_end += 1
        if word == word_end or "=" in text[word:word_end]:
            return index
        index = word_end


def _unescape_conninfo(written: str) -> str:
    """Return a conninfo value as libpq reads it: unquoted, backslashes undone."""
    body = written
    if body.startswith("'"):
        body = body[1:-1] if len(body) > 1 and body.endswith("'") else body[1:]
    chars: list[str] = []
    escaped = False
    for char in body:
        if char == "\\" and not escaped:
            escaped = True
            continue
        chars.append(char)
        escaped = False
    return "".join(chars)


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _mask_spans(text: str, spans: list[Span]) -> str:
    parts: list[str] = []
    shown = 0
    for start, end in spans:
        parts += [text[shown:start], MASK]
        shown = end
    parts.append(text[shown:])
    return "".join(parts)


def _occurrences(text: str, value: str) -> list[int]:
    if not value:
        return []
    starts = []
    found = text.find(value)
    while found != -1:
        starts.append(found)
        found = text.find(value, found + 1)
    return starts


# libpq quotes what it echoes with "..."; psycopg's own messages use '...'.
_QUOTED_RE: Final = re.compile(r"\"([^\"]*)\"|'([^']*)'")


def _quoted_tokens(message: str) -> list[str]:
    return [a or b for a, b in _QUOTED_RE.findall(message)]
