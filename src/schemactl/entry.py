"""The console entry point (`schemactl`, `python -m schemactl`).

SIGINT and SIGTERM become a clean cancel before anything heavier is imported: a
signal that lands while click, rich or psycopg load gives the same one line and
exit code as later on, never a traceback or a half-started run.
"""

from __future__ import annotations

import sys

from schemactl.interrupts import Interrupted, signals_cancel


def main() -> None:
    """Install the signal handlers, then import and run the CLI."""
    with signals_cancel():
        try:
            from schemactl.cli import main as run_cli
        except Interrupted as signal:
            sys.stderr.write(
                f"cancelled by {signal.signal_name}: nothing was changed\n"
            )
            sys.exit(signal.exit_code)
        run_cli()
