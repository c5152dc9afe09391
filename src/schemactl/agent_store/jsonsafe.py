"""Turn SDK values into JSON that PostgreSQL's jsonb can hold, and back.

Two things stand between an SDK value and a jsonb column:

* Objects: raw items are pydantic models, final outputs may be dataclasses.
  ``to_json`` turns them into plain JSON values.
* U+0000 and lone surrogates: jsonb (and text) refuse them, yet a tool output
  or a message may hold them (Python strings may; UTF-8 may not). ``escape_nul``
  rewrites only the strings that hold one, or that begin with the marker
  below, as the marker followed by the string with every backslash doubled,
  every NUL written ``\\0`` and every lone surrogate ``\\sXXXX`` (hex);
  ``unescape_nul`` reverses it. Every other string is stored exactly as it is,
  so queries on the columns keep working for everything but those strings.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping
from typing import Any

# A private-use code point: no text the SDK produces starts with it by chance,
# and one that does is escaped too, so decoding never guesses.
NUL_MARKER = "\ue000"
# What PostgreSQL cannot store in text: NUL, and surrogates (no UTF-8 form).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")
# Keys whose values are credentials in model settings and tool configurations.
SECRET_KEY = re.compile(
    r"authorization|api[_-]?key|token|secret|password|cookie|headers|credential",
    re.IGNORECASE,
)
REDACTED = "<redacted>"


def escape_nul(value: Any) -> Any:
    """Return ``value`` (a JSON value) with every string jsonb can hold."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, list):
        return [escape_nul(item) for item in value]
    if isinstance(value, dict):
        return {escape_text(k): escape_nul(v) for k, v in value.items()}
    return value


def unescape_nul(value: Any) -> Any:
    """Undo ``escape_nul``."""
    if isinstance(value, str):
        return _unescape_string(value)
    if isinstance(value, list):
        return [unescape_nul(item) for item in value]
    if isinstance(value, dict):
        return {_unescape_string(k): unescape_nul(v) for k, v in value.items()}
    return value


def escape_optional(text: object) -> str | None:
    """``escape_text`` of a value that may be missing (None stays None)."""
    return None if text is None else escape_text(str(text))


def escape_text(text: str) -> str:
    """Return ``text`` as a text column can hold it (see ``escape_nul``)."""
    if not text.startswith(NUL_MARKER) and not UNSTORABLE.search(text):
        return text
    escaped = text.replace("\\", "\\\\").replace("\x00", "\\0")
    return NUL_MARKER + SURROGATE.sub(lambda m: f"\\s{ord(m.group()):04x}", escaped)


def _unescape_string(text: str) -> str:
    if not text.startswith(NUL_MARKER):
        return text
    out: list[str] = []
    chars = iter(text[1:])
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped == "0":
            out.append("\x00")
        elif escaped == "s":
            out.append(chr(int("".join(next(chars, "") for _ in range(4)), 16)))
        else:
            out.append(escaped)
    return "".join(out)


def to_json(value: Any) -> Any:
    """Return ``value`` as plain JSON (dicts, lists, str, numbers, bool, None).

    Pydantic models dump in JSON mode without unset fields (what the SDK sends
    to the API), dataclasses become dicts, enums their values. A callable, or
    anything else JSON has no form for, becomes its type's or its own dotted
    name: never a ``repr`` with a memory address, so the same value always
    gives the same JSON (definitions are fingerprinted by it).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # jsonb has no NaN or infinity: keep them readable rather than fail.
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return to_json(model_dump(mode="json", exclude_unset=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        )
    if callable(value):
        return f"<callable {dotted_name(value)}>"
    return f"<{dotted_name(type(value))}>"


def dotted_name(function: Any) -> str:
    """Name a callable the way an application registers it: module.qualname."""
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{qualname}"


def redact_secrets(value: Any) -> Any:
    """Return JSON ``value`` with the value of every credential-like key (and
    whole header maps) replaced by a marker; the keys stay, so one can see a
    header was set."""
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    if isinstance(value, dict):
        return {
            k: _redact_all(v) if SECRET_KEY.search(k) else redact_secrets(v)
            for k, v in value.items()
        }
    return value


def _redact_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    return None if value is None else REDACTED


def parsed_json_text(value: Any) -> Any:
    """``value`` parsed when it is a JSON text (a call's arguments), else as
    it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def dumps(value: Any) -> str:
    """JSON text of ``value`` for a jsonb parameter: plain, and NUL-free."""
    return json.dumps(escape_nul(to_json(value)), ensure_ascii=False)
