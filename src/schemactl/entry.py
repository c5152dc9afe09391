"""The console entry point (`schemactl`, `python -m schemactl`).

SIGINT and SIGTERM become a clean cancel before anything heavier is imported: a
signal that lands while click, rich or psycopg load is held until they have
loaded (raised inside an import it could be lost), then gives the same one line
and exit code as later on, never a traceback or a half-started run.

Two start-up and shutdown costs are skipped here, in the console entry only
(tests call ``cli.main`` in-process and keep the interpreter's defaults):

- The cyclic garbage collector is off while modules load (importing psycopg and
  click allocates tens of thousands of objects and triggers collections that find
  nothing), then everything loaded is frozen out of later collections.
- Once the command has finished (its connections closed, its output written),
  the process flushes stdout and stderr and ends with ``os._exit``: tearing down
  the interpreter module by module changes nothing the user can see. If flushing
  fails (a closed pipe), the normal exit runs instead, with its usual report.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn

from schemactl.interrupts import Interrupted, held, signals_cancel


def main() -> None:
    """Install the signal handlers, then import and run the CLI."""
    gc.disable()
    with signals_cancel():
        try:
            with held():  # a signal is handled once the imports are done
                from schemactl.cli import main as run_cli
        except Interrupted as signal:
            _cancelled_before_the_cli(signal)
        gc.freeze()
        gc.enable()
        try:
            run_cli()
        except SystemExit as done:
            _exit_now(done)
            raise
        _exit_now(SystemExit(0))


def _exit_now(done: SystemExit) -> None:
    """End the process at once with `done`'s exit status, as the interpreter
    would (None is 0, an int is itself, anything else is printed and 1)."""
    code = done.code
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        return  # a message to print: let the interpreter do it
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # the normal exit reports it
        return
    os._exit(status)


def _cancelled_before_the_cli(signal: Interrupted) -> NoReturn:
    """Report a signal that landed before the CLI loaded, and exit with its
    code: one line, and under --format json one document on stdout."""
    from schemactl import machine
    from schemactl.errors import Cancelled

    error = Cancelled.nothing_changed(signal)
    sys.stderr.write(error.message + "\n")
    # The command line was not parsed yet: the document cannot name the command.
    document = machine.failure_document(sys.argv[1:], os.environ, "schemactl", error)
    if document is not None:
        sys.stdout.write(document + "\n")
    sys.exit(error.exit_code)
