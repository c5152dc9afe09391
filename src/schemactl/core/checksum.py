"""Normalise migration bytes and compute their SHA-256 checksum. Stdlib only."""

from __future__ import annotations

import hashlib

UTF8_BOM = b"\xef\xbb\xbf"


def normalize_bytes(data: bytes) -> bytes:
    """Strip a UTF-8 BOM and turn CRLF into LF, so a Windows checkout looks unedited."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    return data.replace(b"\r\n", b"\n")


def compute_checksum(data: bytes) -> str:
    """Return the lower-case hex SHA-256 of the normalised bytes."""
    return checksum_of_normalized(normalize_bytes(data))


def checksum_of_normalized(normalized: bytes) -> str:
    """Return the SHA-256 hex of bytes already passed through normalize_bytes."""
    return hashlib.sha256(normalized).hexdigest()
