"""How long to wait before each retry of a file whose table lock wait timed out.
Pure."""

from __future__ import annotations

# Doubling from --table-lock-backoff, capped so a long series of retries still
# tries again at a steady pace.
MAX_BACKOFF_SECONDS = 30.0


def backoff_delays(retries: int, first: float) -> list[float]:
    """Return the delay before each of `retries` retries: first, 2x, 4x, ... capped."""
    return [min(first * 2**attempt, MAX_BACKOFF_SECONDS) for attempt in range(retries)]
