r"""Differential test against real psql (issue 9): schemactl runs what psql runs.

The same file goes to schemactl's check (``parse_source``, what migrate and sql run
before anything) and to ``psql -X -f FILE`` against a throwaway database.

The oracle is the wire. psql connects to a recording proxy on 127.0.0.1 that
forwards every byte to the real server and keeps what psql sends (each Query
message, the CopyData of COPY FROM STDIN) and what the server answers (copy mode
entered, errors, empty query, CommandComplete). psql's ``-L`` log was tried first:
it brackets each query with ``********* QUERY **********`` lines, but it also logs
the results between them and never the COPY data, so its boundaries are
ambiguous; the wire is exact.

Each query psql sent is then found in the file, in order (``_align``): what lies
between two queries may only be whitespace, ``--`` comments and meta-commands,
and inside a query psql may only have dropped empty lines and meta-commands at
the end of a line, unescaped ``\;``/``\:``, substituted a variable (every name
after a colon in the file is set with ``-v`` to a value of its own; DBNAME, USER,
HOST and PORT are set by psql) or replaced ``:{?name}``. That gives the exact spot
of each of these. When a file does not align, what psql printed (``\echo MARK``
lines, psql's own ``error:`` lines) and the variable values it sent give
candidate spots instead.

What counts as agreement:

- Where psql ran a meta-command, substituted a variable or unescaped ``\;``,
  schemactl refuses the file with a MigrationDirError at that backslash or colon
  (the first of them), or earlier for one of the reasons below.
- Otherwise schemactl returns the statements psql sent, in order, each equal to
  psql's text modulo whitespace at the ends and the ``;`` psql sends with it, and
  for COPY FROM STDIN the data psql sent (less the ``\.`` line it sends too). By
  default, comments before a statement's first token, comment-only and empty
  queries, empty lines and CRLF/LF are not compared; each has a strict test.
- schemactl may refuse a file psql sends when psql's run bears the refusal out:
  psql sent the rest of the file, still inside a quote or comment, and the server
  rejected it (an ``unterminated ...`` refusal); or the server's lexer reports the
  same error; or the refusal names what makes psql read the file unlike its SQL
  and the run shows it: a change of standard_conforming_strings, a BEGIN psql
  counted as a function body, a statement psql continued after COPY data, a
  statement right after COPY data that makes psql skip lines (_skips_after_copy).
- When the server refused a COPY FROM STDIN, a real run stops at that error
  (psql 15.20 then skips the data; older ones ran it as SQL): the file is
  compared up to that statement.

Files are run with ``-v ON_ERROR_STOP=0`` (every statement is seen) and
``ON_ERROR_ROLLBACK=on`` (an error inside a transaction the file opened does not
abort the statements after it); psql's savepoint queries are left out. The
session starts with ``standard_conforming_strings`` on (PGOPTIONS), whatever a
role or database default on the shared server says: psql lexes by it from the
first line, and schemactl assumes it on. Only ``\echo`` ever runs: the oracle
refuses to run a file naming another meta-command that could act outside psql.

The generator composes fragments (strings of each kind, comments, dollar quotes,
words, variables, ``\echo`` lines, semicolons, newlines, COPY blocks, settings of
standard_conforming_strings, CRLF) into files. ``make test`` runs it briefly;
``make psql-fuzz`` (bench/psql_fuzz.py) runs it long and prints every
disagreement, minimised.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import zip_longest
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import make_conninfo

from schemactl.core.splitting import Statement, position_to_line_column
from schemactl.core.validation import ParsedSource, parse_source
from schemactl.errors import MigrationDirError
from tests.unit.psql_corpus import CASES, STRICT_CASES, Case

HEADER = "-- schemactl:no-transaction\n"
FILE_NAME = "psqldiff.sql"
DB_PREFIX = "schemactl_psqldiff_"
PSQL_TIMEOUT = 60.0
SETUP_SQL = (
    "CREATE TABLE t (a text, b text)",
    "CREATE TABLE keep ()",
    "CREATE TABLE begin (a int)",
)
# Variables set on psql's command line; each value is a marker that never occurs
# in a file unless psql put it there.
CUSTOM_VARIABLES: tuple[str, ...] = ("foo", "bar", *(f"v{n}" for n in range(12)))
_INTERNAL_QUERIES = frozenset(
    {
        "SAVEPOINT pg_psql_temporary_savepoint",
        "RELEASE pg_psql_temporary_savepoint",
        "ROLLBACK TO pg_psql_temporary_savepoint",
    }
)
_MARK_RE = re.compile(r"\bMARK\w*")
# Every name after a colon in a file is set too (psql leaves an unset one alone),
# except psql's own variables; a name starting with a digit (a[1:2]) is not.
_REFERENCED_NAME_RE = re.compile(
    r":['\"]?([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)"
)
_PSQL_OWN_VARIABLES = frozenset(
    {
        "AUTOCOMMIT",
        "COMP_KEYWORD_CASE",
        "DBNAME",
        "ECHO",
        "ECHO_HIDDEN",
        "ENCODING",
        "ERROR",
        "FETCH_COUNT",
        "HIDE_TABLEAM",
        "HIDE_TOAST_COMPRESSION",
        "HISTCONTROL",
        "HISTFILE",
        "HISTSIZE",
        "HOST",
        "IGNOREEOF",
        "LASTOID",
        "LAST_ERROR_MESSAGE",
        "LAST_ERROR_SQLSTATE",
        "ON_ERROR_ROLLBACK",
        "ON_ERROR_STOP",
        "PORT",
        "PROMPT1",
        "PROMPT2",
        "PROMPT3",
        "QUIET",
        "ROW_COUNT",
        "SERVER_VERSION_NAME",
        "SERVER_VERSION_NUM",
        "SHOW_ALL_RESULTS",
        "SHOW_CONTEXT",
        "SINGLELINE",
        "SINGLESTEP",
        "SQLSTATE",
        "USER",
        "VERBOSITY",
        "VERSION",
        "VERSION_NAME",
        "VERSION_NUM",
    }
)
_PSQL_ERROR_RE = re.compile(r"^psql:[^:\n]*:(\d+): error: (.*)$", re.MULTILINE)
# Meta-commands that reach outside psql or change how it reads the rest. A file
# holding one of these names after a backslash (anywhere, even in quotes) is not
# run: the oracle only ever runs \echo for real.
_FORBIDDEN_META = re.compile(
    r"\\!|\\(?:c|cd|connect|conninfo|copy|e|edit|ef|ev|g\w*|i|include|ir|"
    r"include_relative|if|elif|else|endif|lo_\w+|o|out|password|prompt|pset|q|"
    r"quit|s|set|setenv|unset|w|write|watch|getenv|bind|sf|sv|T|H|html)"
    r"(?=[\s\\]|$)"
)


# --------------------------------------------------------------------------------
# psql versions
# --------------------------------------------------------------------------------

# schemactl's splitter follows psqlscan.l as of psql 15; `make test-matrix` runs
# this module with each server's own psql (14 to 18). What an older or newer psql
# does differently, as far as the oracle is concerned, is written down here and
# nowhere else; every other expectation is the same for every version.


def psql_major(psql: str | None) -> int | None:
    """The major version of this psql (``psql (PostgreSQL) 14.22``), or None."""
    if psql is None:
        return None
    output = subprocess.run(
        [psql, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    match = re.search(r"\) (\d+)", output)
    assert match, f"cannot read the version of {psql}: {output!r}"
    return int(match.group(1))


def sends_end_of_copy_line(major: int) -> bool:
    """psql 15 to 17 (15.19, 16.15, 17.11) send the ``\\.`` line that ends inline
    COPY data as data, before CopyDone; psql 14 (14.22) and 18 (18.6) end the data
    with CopyDone alone. The server stops at that line: the same rows either way."""
    return 15 <= major <= 17


def keeps_dash_comments(major: int) -> bool:
    """psql 15 and newer send ``--`` comments inside a query to the server; psql
    14 and older drop each one (up to its line end, which they keep)."""
    return major >= 15


PSQL = shutil.which("psql")
PSQL_MAJOR = psql_major(PSQL)


# --------------------------------------------------------------------------------
# The oracle: psql behind a recording proxy
# --------------------------------------------------------------------------------


@dataclass
class SentQuery:
    """One Query message psql sent, and what the server answered."""

    text: str
    copy_in: bool = False
    copy_data: bytes = b""
    errors: list[dict[str, str]] = field(default_factory=list)
    completions: int = 0
    empty: bool = False  # the server answered EmptyQueryResponse
    standard_conforming_strings: str | None = None

    def error_messages(self) -> list[str]:
        return [error.get("M", "") for error in self.errors]


@dataclass
class PsqlRun:
    """What one ``psql -f`` run sent and printed."""

    queries: list[SentQuery]
    stdout: str
    stderr: str
    variables: dict[str, str]
    initial_scs: str | None
    psql_major: int

    @property
    def changed_scs(self) -> bool:
        return any(
            q.standard_conforming_strings not in (None, self.initial_scs)
            for q in self.queries
        )


class OracleError(Exception):
    """psql or the proxy did not run as expected (not a disagreement)."""


@dataclass(frozen=True)
class Server:
    """Where the real server listens, from a conninfo dict."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    @classmethod
    def from_conninfo(cls, params: Mapping[str, Any]) -> Server:
        return cls(
            host=str(params.get("host") or "127.0.0.1"),
            port=int(params.get("port") or 5432),
            user=str(params.get("user") or "postgres"),
            password=params.get("password"),
            dbname=str(params.get("dbname") or "postgres"),
        )

    def conninfo(self, dbname: str) -> str:
        params: dict[str, str | int] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
        }
        if self.password:
            params["password"] = self.password
        return make_conninfo("", **params, dbname=dbname)

    def connect_socket(self) -> socket.socket:
        if self.host.startswith("/"):
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(f"{self.host}/.s.PGSQL.{self.port}")
            return unix
        return socket.create_connection((self.host, self.port), timeout=PSQL_TIMEOUT)


@contextmanager
def throwaway_database(server: Server) -> Iterator[str]:
    """Create ``schemactl_psqldiff_<uuid>`` with the tables the files use; drop it."""
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.conninfo(server.dbname), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(server.conninfo(name), autocommit=True) as conn:
            for statement in SETUP_SQL:
                conn.execute(statement)
        yield name
    finally:
        with psycopg.connect(server.conninfo(server.dbname), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


class _MessageReader:
    """Cuts one direction of a PostgreSQL protocol stream into messages."""

    def __init__(self, *, startup: bool) -> None:
        self.buffer = bytearray()
        self.startup = startup

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        self.buffer += chunk
        messages: list[tuple[str, bytes]] = []
        while True:
            if self.startup:
                if len(self.buffer) < 4:
                    break
                (length,) = struct.unpack("!I", self.buffer[:4])
                if len(self.buffer) < length:
                    break
                messages.append(("startup", bytes(self.buffer[4:length])))
                del self.buffer[:length]
                self.startup = False
                continue
            if len(self.buffer) < 5:
                break
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                break
            messages.append((chr(self.buffer[0]), bytes(self.buffer[5 : 1 + length])))
            del self.buffer[: 1 + length]
        return messages


def _error_fields(payload: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


@dataclass
class PsqlDiffer:
    """Runs files through psql (behind the proxy) and through schemactl."""

    psql: str
    server: Server
    dbname: str
    workdir: Path

    @cached_property
    def psql_major(self) -> int:
        major = psql_major(self.psql)
        assert major is not None
        return major

    def run_psql(self, data: bytes) -> PsqlRun:
        """Run ``psql -f`` on data and return what it sent and printed."""
        text = data.decode("utf-8", "replace")
        forbidden = _FORBIDDEN_META.search(text)
        if forbidden:
            raise OracleError(f"refusing to run a file with {forbidden.group()!r}")
        path = self.workdir / FILE_NAME
        path.write_bytes(data)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        # A dot cannot be in a name: no value is a prefix of another one.
        variables = {
            name: f"psqldiffvar.{name}."
            for name in (*CUSTOM_VARIABLES, *_REFERENCED_NAME_RE.findall(text))
            if name not in _PSQL_OWN_VARIABLES
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST="127.0.0.1",
            PGPORT=str(port),
            PGUSER=self.server.user,
            PGDATABASE=self.dbname,
            PGSSLMODE="disable",
            PGGSSENCMODE="disable",
            PGCLIENTENCODING="UTF8",
            PGCONNECT_TIMEOUT="10",
            # psql lexes by the server's setting from the first line on; pin the
            # default schemactl assumes, whatever a role or database default says.
            PGOPTIONS="-c standard_conforming_strings=on",
            PSQLRC=os.devnull,
            PSQL_EDITOR="false",
            EDITOR="false",
            VISUAL="false",
            PSQL_PAGER="",
            PAGER="",
            LC_ALL="C.UTF-8",
            LANG="C.UTF-8",
        )
        if self.server.password:
            env["PGPASSWORD"] = self.server.password
        command = [
            self.psql,
            "-X",
            "-q",
            "-o",
            os.devnull,
            "-v",
            "ON_ERROR_STOP=0",
            "-v",
            "ON_ERROR_ROLLBACK=on",
            *(
                arg
                for name, value in variables.items()
                for arg in ("-v", f"{name}={value}")
            ),
            "-f",
            FILE_NAME,
        ]
        with (
            listener,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            try:
                events = self._relay(listener, process)
                process.wait(timeout=PSQL_TIMEOUT)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        if process.returncode not in (0, 1, 3):
            raise OracleError(f"psql exited {process.returncode}: {stderr}")
        variables.update(
            DBNAME=self.dbname, USER=self.server.user, HOST="127.0.0.1", PORT=str(port)
        )
        return _build_run(events, stdout, stderr, variables, self.psql_major)

    def _relay(
        self, listener: socket.socket, process: subprocess.Popen[bytes]
    ) -> list[tuple[str, str, bytes]]:
        deadline = time.monotonic() + PSQL_TIMEOUT
        listener.settimeout(1.0)
        while True:
            try:
                client, _ = listener.accept()
                break
            except TimeoutError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise OracleError("psql did not connect") from None
        events: list[tuple[str, str, bytes]] = []
        with client, self.server.connect_socket() as upstream:
            client.setblocking(True)
            upstream.setblocking(True)
            readers = {
                "client": _MessageReader(startup=True),
                "server": _MessageReader(startup=False),
            }
            peers = {"client": upstream, "server": client}
            with selectors.DefaultSelector() as selector:
                selector.register(client, selectors.EVENT_READ, "client")
                selector.register(upstream, selectors.EVENT_READ, "server")
                open_sides = 2
                while open_sides:
                    ready = selector.select(
                        timeout=max(0.0, deadline - time.monotonic())
                    )
                    if not ready:
                        raise OracleError("psql did not finish in time")
                    for key, _ in ready:
                        side: str = key.data
                        sock: socket.socket = key.fileobj  # type: ignore[assignment]
                        chunk = sock.recv(65536)
                        if not chunk:
                            selector.unregister(sock)
                            open_sides -= 1
                            with suppress(OSError):
                                peers[side].shutdown(socket.SHUT_WR)
                            continue
                        messages = readers[side].feed(chunk)
                        events.extend((side, kind, body) for kind, body in messages)
                        peers[side].sendall(chunk)
        return events


def _build_run(
    events: list[tuple[str, str, bytes]],
    stdout: str,
    stderr: str,
    variables: dict[str, str],
    major: int,
) -> PsqlRun:
    queries: list[SentQuery] = []
    current: SentQuery | None = None
    initial_scs: str | None = None
    saw_startup = False
    for side, kind, body in events:
        if side == "client":
            if kind == "startup":
                saw_startup = True
            elif kind == "Q":
                current = SentQuery(body.rstrip(b"\0").decode("utf-8", "replace"))
                if current.text not in _INTERNAL_QUERIES:
                    queries.append(current)
            elif kind == "d" and current is not None:
                current.copy_data += body
            continue
        if kind == "S":
            name, _, rest = body.partition(b"\0")
            if name == b"standard_conforming_strings":
                value = rest.rstrip(b"\0").decode()
                if current is None:
                    initial_scs = value
                else:
                    current.standard_conforming_strings = value
        elif current is None:
            if kind == "E":
                raise OracleError(f"psql could not log in: {_error_fields(body)}")
        elif kind == "G":
            current.copy_in = True
        elif kind == "E":
            current.errors.append(_error_fields(body))
        elif kind == "C":
            current.completions += 1
        elif kind == "I":
            current.empty = True
    if not saw_startup:
        raise OracleError("psql never started a session")
    return PsqlRun(queries, stdout, stderr, variables, initial_scs, major)


# --------------------------------------------------------------------------------
# schemactl's view, and the comparison
# --------------------------------------------------------------------------------


def schemactl_view(data: bytes) -> ParsedSource | MigrationDirError:
    """What migrate would run from data, or its refusal."""
    try:
        return parse_source(data, FILE_NAME)
    except MigrationDirError as exc:
        return exc


@dataclass(frozen=True)
class Disagreement:
    """How schemactl's reading of a file differs from psql's."""

    kind: str
    detail: str
    group: str = ""  # the kind and what marks its cause, for the campaign's groups

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class _Reading:
    """How psql read the file, beyond its list of queries."""

    exact: frozenset[int]  # offsets of the meta-commands/variables psql acted on
    loose: frozenset[int]  # candidates, where the exact spot is ambiguous
    reasons: tuple[str, ...]  # what psql did there; empty for a plain reading
    kinds: tuple[str, ...]  # the same, without names and numbers (for grouping)
    continued: bool  # a query joined the rest of a COPY line to the text after its data
    counts_begin: bool  # psql counted a BEGIN that is not BEGIN ATOMIC (_counts_begin)
    # Where the last query starts when psql sent it at the end of the file, still
    # inside a quote or comment, and the server rejected it.
    open_tail: int | None = None


def _normalize_text(raw: str) -> str:
    """The text schemactl reads: no BOM, LF line ends (checksum.normalize_bytes)."""
    return raw.removeprefix("\ufeff").replace("\r\n", "\n")


def _line_column(raw: str, offset: int) -> tuple[int, int]:
    """Line and column of a raw offset, in the text schemactl reports against."""
    normalized = _normalize_text(raw)
    return position_to_line_column(normalized, len(_normalize_text(raw[:offset])))


def _without_empty_lines(text: str) -> str:
    """psql drops empty lines outside quotes before it lexes (MainLoop)."""
    return re.sub(r"\n\n+", "\n", text)


def _command_name(line: str, backslash: int) -> str:
    """The meta-command name psql reads after a backslash (psqlscanslash.l)."""
    match = re.compile(r"[^\s\\]*").match(line, backslash + 1)
    return match.group() if match else ""


def _variable_offsets(text: str, name: str) -> list[int]:
    escaped = re.escape(name)
    pattern = (
        rf":(?:{escaped}|'{escaped}'|\"{escaped}\")(?![A-Za-z0-9_\x80-\U0010ffff])"
    )
    return [m.start() for m in re.finditer(pattern, text)]


def _server_scan(text: str) -> tuple[list[Any], str | None]:
    """The server's lexer (pglast) on text: its tokens, or the lexical error."""
    from pglast import parser

    try:
        return list(parser.scan(text)), None
    except parser.ParseError as exc:
        return [], str(exc.args[0])


_HEAD_WORDS = frozenset({"create", "function", "procedure", "or", "replace"})
_LOOSE_BEGIN_RE = re.compile(
    r"\s*create\s+(?:or\s+replace\s+)?(?:function|procedure)\b"
    r".*\bbegin\b(?!\s+atomic(?![\w$]))",
    re.IGNORECASE | re.DOTALL,
)


def _counts_begin(query: SentQuery) -> bool:
    """psql counted a BEGIN that is not BEGIN ATOMIC in CREATE [OR REPLACE]
    FUNCTION|PROCEDURE: it then ends the statement only after a matching END (or
    at the end of the file). Checked on the server's tokens, with psql's rules
    (psqlscan.l): only unquoted words count, the head is read from the first four
    of them, and nothing inside parentheses counts."""
    from pglast import parser

    text = query.text
    try:
        tokens = list(parser.scan(text))
    except parser.ParseError:
        # The server's lexer differs from psql's here (an E'' string continued
        # across a newline keeps its escapes for the server only): a plain look.
        return bool(_LOOSE_BEGIN_RE.match(text))
    head = ["", "", "", ""]
    words = 0
    depth = 0
    for index, token in enumerate(tokens):
        name = token.name
        if name == "ASCII_40":
            depth += 1
        elif name == "ASCII_41":
            depth = max(0, depth - 1)
        elif token.kind != "NO_KEYWORD" or (
            name == "IDENT" and text[token.start] != '"'
        ):
            word = text[token.start : token.end + 1].lower()
            if word in _HEAD_WORDS and words < len(head):
                head[words] = word[0]
            words += 1
            is_head = head[0] == "c" and (
                head[1] in ("f", "p")
                or (head[1] == "o" and head[2] == "r" and head[3] in ("f", "p"))
            )
            following = tokens[index + 1].name if index + 1 < len(tokens) else ""
            if is_head and depth == 0 and word == "begin" and following != "ATOMIC":
                return True
    return False


_BOOLEAN_RE = re.compile(r"TRUE|FALSE")
_EXISTENCE_TEST_RE = re.compile(r":\{\?[A-Za-z0-9_\x80-\U0010ffff]+\}")


def _skeleton(text: str, variables: Mapping[str, str]) -> str:
    """Text with empty lines dropped and every variable reference, variable value
    and TRUE/FALSE made one mark, on both sides of a substring test."""
    text = _without_empty_lines(text)
    for name in variables:
        text = re.sub(
            rf":(?:{re.escape(name)}|'{re.escape(name)}'|\"{re.escape(name)}\")"
            r"(?![A-Za-z0-9_\x80-\U0010ffff])",
            "\0",
            text,
        )
    for value in sorted(variables.values(), key=len, reverse=True):
        text = text.replace(f"'{value}'", "\0").replace(f'"{value}"', "\0")
        text = text.replace(value, "\0")
    text = _EXISTENCE_TEST_RE.sub("\0", text)
    return _BOOLEAN_RE.sub("\0", text)


_NAME_END = r"(?![A-Za-z0-9_\x80-\U0010ffff])"
_COPY_STDIN_RE = re.compile(r"\bcopy\b.*\bfrom\s+stdin\b", re.IGNORECASE | re.DOTALL)


@dataclass
class _Alignment:
    """Where each query psql sent comes from in the file."""

    spots: dict[int, str] = field(default_factory=dict)  # raw offset -> what psql did
    starts: list[int] = field(default_factory=list)  # raw offset of each query
    ends: list[int] = field(default_factory=list)  # raw offset after each query
    continued: bool = False


def _gap_spots(text: str, start: int, end: int) -> list[int] | None:
    """Between two queries psql drops whitespace and `--` comments, and runs
    meta-commands (to the end of their line). Their offsets, or None when the
    gap holds anything else (psql dropped text it should have sent)."""
    spots: list[int] = []
    index = start
    while index < end:
        char = text[index]
        if char in " \t\r\n\f\v":
            index += 1
        elif text.startswith("--", index) or char == "\\":
            if char == "\\":
                spots.append(index)
            newline = text.find("\n", index, end)
            index = end if newline == -1 else newline + 1
        else:
            return None
    return spots


def _query_pattern(
    text: str, variables: Mapping[str, str], *, dash_comments: bool = True
) -> tuple[re.Pattern[str], list[str]]:
    """A pattern matching the file text psql made this query from, with a group
    (and what it stands for) for everything psql changed on the way: a variable
    substituted, :{?name} replaced, \\; or \\: unescaped, a meta-command dropped
    from the end of a line, an empty line dropped; without dash_comments (psql
    14), a ``--`` comment dropped before a line end or the end of the query."""
    dropped = "" if dash_comments else r"(?:--[^\r\n]*)?"
    forms = [
        f"'{re.escape(v)}'|\"{re.escape(v)}\"|{re.escape(v)}"
        for v in sorted(variables.values(), key=len, reverse=True)
    ]
    special_re = re.compile("|".join([*forms, r"TRUE|FALSE", r"[;:\r\n]"]))
    by_value = {value: name for name, value in variables.items()}
    pieces: list[str] = []
    kinds: list[str] = []
    position = 0
    for match in special_re.finditer(text):
        literal = text[position : match.start()]
        position = match.end()
        found = match.group()
        pieces.append(re.escape(literal))
        if found == "\r":
            pieces.append(dropped + "\r")  # a comment ends before \r or \n
        elif found == "\n":
            pieces.append(dropped + r"((?:\\[^\n]*)??)\n((?:\n|\\[^\n]*\n)*?)")
            kinds += ["meta-command", "meta-command"]
        elif found in ";:":
            pieces.append(rf"(\\)?{re.escape(found)}")
            kinds.append(f"\\{found}")
        elif found in ("TRUE", "FALSE"):
            pieces.append(rf"(?:(:\{{\?[A-Za-z0-9_\x80-\U0010ffff]+\}})|{found})")
            kinds.append(":{?name}")
        elif found[0] in "'\"" and found[1:-1] in by_value:
            quote, name = found[0], by_value[found[1:-1]]
            escaped = re.escape(name)
            pieces.append(
                f"(?:(:{quote}{escaped}{quote})|{quote}(:{escaped}){_NAME_END}{quote})"
            )
            kinds += [f"variable {name}", f"variable {name}"]
        else:
            name = by_value[found]
            pieces.append(f"(:{re.escape(name)}){_NAME_END}")
            kinds.append(f"variable {name}")
    pieces.append(re.escape(text[position:]) + dropped)
    return re.compile("".join(pieces)), kinds


_END_OF_COPY_LINE_RE = re.compile(r"\\\.(?:\r?\n|\Z)")


def _align(raw: str, run: PsqlRun, *, whole: bool = True) -> _Alignment | None:
    """Find each query psql sent in the file, in order, and what psql did between
    and inside them (and after them, when whole). None when a query cannot be
    found."""
    alignment = _Alignment()
    text = raw
    to_raw = list(range(len(raw) + 1))  # offset in text -> offset in raw
    cuts: list[int] = []  # where COPY data blocks were taken out of text
    cursor = 1 if raw.startswith("\ufeff") else 0
    for query in run.queries:
        pattern, kinds = _query_pattern(
            query.text, run.variables, dash_comments=keeps_dash_comments(run.psql_major)
        )
        match = pattern.search(text, cursor)
        if match is None:
            return None
        gap = _gap_spots(text, cursor, match.start())
        if gap is None:
            return None
        alignment.spots.update((to_raw[o], "meta-command") for o in gap)
        for group, kind in enumerate(kinds, start=1):
            found = match.group(group)
            if not found:
                continue
            begin = match.start(group)
            if kind == "meta-command":
                lines = found.split("\n")
                offsets = [
                    sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))
                ]
                alignment.spots.update(
                    (to_raw[begin + o], kind)
                    for o, line in zip(offsets, lines, strict=True)
                    if line.startswith("\\")
                )
            else:
                alignment.spots[to_raw[begin]] = kind
        alignment.continued |= any(match.start() < cut < match.end() for cut in cuts)
        cursor = match.end()
        alignment.starts.append(to_raw[match.start()])
        alignment.ends.append(to_raw[cursor])
        if query.copy_in:
            newline = text.find("\n", cursor)
            start = len(text) if newline == -1 else newline + 1
            data = query.copy_data.decode("utf-8", "replace")
            if text[start : start + len(data)] != data:
                return None
            end = start + len(data)
            if not sends_end_of_copy_line(run.psql_major):
                # psql read the \. line that ends the data and did not send it.
                marker = _END_OF_COPY_LINE_RE.match(text, end)
                end = marker.end() if marker else end
            text = text[:start] + text[end:]
            del to_raw[start:end]
            cuts.append(start)
    if not whole:
        return alignment
    tail = _gap_spots(text, cursor, len(text))
    if tail is None:
        return None
    alignment.spots.update((to_raw[o], "meta-command") for o in tail)
    return alignment


def read_like_psql(raw: str, run: PsqlRun) -> _Reading:
    """Find where psql ran a meta-command, substituted a variable or read \\; or \\:.

    Exact when every query psql sent aligns with the file (see _align); otherwise
    from what psql printed and sent, with every plausible spot as a candidate.
    """
    last = run.queries[-1] if run.queries else None
    counts_begin = any(_counts_begin(q) for q in run.queries)
    fallback = _read_from_output(raw, run, counts_begin=counts_begin)
    alignment = _align(raw, run)
    # An alignment accounts for every query; only what psql printed or the
    # values it sent can contradict it.
    printed = [k for k in fallback.kinds if k != "text not in the file"]
    if alignment is None or (printed and not alignment.spots):
        return fallback
    open_tail = None
    if last is not None and last.errors and alignment.ends[-1] >= len(raw.rstrip()):
        open_tail = alignment.starts[-1]
    reasons: list[str] = []
    kinds: list[str] = []
    for offset, kind in sorted(alignment.spots.items()):
        line, column = _line_column(raw, offset)
        reasons.append(f"psql read a {kind} at {line}:{column}")
        name = kind.removeprefix("variable ")
        generic = name in CUSTOM_VARIABLES or name not in _PSQL_OWN_VARIABLES
        kinds.append("variable" if kind.startswith("variable") and generic else kind)
    return _Reading(
        frozenset(alignment.spots),
        frozenset(),
        tuple(reasons),
        tuple(dict.fromkeys(kinds)),
        alignment.continued,
        counts_begin,
        open_tail,
    )


def _read_from_output(raw: str, run: PsqlRun, *, counts_begin: bool) -> _Reading:
    """The fallback: what psql printed (\\echo MARK..., `error:` lines) and which
    variable values it sent; spots are exact only when unambiguous."""
    exact: set[int] = set()
    loose: set[int] = set()
    reasons: list[str] = []
    kinds: list[str] = []
    # The header line is a comment psql drops: never a candidate.
    body_start = len(HEADER) if raw.removeprefix("\ufeff").startswith(HEADER) else 0

    def place(offsets: list[int], fallback: str) -> None:
        if len(offsets) == 1:
            exact.update(offsets)
        elif offsets:
            loose.update(offsets)
        else:
            loose.update(
                i for i, c in enumerate(raw) if c in fallback and i >= body_start
            )

    for word in dict.fromkeys(_MARK_RE.findall(run.stdout)):
        reasons.append(f"psql ran \\echo {word}")
        kinds.append("meta-command")
        pattern = rf"\\echo[ \t]+{re.escape(word)}(?!\w)"
        place([m.start() for m in re.finditer(pattern, raw)], "\\")
    lines = raw.split("\n")
    for match in _PSQL_ERROR_RE.finditer(run.stderr):
        number, message = int(match.group(1)), match.group(2)
        reasons.append(f"psql (line {number}): {message}")
        command, _, name = message.partition(" \\")  # invalid command \NAME
        kinds.append("meta-command")
        start = sum(len(line) + 1 for line in lines[: number - 1])
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        backslashes = [i for i, c in enumerate(line) if c == "\\"]
        if command == "invalid command":  # psql names it: up to a space or a backslash
            named = [i for i in backslashes if _command_name(line, i) == name]
            backslashes = named or backslashes
        place([start + i for i in backslashes], "\\")
    sent = "\n".join(q.text for q in run.queries)
    for name, value in run.variables.items():
        if sent.count(value) > raw.count(value):
            reasons.append(f"psql substituted the variable {name}")
            generic = name in CUSTOM_VARIABLES or name not in _PSQL_OWN_VARIABLES
            kinds.append("variable" if generic else f"variable {name}")
            place(_variable_offsets(raw, name), ":")
    if len(_BOOLEAN_RE.findall(sent)) > len(_BOOLEAN_RE.findall(raw)):
        reasons.append("psql replaced :{?name} by TRUE or FALSE")
        kinds.append(":{?name}")
        place([m.start() for m in _EXISTENCE_TEST_RE.finditer(raw)], ":")
    # Less its COPY data blocks and empty lines, and with the variables psql
    # substituted put back, every query is a piece of the file, unless psql put
    # something else of its own in it (as for \;).
    whole = _skeleton(raw, run.variables)
    reduced = raw
    for query in run.queries:
        if query.copy_in and query.copy_data:
            reduced = reduced.replace(query.copy_data.decode("utf-8", "replace"), "", 1)
    reduced = _skeleton(reduced, run.variables)
    continued = False
    for query in run.queries:
        text = _skeleton(query.text, run.variables)
        if text in whole:
            continue
        if text in reduced:
            continued = True
        else:
            reasons.append(f"psql sent text that is not in the file: {query.text!r}")
            kinds.append("text not in the file")
            place([], ":\\")
            break
    return _Reading(
        frozenset(exact),
        frozenset(loose),
        tuple(reasons),
        tuple(dict.fromkeys(kinds)),
        continued,
        counts_begin,
    )


def _strip_leading_comments(text: str) -> str:
    while True:
        text = text.lstrip()
        if text.startswith("--"):
            newline = text.find("\n")
            text = "" if newline == -1 else text[newline + 1 :]
        elif text.startswith("/*"):
            depth, index = 1, 2
            while depth and index < len(text):
                if text.startswith("/*", index):
                    depth, index = depth + 1, index + 2
                elif text.startswith("*/", index):
                    depth, index = depth - 1, index + 2
                else:
                    index += 1
            if depth:
                return text  # unterminated: the server reports it
            text = text[index:]
        else:
            return text


def _strip_end_marker(data: bytes) -> bytes:
    """Drop the ``\\.`` line psql sends at the end of COPY data (the server reads it
    as the end of data, in text and CSV format)."""
    for marker in (b"\\.\n", b"\\.\r\n"):
        if data.endswith(marker):
            rest = data[: -len(marker)]
            if not rest or rest.endswith(b"\n"):
                return rest
    return data


@dataclass(frozen=True)
class _Expected:
    text: str
    query: SentQuery
    data: bytes | None


def _expected_statements(run: PsqlRun, *, strict: bool) -> list[_Expected]:
    expected: list[_Expected] = []
    for query in run.queries:
        text = query.text.strip()
        data: bytes | None = None
        if query.copy_in:
            data = _strip_end_marker(query.copy_data)
        if not strict:
            text = _strip_leading_comments(text)
            if not text.removesuffix(";").strip():
                continue  # `;` or a comment alone: the server does nothing
        expected.append(_Expected(text, query, data))
    return expected


def _texts_match(
    psql_text: str, schemactl_text: str, *, strict: bool, dash_comments: bool = True
) -> bool:
    if not dash_comments:
        # psql 14 drops every -- comment: compare what it left of schemactl's.
        schemactl_text = _without_dash_comments(schemactl_text).strip()
    # psql sends the semicolon that ends a statement; schemactl does not.
    candidates = {psql_text, psql_text.removesuffix(";").rstrip()}
    if strict:
        return schemactl_text in candidates
    ours = _loosely(schemactl_text)
    return any(ours == _loosely(c) for c in candidates)


def _without_dash_comments(text: str) -> str:
    """text less each ``--`` comment (not its line end), found by the server's
    lexer (pglast); text unchanged when that lexer refuses it."""
    tokens, error = _server_scan(text)
    if error is not None:
        return text
    for token in reversed(tokens):
        if token.name == "SQL_COMMENT":
            text = text[: token.start] + text[token.end + 1 :]
    return text


def _loosely(text: str) -> str:
    """What the default comparison ignores: line ends (CRLF or LF) and the empty
    lines psql drops. Each has a strict test of its own."""
    return _without_empty_lines(text.replace("\r\n", "\n"))


def _excused(
    error: MigrationDirError, run: PsqlRun, raw: str, reading: _Reading
) -> bool:
    """Whether a refusal is one psql's run bears out, though psql sent the file.

    The server's lexer rejects the text psql sent the same way (an unterminated
    quote), or the refusal names what makes psql read the file unlike its SQL: a
    change of standard_conforming_strings, a BEGIN psql counts as a function body,
    a statement psql continues after COPY data, a statement right after COPY
    data that makes psql skip lines.
    """
    prefix = error.message.split(" at or near ")[0]
    if prefix.startswith("the file has no statement"):
        # A rule of schemactl's own (an empty migration would be recorded as
        # done): right when psql sent nothing but empty queries.
        return all(_EMPTY_QUERY_RE.fullmatch(q.text) for q in run.queries)
    # psql sent the rest of the file at its end, still inside that quote or
    # comment; the server rejected it (maybe first for something else).
    if (
        prefix.startswith("unterminated")
        and reading.open_tail is not None
        and (error.line or 0, error.column or 0) >= _line_column(raw, reading.open_tail)
    ):
        return True
    for query in run.queries:
        messages = [*query.error_messages(), _server_scan(query.text)[1] or ""]
        if prefix in {m.split(" at or near ")[0] for m in messages}:
            return True
    lowered = error.message.lower()
    if "standard_conforming_strings" in lowered:
        return "standard_conforming_strings" in raw.lower()
    if "begin" in lowered and reading.counts_begin:
        return True
    return "copy" in lowered and (reading.continued or _skips_after_copy(run))


_WORD_START_RE = re.compile(r"[A-Za-z_\x80-\U0010ffff]")
# A query with no statement: blanks, semicolons and comments (not nested).
_EMPTY_QUERY_RE = re.compile(r"(?:\s|;|--[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)*")


def _skips_after_copy(run: PsqlRun) -> bool:
    """psql 15.20 skips the inline data of a COPY FROM STDIN the server refused
    (the CVE-2026-6464 fix: it spots such a COPY in its lexer). It also takes the
    statement right after COPY data for one when that statement does not start
    with a word (`;`, `(`, a quote, a number, `$`): the server then asks for no
    data, and psql drops the lines after it up to a \\. line or the end of the
    file, silently."""
    return any(
        first.copy_in
        and not second.copy_in
        and not _WORD_START_RE.match(_strip_leading_comments(second.text))
        for first, second in zip(run.queries, run.queries[1:], strict=False)
    )


def _describe_refusal(error: MigrationDirError) -> str:
    return f"{FILE_NAME}:{error.line}:{error.column}: {error.message}"


def _refusal_group(kind: str, error: MigrationDirError) -> str:
    message = error.message.split(" at or near ")[0]
    words = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message).split()
    return f"{kind} / {' '.join(words[:7])}"


def _check_refusal(
    error: MigrationDirError, run: PsqlRun, raw: str, reading: _Reading
) -> Disagreement | None:
    spot = (error.line or 0, error.column or 0)
    spots = {_line_column(raw, o) for o in reading.exact | reading.loose}
    first_exact = min((_line_column(raw, o) for o in reading.exact), default=None)
    first_any = min(spots, default=None)
    if reading.reasons:
        if spot in spots and (first_exact is None or spot <= first_exact):
            return None
        if (
            first_any is not None
            and spot < first_any
            and _excused(error, run, raw, reading)
        ):
            return None  # refused earlier, for what psql reads unlike its SQL
        where = ", ".join(f"{line}:{col}" for line, col in sorted(spots))
        kind = "refuses-at-the-wrong-place"
        return Disagreement(
            kind,
            f"{'; '.join(reading.reasons)} (at {where}); schemactl: {_describe_refusal(error)}",
            _refusal_group(kind, error),
        )
    if _excused(error, run, raw, reading):
        return None
    kind = "refuses-what-psql-runs"
    sent = [q.text for q in run.queries]
    return Disagreement(
        kind,
        f"schemactl: {_describe_refusal(error)}; psql sent {sent!r}",
        _refusal_group(kind, error),
    )


def _refused_copy(raw: str, run: PsqlRun) -> tuple[str, PsqlRun] | None:
    """The file and the run up to the first COPY FROM STDIN the server refused.

    A real run stops at that error (ON_ERROR_STOP, or migrate's one
    transaction): nothing after it matters. (psql 15.20 skips the data block
    then; older versions read it as SQL.)
    """
    for number, query in enumerate(run.queries):
        if query.copy_in or not query.errors or not _COPY_STDIN_RE.search(query.text):
            continue
        before = replace(run, queries=run.queries[: number + 1])
        alignment = _align(raw, before, whole=False)
        end = alignment.ends[-1] if alignment else raw.find(query.text)
        if end < 0:
            return None
        if alignment is None:
            end += len(query.text)
        kept = raw[:end]
        marks = [
            w
            for w in _MARK_RE.findall(run.stdout)
            if re.search(rf"\\echo[ \t]+{re.escape(w)}(?!\w)", kept)
        ]
        last_line = kept.count("\n") + 1
        errors = [
            m.group()
            for m in _PSQL_ERROR_RE.finditer(run.stderr)
            if int(m.group(1)) < last_line
        ]
        return kept, replace(
            run,
            queries=run.queries[: number + 1],
            stdout="".join(f"{w}\n" for w in marks),
            stderr="".join(f"{e}\n" for e in errors),
        )
    return None


def compare(data: bytes, run: PsqlRun, *, strict: bool = False) -> Disagreement | None:
    """Return how schemactl reads data differently from psql, or None."""
    found = _compare(data, run, strict=strict)
    if found is not None and _skips_after_copy(run):
        # One cause, whatever it looks like: psql dropped lines (see
        # _skips_after_copy). Grouped apart so that it hides no other finding.
        kind = "psql-skips-lines-after-copy"
        return Disagreement(
            kind,
            "psql dropped the lines after the statement that follows COPY data "
            f"(it does not start with a word); {found}",
            kind,
        )
    return found


def _compare(data: bytes, run: PsqlRun, *, strict: bool) -> Disagreement | None:
    raw = data.decode("utf-8", "replace")
    cut = _refused_copy(raw, run)
    if cut is not None:
        raw, run = cut
        data = raw.encode("utf-8")
    view = schemactl_view(data)
    reading = read_like_psql(raw, run)
    if isinstance(view, MigrationDirError):
        return _check_refusal(view, run, raw, reading)
    if reading.reasons:
        kind = "accepts-psql-special"
        return Disagreement(
            kind,
            f"{'; '.join(reading.reasons)}; schemactl accepts the file",
            f"{kind} / {reading.kinds[0]}",
        )
    expected = _expected_statements(run, strict=strict)
    for number, (want, have) in enumerate(zip_longest(expected, view.statements), 1):
        found = _compare_statement(
            number,
            want,
            have,
            strict=strict,
            dash_comments=keeps_dash_comments(run.psql_major),
        )
        if found is not None:
            return None if found.kind == "stop" else found
    return None


def _compare_statement(
    number: int,
    want: _Expected | None,
    have: Statement | None,
    *,
    strict: bool,
    dash_comments: bool,
) -> Disagreement | None:
    if want is None:
        assert have is not None
        detail = (
            f"statement {number}: schemactl runs {have.text!r}, psql sent nothing more"
        )
        return Disagreement("extra-statement", detail, "extra-statement")
    if have is None:
        detail = (
            f"statement {number}: psql sent {want.text!r}, schemactl runs nothing more"
        )
        return Disagreement("missing-statement", detail, "missing-statement")
    if not _texts_match(
        want.text, have.text, strict=strict, dash_comments=dash_comments
    ):
        detail = (
            f"statement {number}: psql sent {want.text!r}, schemactl runs {have.text!r}"
        )
        return Disagreement("different-statement", detail, "different-statement")
    have_data = None if have.copy_data is None else have.copy_data.encode("utf-8")
    if want.data is not None:
        if have_data is None:
            kind = "copy-data-not-sent"
            detail = (
                f"statement {number}: psql sent COPY data {want.data!r}, schemactl "
                f"sends {have.text!r} without data"
            )
            return Disagreement(kind, detail, kind)
        same = have_data == want.data or (
            not strict
            and have_data.replace(b"\r\n", b"\n") == want.data.replace(b"\r\n", b"\n")
        )
        if not same:
            kind = "different-copy-data"
            detail = (
                f"statement {number}: psql sent COPY data {want.data!r}, schemactl "
                f"sends {have_data!r}"
            )
            return Disagreement(kind, detail, kind)
    elif have_data is not None:
        if want.query.errors:
            # The server refused the COPY: psql would read the data as SQL, but the
            # run stops at the error in production. Compare no further.
            return Disagreement("stop", "", "")
        kind = "copy-data-not-expected"
        detail = (
            f"statement {number}: schemactl sends COPY data {have_data!r}; the server "
            f"did not ask psql for data after {want.text!r}"
        )
        return Disagreement(kind, detail, kind)
    return None


def explain(data: bytes, run: PsqlRun, disagreement: Disagreement) -> str:
    """A readable report: the file, what psql sent, what schemactl made of it."""
    view = schemactl_view(data)
    lines = [str(disagreement), f"file: {data!r}", "psql sent:"]
    for query in run.queries:
        extra = ""
        if query.copy_in:
            extra += f" + COPY data {query.copy_data!r}"
        if query.errors:
            extra += f" -> {query.error_messages()}"
        lines.append(f"  {query.text!r}{extra}")
    if run.stdout:
        lines.append(f"psql printed: {run.stdout!r}")
    if run.stderr:
        lines.append(f"psql stderr: {run.stderr!r}")
    if isinstance(view, MigrationDirError):
        lines.append(f"schemactl refuses: {_describe_refusal(view)}")
    else:
        lines.append("schemactl runs:")
        for statement in view.statements:
            copy = statement.copy_data
            data_part = "" if copy is None else f" + COPY data {copy!r}"
            lines.append(f"  {statement.text!r}{data_part}")
    return "\n".join(lines)


def file_bytes(text: str) -> bytes:
    """A case's text as a migration file: the no-transaction header first."""
    if text.startswith("\ufeff"):
        return ("\ufeff" + HEADER + text[1:]).encode("utf-8")
    return (HEADER + text).encode("utf-8")


# --------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------

STRINGS: tuple[str, ...] = (
    "'a;b'",
    "'it''s'",
    "''",
    "'\\'",
    "'a\\\\'",
    "'\\\\'",
    "'multi\nline;'",
    "'-- not a comment'",
    "'/* not a comment'",
    "'$$'",
    "':v'",
    "E'\\''",
    "E'\\\\'",
    "e'x\\'y;'",
    "E'\\\\\\''",
    "E''",
    "U&'d\\0061t\\+000061'",
    "U&'\\\\'",
    "u&'a'",
    "N'x'",
    "B'01'",
    "X'1f'",
    "E'a'\n'\\'",
    "E'a' -- c\n'\\''",
    "'a'\n'b\\'",
    "U&'a'\n'\\'",
)
IDENTIFIERS: tuple[str, ...] = (
    '"a;b"',
    '"begin"',
    '"end"',
    '"case"',
    '"atomic"',
    '"x""y"',
    '"\\"',
    '":v"',
    'U&"d\\0061t"',
    "begin",
    "end",
    "case",
    "atomic",
    "BEGIN",
    "END",
    "CASE",
    "x",
    "a$b$",
)
DOLLAR_QUOTES: tuple[str, ...] = (
    "$$;$$",
    "$$$$",
    "$a$ $b$ ; $a$",
    "$b$ $a$ ; $b$",
    "$a$$$;$a$",
    "$$\\$$",
    "$$'$$",
    "$x$:v$x$",
    "$_$--$_$",
)
COMMENTS: tuple[str, ...] = (
    "-- c;\n",
    "-- ' \\\\\n",
    "--\n",
    "/* ; */",
    "/* /* ; */ */",
    "/* ' */",
    "/*/ x */",
    "/**/",
)
WORDS: tuple[str, ...] = (
    "SELECT",
    "1",
    "2",
    ",",
    "(",
    ")",
    "1::int",
    "::text",
    "[1:2]",
    "WHEN true THEN",
    "CASE WHEN true THEN 1 END",
    "create",
    "function",
    "procedure",
    "or replace",
    "AS",
    "FROM",
    "stdin",
    "RETURN",
)
# {V} becomes a variable name set on psql's command line; {M} a unique MARK word.
PSQL_SPECIALS: tuple[str, ...] = (
    ":{V}",
    ":'{V}'",
    ':"{V}"',
    ":{?{V}}",
    ":'DBNAME'",
    ':"USER"',
    "\\;",
    "\\echo {M}\n",
)
SCS_STATEMENTS: tuple[str, ...] = (
    "SET standard_conforming_strings = off;\n",
    "SET standard_conforming_strings = on;\n",
    "SET standard_conforming_strings TO 'off';\n",
    "SET SESSION standard_conforming_strings = off;\n",
    "SET LOCAL standard_conforming_strings = off;\n",
    "RESET standard_conforming_strings;\n",
    "SELECT set_config('standard_conforming_strings', 'off', false);\n",
)
HEADS: tuple[str, ...] = (
    "SELECT",
    "SELECT 1 AS",
    "CREATE FUNCTION psqldiff_f() RETURNS int LANGUAGE sql BEGIN ATOMIC",
    "CREATE OR REPLACE PROCEDURE psqldiff_p() LANGUAGE sql BEGIN ATOMIC",
    "CREATE OR REPLACE FUNCTION psqldiff_g() RETURNS SETOF begin LANGUAGE sql AS",
    "BEGIN",
    "END",
    "COMMIT",
    "",
)
COPY_HEADS: tuple[str, ...] = (
    "COPY t FROM stdin",
    "COPY t FROM STDIN WITH (FORMAT csv)",
    "copy t (a, b) from stdin csv",
    "COPY t FROM\nstdin",
    "COPY t /* x */ FROM stdin",
)
COPY_LINES: tuple[str, ...] = (
    "1\tx",
    "\\N\t\\N",
    "a\\\\b\tc",
    "it's;\t--",
    '"a,b",c',
    '"q""x",y',
    '"multi',
    "$$\t/*",
    ":v\t\\echo {M}",
    "\\.x",
    " \\.",
    "",
)
SEPARATORS: tuple[str, ...] = (" ", " ", " ", "\n", "", "\t", "  \n  ")
TERMINATORS: tuple[str, ...] = (";", ";", ";\n", ";\n", ";;", "\n", "")

# Fragment families; the generator can leave families out.
FAMILIES: dict[str, tuple[str, ...]] = {
    "strings": STRINGS,
    "identifiers": IDENTIFIERS,
    "dollar": DOLLAR_QUOTES,
    "comments": COMMENTS,
    "words": WORDS,
    "psql": PSQL_SPECIALS,
}
ALL_FAMILIES = frozenset({*FAMILIES, "scs", "copy", "crlf"})


def _number_placeholders(text: str) -> str:
    """Give every {V} its own variable and every {M} its own MARK word."""
    counters = {"V": 0, "M": 0}

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        number = counters[key]
        counters[key] += 1
        if key == "V":
            return CUSTOM_VARIABLES[2 + number % (len(CUSTOM_VARIABLES) - 2)]
        return f"MARK{number}"

    return re.sub(r"\{([VM])\}", replace, text)


@st.composite
def _statement(draw: st.DrawFn, families: frozenset[str]) -> str:
    pools = [FAMILIES[name] for name in sorted(families & FAMILIES.keys())]
    parts = [draw(st.sampled_from(HEADS))]
    for _ in range(draw(st.integers(0, 6))):
        pool = draw(st.sampled_from(pools))
        parts.append(draw(st.sampled_from(SEPARATORS)))
        parts.append(draw(st.sampled_from(pool)))
    parts.append(draw(st.sampled_from(TERMINATORS)))
    return "".join(parts)


@st.composite
def _copy_block(draw: st.DrawFn, families: frozenset[str]) -> str:
    head = draw(st.sampled_from(COPY_HEADS))
    tail = draw(
        st.sampled_from(("", "", " SELECT 1;", " -- c", " SELECT 'x';", " /* y */"))
    )
    rows = draw(st.lists(st.sampled_from(COPY_LINES), max_size=4))
    end = draw(st.sampled_from(("\\.\n", "\\.\n", "\\.\n", "\\.", "")))
    return f"{head};{tail}\n" + "".join(f"{row}\n" for row in rows) + end


@st.composite
def sql_files(draw: st.DrawFn, families: frozenset[str] = ALL_FAMILIES) -> bytes:
    """A migration file composed of fragments (header included), as bytes."""
    items: list[st.SearchStrategy[str]] = [_statement(families)]
    if "scs" in families:
        items.append(st.sampled_from(SCS_STATEMENTS))
    if "copy" in families:
        items.append(_copy_block(families))
    chosen = draw(st.lists(st.one_of(items), min_size=1, max_size=6))
    text = _number_placeholders("".join(chosen))
    if "crlf" in families and draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return file_bytes(text)


# Fragment families that agree with psql today (found with bench/psql_fuzz.py):
# the brief generated test in `make test` keeps to them; widen it as the splitter
# gets fixed.
AGREEING_FAMILIES = frozenset(
    {"identifiers", "dollar", "comments", "words", "psql", "scs", "crlf"}
)


# --------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def differ(
    server_conninfo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PsqlDiffer]:
    assert PSQL, "the differential test needs psql on PATH"
    server = Server.from_conninfo(server_conninfo)
    with throwaway_database(server) as dbname:
        yield PsqlDiffer(PSQL, server, dbname, tmp_path_factory.mktemp("psqldiff"))


def assert_agrees(differ: PsqlDiffer, data: bytes, *, strict: bool = False) -> None:
    run = differ.run_psql(data)
    disagreement = compare(data, run, strict=strict)
    assert disagreement is None, explain(data, run, disagreement)


# Hand-written cases schemactl reads differently from psql today. Each still
# asserts psql's behaviour; the lead removes the mark with the fix.
KNOWN_DISAGREEMENTS: dict[str, str] = {
    # Whitespace and comments only: the server runs the same statements.
    "leading-block-comment-is-sent": "schemactl drops a comment before a statement's "
    "first token; psql sends it",
    "comment-only-tail-is-sent": "psql sends a trailing block comment as an empty "
    "query; schemactl sends nothing",
    "empty-statement-is-sent": "psql sends a lone ; as an empty query; schemactl "
    "skips it",
    "empty-line-inside-a-statement-is-dropped": "psql drops empty lines outside "
    "quotes; schemactl keeps them",
}
if PSQL_MAJOR is not None and PSQL_MAJOR < 15:
    # psql 14's lexer has no integer_junk rule: it reads 2begin as 2 and the word
    # begin, counts a function body and sends the next statement with this one
    # (the first statement fails on every server either way).
    KNOWN_DISAGREEMENTS["number-glued-to-begin"] = (
        "psql 14 reads 2begin as a number and a BEGIN; schemactl, like psql 15 and "
        "newer, as one (invalid) token"
    )


def _case_params(cases: tuple[Case, ...]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=(
                [pytest.mark.xfail(strict=True, reason=KNOWN_DISAGREEMENTS[case.id])]
                if case.id in KNOWN_DISAGREEMENTS
                else []
            ),
        )
        for case in cases
    ]


@pytest.mark.parametrize("case", _case_params(CASES))
def test_hand_written_file_reads_like_psql(differ, case):
    assert_agrees(differ, file_bytes(case.text))


@pytest.mark.parametrize("case", _case_params(STRICT_CASES))
def test_file_is_sent_byte_for_byte_like_psql(differ, case):
    assert_agrees(differ, file_bytes(case.text), strict=True)


def test_the_oracle_sees_meta_commands_variables_and_copy_data(differ):
    """The proxy records what psql does, so a pass above means something."""
    data = file_bytes(
        "SELECT :'foo';\n\\echo MARK7\nCOPY t FROM stdin; SELECT 2;\nx\ty\n\\.\n"
    )
    run = differ.run_psql(data)
    assert [q.text for q in run.queries] == [
        "SELECT 'psqldiffvar.foo.';",
        "COPY t FROM stdin;",
        "SELECT 2;",
    ]
    assert run.queries[1].copy_in
    end_line = b"\\.\n" if sends_end_of_copy_line(differ.psql_major) else b""
    assert run.queries[1].copy_data == b"x\ty\n" + end_line
    assert run.stdout == "MARK7\n"
    reading = read_like_psql(data.decode(), run)
    assert {_line_column(data.decode(), o) for o in reading.exact} == {(2, 8), (3, 1)}


def test_hidden_commit_in_a_transactional_file_is_refused():
    """psql sends `... RETURNS SETOF begin ...; COMMIT; ...` as one query (its BEGIN
    counting sees the table name), and the server runs the COMMIT inside it: a
    transactional file holding that must be refused like a visible COMMIT."""
    data = (
        b"CREATE TABLE begin (a int);\n"
        b"CREATE FUNCTION f() RETURNS SETOF begin LANGUAGE sql AS $$ SELECT * FROM begin $$;\n"
        b"COMMIT;\nDROP TABLE important;\n"
    )
    with pytest.raises(MigrationDirError) as refused:
        parse_source(data, FILE_NAME)
    assert refused.value.line in (2, 3)  # at the counted `begin` or at the COMMIT


def _pin(cases: list[Case]) -> Any:
    """Pin hand-written cases as explicit examples: they run first, every time."""

    def pin(test: Any) -> Any:
        for case in reversed(cases):
            test = example(data=file_bytes(case.text))(test)
        return test

    return pin


AGREEING_CASES = [case for case in CASES if case.id not in KNOWN_DISAGREEMENTS]
DISAGREEING_CASES = [case for case in CASES if case.id in KNOWN_DISAGREEMENTS]
FUZZ_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ_SETTINGS
@_pin(AGREEING_CASES)
@given(data=sql_files(AGREEING_FAMILIES))
def test_generated_file_reads_like_psql(differ, data):
    """Brief in `make test`: the fragment families that agree today."""
    assume(not _glued_for_psql_14(differ.psql_major, data))
    assert_agrees(differ, data)


# A number glued to BEGIN or END: psql 14 reads the word apart (see
# KNOWN_DISAGREEMENTS), so on psql 14 the agreeing test leaves such files out.
_GLUED_WORD_RE = re.compile(
    r"[0-9.](?:begin|end)(?![A-Za-z0-9_$\x80-\U0010ffff])", re.IGNORECASE
)


def _glued_for_psql_14(major: int, data: bytes) -> bool:
    text = data.decode("utf-8", "replace")
    return major < 15 and _GLUED_WORD_RE.search(text) is not None


@pytest.mark.xfail(
    bool(DISAGREEING_CASES),
    strict=True,
    reason="pinned cases disagree today: "
    + ", ".join(case.id for case in DISAGREEING_CASES),
)
@FUZZ_SETTINGS
@_pin(DISAGREEING_CASES)
@given(data=sql_files())
def test_any_generated_file_reads_like_psql(differ, data):
    """Every fragment family (what `make psql-fuzz` runs long)."""
    assert_agrees(differ, data)
