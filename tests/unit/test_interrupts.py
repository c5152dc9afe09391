"""Signals as a clean cancel, in-process: held() and kept(), with signals sent
to the main thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from schemactl.interrupts import (
    HANDLED_SIGNALS,
    Interrupted,
    held,
    kept,
    signals_cancel,
)


@pytest.fixture
def cancelling() -> Iterator[None]:
    """schemactl's handlers for the test, pytest's own back after it."""
    before = {number: signal.getsignal(number) for number in HANDLED_SIGNALS}
    try:
        with signals_cancel():
            yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def to_this_thread(number: int) -> None:
    # Sent to the main thread, which blocks it: sent to the process, another
    # thread of pytest's might take it (schemactl has no other thread while
    # it imports).
    signal.pthread_kill(threading.main_thread().ident or 0, number)


def signal_in_a_held_block(reached: list[str]) -> None:
    with held():
        to_this_thread(signal.SIGTERM)
        reached.append("the line after the signal")  # the signal waits


def test_a_signal_in_a_held_block_is_raised_as_the_block_ends(cancelling):
    reached: list[str] = []
    with pytest.raises(Interrupted) as raised:
        signal_in_a_held_block(reached)
    assert reached == ["the line after the signal"]
    assert raised.value.exit_code == 143
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) & set(HANDLED_SIGNALS) == set()


def test_held_unblocks_signals_that_were_blocked_before_it(cancelling):
    # A fleet run starts each child with both signals blocked.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    with held():
        pass
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) & set(HANDLED_SIGNALS) == set()


def test_a_signal_in_a_kept_block_is_forgotten(cancelling):
    with kept():
        to_this_thread(signal.SIGINT)
        done = True
    assert done
    # Forgotten, not pending: the next block raises nothing.
    with held():
        pass
