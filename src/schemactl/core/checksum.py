"""Normalise migration bytes and compute their SHA-256 checksum. Stdlib only."""

from __future__ import annotations

import hashlib
from pathlib import Path

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


CHUNK_SIZE = 1 << 20


def checksum_of_file(path: str | Path, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the checksum of a file's normalised bytes, read a chunk at a time
    (memory stays flat however large the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:  # noqa: PTH123 - str locations: see model
        head = handle.read(len(UTF8_BOM))
        pending = b"" if head == UTF8_BOM else head
        while chunk := handle.read(chunk_size):
            pending += chunk
            # A CR at the end may start a CRLF split across two chunks.
            keep = 1 if pending.endswith(b"\r") else 0
            digest.update(pending[: len(pending) - keep].replace(b"\r\n", b"\n"))
            pending = pending[len(pending) - keep :]
        digest.update(pending.replace(b"\r\n", b"\n"))
    return digest.hexdigest()
