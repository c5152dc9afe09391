"""The agent store's JSON: NUL escaping is reversible and touches only the
strings that need it; SDK objects become plain, stable JSON."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import example, given
from hypothesis import strategies as st

from schemactl.agent_store.jsonsafe import (
    NUL_MARKER,
    dumps,
    escape_nul,
    redact_secrets,
    to_json,
    unescape_nul,
)

# Every code point, lone surrogates included (Python strings may hold them).
any_text = st.text(st.characters(exclude_categories=()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
@example("\x00")
@example("a\x00b\\0c")
@example(NUL_MARKER)
@example(NUL_MARKER + "\\0")
@example({"\x00key": ["\x00", NUL_MARKER + "x"]})
@example("\\")
@example("\ud83d")
@example("a\\s\udfff\x00")
def test_escaping_round_trips_and_leaves_nothing_postgresql_refuses(value):
    escaped = escape_nul(value)
    assert "\\u0000" not in json.dumps(escaped)
    json.dumps(escaped, ensure_ascii=False).encode()  # no lone surrogate left
    assert unescape_nul(escaped) == value


@given(st.text().filter(lambda t: "\x00" not in t and not t.startswith(NUL_MARKER)))
@example("plain text with a \\0 and \\\\ in it")
def test_strings_without_nul_are_stored_as_they_are(text):
    assert escape_nul(text) == text
    assert unescape_nul(text) == text


def test_dumps_is_jsonb_safe():
    assert json.loads(dumps({"out": "a\x00b"})) == {"out": NUL_MARKER + "a\\0b"}


def test_callables_and_unknown_objects_become_stable_names():
    class Opaque:
        pass

    def tool():
        pass

    first, second = to_json([tool, Opaque()]), to_json([tool, Opaque()])
    assert first == second
    assert first[0].startswith("<callable tests.unit.test_jsonsafe.")
    assert "0x" not in json.dumps(first)


def test_dataclasses_and_floats_jsonb_cannot_hold():
    @dataclasses.dataclass
    class Point:
        x: float
        y: float

    assert to_json(Point(1.5, float("nan"))) == {"x": 1.5, "y": "nan"}


def test_credentials_are_redacted_but_their_keys_stay():
    settings = {
        "extra_headers": {"Authorization": "Bearer sk-1", "X-Team": "a"},
        "temperature": 0.2,
        "tool_config": {"server_url": "https://mcp", "authorization": "tok"},
    }
    assert redact_secrets(settings) == {
        "extra_headers": {"Authorization": "<redacted>", "X-Team": "<redacted>"},
        "temperature": 0.2,
        "tool_config": {"server_url": "https://mcp", "authorization": "<redacted>"},
    }
