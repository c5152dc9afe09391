"""Run one command over many databases: at most `jobs` at a time, each target
in a `schemactl` process of its own, one result per target.

A process per target, rather than a thread, keeps every guarantee of a single
run on each target, unchanged: its own migration lock, its own clean cancel
(psycopg cancels a running statement only from the main thread, on a signal),
its own error boundary and JSON document. The children run in a session of
their own, so a Ctrl-C on the terminal reaches this process only: it starts no
further target and passes the signal on once to each running one, which rolls
its file back and reports. If this process dies (kill -9), the kernel sends
each child SIGTERM (Linux), which cancels it the same way.

The connection string reaches a child in its environment (DATABASE_URL), never
on its command line, which other users of the machine can read.

Imports no psycopg and prints nothing: progress goes to the observer, and the
result is data (core/fleet.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, Any

from schemactl.core.fleet import (
    FleetResult,
    Outcome,
    Target,
    TargetResult,
    outcome_of,
    stops_fail_fast,
)
from schemactl.errors import EXIT_FAILED
from schemactl.interrupts import (
    HANDLED_SIGNALS,
    deferred,
    pending_signal,
    take_pending,
)
from schemactl.observer import FleetObserver

# How much of a child's stderr is kept to explain a run without a document.
_LAST_WORDS_LIMIT = 500


@dataclass
class _Running:
    """A child process and where its output goes."""

    index: int
    target: Target
    process: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]
    started: float
    told: bool = False

    def tell(self, number: int) -> None:
        """Pass a signal on, once: a second one would abort the child's
        clean-up. os.kill, not Popen.send_signal: that polls, and would reap a
        child this module reaps itself (its pid cannot be reused before)."""
        if not self.told:
            self.told = True
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, number)


def run_fleet(
    command: str,
    arguments: Sequence[str],
    targets: Sequence[Target],
    *,
    environ: Mapping[str, str],
    jobs: int,
    fail_fast: bool = False,
    observer: FleetObserver | None = None,
) -> FleetResult:
    """Run ``schemactl --format json --quiet COMMAND ARGUMENTS`` once per
    target, at most `jobs` at once, and return every target's result.

    `environ` is each child's environment but for DATABASE_URL, which is the
    target's. A target that fails does not stop the others, unless
    `fail_fast`: then no further target starts, and those are skipped.
    SIGINT or SIGTERM starts no further target, passes the signal to the
    running ones and waits for their reports (FleetResult.cancelled_by).
    """
    _allow_open_files(jobs)
    run = _FleetRun(command, arguments, targets, environ, fail_fast)
    run.observer = observer or FleetObserver()
    with deferred(run.pass_signal_on):
        try:
            run.until_done(jobs)
        finally:
            _end_all(run.running)  # after an unexpected error: leave no child
        take_pending()  # run.cancelled_by has it, if it came in time
        run.skip_the_rest(
            "cancelled"
            if run.cancelled_by
            else "an earlier target failed (--fail-fast)"
        )
    return FleetResult(
        command,
        [result for result in run.results if result is not None],
        jobs=jobs,
        fail_fast=fail_fast,
        cancelled_by=run.cancelled_by,
    )


class _FleetRun:
    """The state of one fleet run: targets to start, children running, and
    the results so far (in the order the targets were listed)."""

    def __init__(
        self,
        command: str,
        arguments: Sequence[str],
        targets: Sequence[Target],
        environ: Mapping[str, str],
        fail_fast: bool,
    ) -> None:
        self.command = command
        # -P: the working directory is not put on sys.path, so a schemactl.py
        # (or click.py) of the user's there is never imported in place of ours.
        self.argv = [sys.executable, "-P", "-m", "schemactl", "--format", "json"]
        self.argv += ["--quiet", command, *arguments]
        self.environ = environ
        self.fail_fast = fail_fast
        self.observer = FleetObserver()
        self.total = len(targets)
        self.queue = list(reversed(list(enumerate(targets))))  # popped from the end
        self.running: dict[int, _Running] = {}
        self.results: list[TargetResult | None] = [None] * len(targets)
        self.stopping = False
        self.cancelled_by: int | None = None  # 130 or 143
        self.done = 0

    def until_done(self, jobs: int) -> None:
        """Start targets while fewer than `jobs` run, and collect each as it
        ends, until none is left to start (or to wait for)."""
        while self.queue or self.running:
            while self.queue and len(self.running) < jobs and not self.stopping:
                self.start_next()
            if not self.running:
                return
            self.collect_one()

    def start_next(self) -> None:
        index, target = self.queue.pop()
        try:
            child = _start(self.argv, target, self.environ, index)
        except OSError as exc:  # no process: too many open files...
            self.finish(_not_started(target, exc), index)
            return
        self.running[child.process.pid] = child
        if pending_signal() is not None:  # it landed while the child started
            self.pass_signal_on()

    def collect_one(self) -> None:
        """Wait for a child to end and record its result. Python retries the
        wait after a signal (PEP 475): pass_signal_on has told the children,
        and their exits end it."""
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # reaped elsewhere: their statuses are lost
            for lost in self.running.values():
                lost.process.returncode = EXIT_FAILED
                self.finish(_collect(lost, self.command), lost.index)
            self.running.clear()
            return
        finished = self.running.pop(pid, None)
        if finished is not None:
            finished.process.returncode = os.waitstatus_to_exitcode(status)
            self.finish(_collect(finished, self.command), finished.index)

    def finish(self, result: TargetResult, index: int) -> None:
        self.results[index] = result
        self.done += 1
        self.observer.target_finished(result, self.done, self.total)
        if self.fail_fast and stops_fail_fast(result.outcome):
            self.stopping = True

    def pass_signal_on(self) -> None:
        """The signal handler's callback: start nothing more, tell each child.
        A signal once every target has ended cancels nothing."""
        if not (self.queue or self.running):
            return
        self.stopping = True
        number = _deferred_signal()
        self.cancelled_by = self.cancelled_by or 128 + number
        for child in self.running.values():
            child.tell(number)

    def skip_the_rest(self, why: str) -> None:
        for index, target in reversed(self.queue):
            self.finish(
                TargetResult(target, Outcome.SKIPPED, None, last_words=why), index
            )
        self.queue.clear()


def _start(
    argv: list[str], target: Target, environ: Mapping[str, str], index: int
) -> _Running:
    """Start the child for one target, its output in temporary files (a pipe
    could fill up and stall it)."""
    # Closed by _collect once the child has ended.
    stdout = tempfile.TemporaryFile()  # noqa: SIM115
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env={**environ, "DATABASE_URL": target.conninfo},
        start_new_session=True,
        preexec_fn=_child_set_up(os.getpid()),
    )
    return _Running(index, target, process, stdout, stderr, time.monotonic())


def _collect(child: _Running, command: str) -> TargetResult:
    """Read a finished child's document (None when it printed none, or not
    the command's) and the last line of its stderr."""
    duration = time.monotonic() - child.started
    exit_code = child.process.returncode
    document = _read_document(child.stdout)
    last_words = _last_line(child.stderr)
    # "schemactl": a signal stopped the child before it knew its command.
    if document is not None and document.get("command") not in (command, "schemactl"):
        document = None
        last_words = f"its output is not a schemactl {command} document"
    if exit_code < 0:  # killed by a signal it could not handle (SIGKILL...)
        last_words = f"killed by {signal.Signals(-exit_code).name}"
        exit_code = 128 - exit_code
    child.stdout.close()
    child.stderr.close()
    return TargetResult(
        child.target,
        outcome_of(exit_code, document),
        exit_code,
        duration,
        document,
        last_words,
    )


def _read_document(stream: IO[bytes]) -> dict[str, Any] | None:
    stream.seek(0)
    try:
        document = json.loads(stream.read().decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _last_line(stream: IO[bytes]) -> str:
    stream.seek(0)
    lines = stream.read().decode("utf-8", errors="replace").splitlines()
    last = next((line for line in reversed(lines) if line.strip()), "")
    return last[:_LAST_WORDS_LIMIT]


def _not_started(target: Target, exc: OSError) -> TargetResult:
    """The result of a target whose process could not be started."""
    reason = f"cannot start a schemactl process: {exc.strerror or exc}"
    return TargetResult(target, Outcome.CRASHED, EXIT_FAILED, last_words=reason)


# Open files this process needs besides its children's output (two temporary
# files each): Python, the terminal, a connection.
_SPARE_FILES = 64


def _allow_open_files(jobs: int) -> None:
    """Raise the soft limit on open files to what `jobs` children need, as far
    as the hard limit allows (a common soft limit of 1,024 is too few for
    hundreds of jobs); a child that still cannot start is reported, not fatal."""
    import resource  # only fleet runs pay for it

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * jobs + _SPARE_FILES  # 2 temporary files, 2 pipe ends at start
    if soft != resource.RLIM_INFINITY and soft < needed:
        ceiling = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def _end_all(running: dict[int, _Running]) -> None:
    """Cancel and reap the children still running (SIGTERM: a clean cancel)."""
    for child in running.values():
        child.tell(signal.SIGTERM)
    for pid, child in running.items():
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)
        child.stdout.close()
        child.stderr.close()
    running.clear()


def _deferred_signal() -> int:
    """Return the number of the signal being handled (SIGTERM if unknown)."""
    pending = pending_signal()
    return signal.SIGTERM if pending is None else pending.signal_number


def _child_set_up(parent: int) -> Callable[[], None]:
    """Return what a child runs before schemactl starts.

    SIGINT and SIGTERM are blocked: one that arrives while Python starts stays
    pending until schemactl's handlers are in place (entry.py unblocks them),
    instead of killing the child half-started. On Linux, the kernel is asked
    for SIGTERM when this process dies (PR_SET_PDEATHSIG), and the child
    cancels itself if that has already happened.
    """
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes  # only fleet runs pay for it

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def set_up() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        if prctl is not None:
            prctl(pr_set_pdeathsig, signal.SIGTERM)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)

    return set_up
