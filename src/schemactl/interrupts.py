"""SIGINT and SIGTERM as a clean cancel. Stdlib only.

The first signal raises `Interrupted` in the main thread. It subclasses
KeyboardInterrupt on purpose: psycopg, interrupted that way while it waits for the
server, sends a cancel request for the running statement and waits for the
server to stop it before re-raising. The runner then rolls the file back, flushes
earlier migrations, releases its lock and reports one line.

A second signal during that clean-up aborts at once: one line on stderr and an
exit with the same code. The server then rolls back whatever was still open when
it notices the closed connection; nothing is committed that was not already.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; exit_code is 128 + the signal number."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        """Return 130 for SIGINT, 143 for SIGTERM (the shell's convention)."""
        return 128 + self.signal_number

    @property
    def signal_name(self) -> str:
        """Return SIGINT or SIGTERM."""
        return signal.Signals(self.signal_number).name


_ABORT_MESSAGE = (
    "aborted: second signal during clean-up; the server rolls back the running "
    "migration when it notices the closed connection\n"
)


class _Handler:
    """Raises Interrupted on the first signal, exits at once on the next.

    Inside `deferred()` the first signal is not raised where it lands: it is
    kept, the block's callback is called (to cancel the running statement) and
    `raise_pending()` raises it at a point the code chose.
    """

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signal_number: int, frame: FrameType | None) -> None:
        if self.fired:
            os.write(2, _ABORT_MESSAGE.encode())
            os._exit(128 + signal_number)
        self.fired = True
        interrupted = Interrupted(signal_number)
        if _deferral.on_signal is None:
            raise interrupted
        _deferral.pending = interrupted
        _deferral.on_signal()


class _Deferral:
    """What `deferred()` set up: the callback, and the signal it kept."""

    def __init__(self) -> None:
        self.on_signal: Callable[[], None] | None = None
        self.pending: Interrupted | None = None


_deferral = _Deferral()


@contextmanager
def deferred(on_signal: Callable[[], None]) -> Iterator[None]:
    """Keep a signal that lands in the block instead of raising it there.

    Used around a statement: raised inside psycopg, where a callback (a server
    notice) may be running, the exception would be printed and lost. on_signal
    cancels the statement instead, so the block ends soon; call
    `raise_pending()` when it has. Blocks nest: an inner one's callback
    replaces the outer one's until it ends.
    """
    outer, _deferral.on_signal = _deferral.on_signal, on_signal
    try:
        yield
    finally:
        _deferral.on_signal = outer


@contextmanager
def kept() -> Iterator[None]:
    """Keep (and then forget) a signal that lands in the block: for the work
    after the work, such as printing a result, when a cancel would only tell
    a lie ("nothing was changed") or cut the report short. A block inside
    that defers with a callback of its own (fleet.py) takes precedence."""
    with deferred(lambda: None):
        yield
    take_pending()


def raise_pending() -> None:
    """Raise the signal a `deferred()` block kept, if any."""
    pending = take_pending()
    if pending is not None:
        raise pending


def pending_signal() -> Interrupted | None:
    """Return the signal a `deferred()` block kept, if any (for its callback)."""
    return _deferral.pending


def take_pending() -> Interrupted | None:
    """Return (and forget) the signal a `deferred()` block kept, if any: for a
    caller that reports it rather than raising it."""
    pending, _deferral.pending = _deferral.pending, None
    return pending


@contextmanager
def held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (blocked: the kernel keeps them pending)
    while the block runs; one that arrived meanwhile is delivered as the block
    ends, where the caller handles it. Main thread only.

    For start-up: raised inside an import, the exception can be swallowed by
    importlib (a module lock's callback) or break a class being created, and
    the signal is lost. Blocked in the main thread only: schemactl starts no
    other thread before its imports are done.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        yield
    finally:
        # Unblocked rather than restored: a fleet run starts its children with
        # these signals blocked (fleet.py), and that must not last.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)


@contextmanager
def signals_cancel() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into `Interrupted` while the block runs; ignore
    them after it, while the process exits (the command's work is done and
    reported: a late signal must not turn it into a traceback or a kill).

    Does nothing outside the main thread (signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Handler()
    for number in HANDLED_SIGNALS:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number in HANDLED_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
