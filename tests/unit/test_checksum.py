from __future__ import annotations

import hashlib

from hypothesis import example, given
from hypothesis import strategies as st

from schemactl.core.checksum import (
    UTF8_BOM,
    checksum_of_file,
    compute_checksum,
    normalize_bytes,
)


def test_checksum_is_lowercase_sha256_hex_of_the_bytes():
    assert (
        compute_checksum(b"SELECT 1;\n") == hashlib.sha256(b"SELECT 1;\n").hexdigest()
    )


def test_bom_and_crlf_are_normalised_away():
    assert compute_checksum(
        UTF8_BOM + b"SELECT 1;\r\nSELECT 2;\r\n"
    ) == compute_checksum(b"SELECT 1;\nSELECT 2;\n")


def test_a_lone_cr_is_content_not_a_line_ending():
    assert compute_checksum(b"SELECT 1;\r") != compute_checksum(b"SELECT 1;\n")


def test_a_bom_in_the_middle_is_kept():
    assert normalize_bytes(b"a" + UTF8_BOM) == b"a" + UTF8_BOM


lines = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n")),
    max_size=20,
)


@given(lines, st.booleans())
def test_windows_checkout_has_the_same_checksum(text_lines, with_bom):
    unix = "\n".join(text_lines).encode()
    windows = (UTF8_BOM if with_bom else b"") + "\r\n".join(text_lines).encode()
    assert compute_checksum(windows) == compute_checksum(unix)


@given(st.binary())
def test_normalisation_is_idempotent(data):
    once = normalize_bytes(data)
    assert normalize_bytes(once) == once or once.startswith(UTF8_BOM)


@given(st.binary(), st.binary())
def test_different_normalised_content_gives_different_checksums(a, b):
    if normalize_bytes(a) != normalize_bytes(b):
        assert compute_checksum(a) != compute_checksum(b)


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=8))
@example(b"\xef\xbb\xbfa\r\nb", 1)
@example(b"a\r\n\r\nb\r", 1)
@example(b"a\r\r\nb", 2)
@example(b"\xef\xbb", 1)
def test_checksum_of_file_matches_the_checksum_of_its_bytes(
    tmp_path_factory, data, chunk_size
):
    path = tmp_path_factory.mktemp("c") / "f.sql"
    path.write_bytes(data)
    assert checksum_of_file(path, chunk_size) == compute_checksum(data)
