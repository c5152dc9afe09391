"""What the agent store raises (besides what the SDK and the tools raise)."""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """A request the store refuses: it names the run and what state it is in."""


class LockLost(StoreError):
    """The run's lock went with its connection, or with the store: the run
    starts no more tools and is not written (another process may own it)."""

    def __init__(self, run_id: Any) -> None:
        super().__init__(
            f"run {run_id} lost its lock (its lock connection was lost, or the "
            "store was closed): it may have been taken over by another process, "
            "so it starts no more tools and is not written"
        )


class RecordingFailed(Exception):
    """The run ended but what it produced could not be written.

    ``result`` is the SDK's result all the same: the model calls and the tools'
    side effects happened. Not a StoreError: running it again would repeat
    them.
    """

    def __init__(self, run_id: Any, result: Any, cause: BaseException) -> None:
        super().__init__(
            f"run {run_id} ended but could not be recorded: "
            f"{type(cause).__name__}: {cause}"
        )
        self.run_id = run_id
        self.result = result
