"""The ``schemactl`` command line: parse options, call the runner, render, exit.

Click only; rendering lives in render.py and the work in runner.py (database) and
offline.py (no database). Connection and directory options are accepted before and
after the command name.

runner.py loads psycopg, which takes longer to import than everything else
together, so the commands that need it import it when they run: `--help`, `new`
and `sql` start without it. Those imports hold SIGINT and SIGTERM back until
they are done (interrupts.held): raised inside an import, a signal can be lost.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.core import ParameterSource

from schemactl import __version__, machine
from schemactl.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DIR,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_POOLER,
    DEFAULT_TABLE,
    DEFAULT_TABLE_LOCK_BACKOFF,
    DEFAULT_TABLE_LOCK_RETRIES,
    DEFAULT_TABLE_LOCK_TIMEOUT,
    MAX_RETRIES,
    MAX_SECONDS,
    POOLER_CHOICES,
    Settings,
    parse_table_name,
)
from schemactl.config_file import (
    MAX_JOBS,
    FileSettings,
    find_config_file,
    load_config_file,
)
from schemactl.errors import (
    EXIT_FAILED,
    EXIT_OK,
    Cancelled,
    SchemactlError,
    UsageError,
)
from schemactl.interrupts import (
    Interrupted,
    held,
    kept,
    signals_cancel,
)
from schemactl.machine import FORMATS
from schemactl.redaction import known_secrets, redact
from schemactl.render import (
    DEFAULT_HEARTBEAT,
    FleetProgress,
    MigrateProgress,
    Output,
    config_payload,
    render_baseline,
    render_config,
    render_error,
    render_fleet,
    render_lint,
    render_log,
    render_migrate,
    render_repair,
    render_repair_plan,
    render_rollback,
    render_status,
    render_verify,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from schemactl.config_file import TargetGroup
    from schemactl.core.fleet import Target
    from schemactl.core.model import MigrationFile
    from schemactl.core.planning import RepairPlan, RollbackStep

F = TypeVar("F", bound=Callable[..., Any])


class Seconds(click.FloatRange):
    """A number of seconds from 0 to MAX_SECONDS; NaN and infinity refused
    (a range check alone lets NaN through)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, max=MAX_SECONDS)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail("NaN is not a number of seconds", param, ctx)
        return seconds


SECONDS = Seconds()

SHARED_OPTIONS = ("database_url", "directory", "table", "connect_timeout")
# Which configuration file, and which of its environments: accepted before and
# after the command name, like the shared options.
FILE_OPTIONS = ("environment", "config_path")


def shared_options(*, with_env: bool) -> Callable[[F], F]:
    """Add the connection and directory options; env vars only at group level."""

    def envvar(name: str) -> str | None:
        return name if with_env else None

    def decorate(function: F) -> F:
        options = [
            click.option(
                "-d",
                "--database-url",
                envvar=envvar("DATABASE_URL"),
                help="PostgreSQL URL or conninfo [env: DATABASE_URL; default: libpq's "
                "PG* variables].",
            ),
            click.option(
                "--dir",
                "directory",
                type=click.Path(file_okay=False, path_type=Path),
                envvar=envvar("SCHEMACTL_DIR"),
                help="Migrations directory [env: SCHEMACTL_DIR; default: "
                f"{DEFAULT_DIR}].",
            ),
            click.option(
                "--table",
                envvar=envvar("SCHEMACTL_TABLE"),
                help="History table [SCHEMA.]NAME [env: SCHEMACTL_TABLE; default: "
                f"{DEFAULT_TABLE}].",
            ),
            click.option(
                "--connect-timeout",
                type=SECONDS,
                envvar=envvar("SCHEMACTL_CONNECT_TIMEOUT"),
                help="Seconds to wait for the server [env: SCHEMACTL_CONNECT_TIMEOUT; "
                f"default: {DEFAULT_CONNECT_TIMEOUT:g}].",
            ),
            click.option(
                "--env",
                "environment",
                metavar="NAME",
                envvar=envvar("SCHEMACTL_ENV"),
                help="Use the configuration file's [environments.NAME] "
                "[env: SCHEMACTL_ENV].",
            ),
            click.option(
                "--config",
                "config_path",
                type=click.Path(dir_okay=False, path_type=Path),
                envvar=envvar("SCHEMACTL_CONFIG"),
                help="Configuration file [env: SCHEMACTL_CONFIG; default: "
                "schemactl.toml or [tool.schemactl] in pyproject.toml, from the "
                "working directory upwards].",
            ),
        ]
        for option in reversed(options):
            function = option(function)
        function = format_option(traceback_option(function), with_env=with_env)
        return progress_options(function, with_env=with_env)

    return decorate


_TRACEBACK = "schemactl.traceback"
_SECRETS = "schemactl.secrets"
_FORMAT = "schemactl.format"
_ARGUMENTS = "schemactl.arguments"
# The command's JSON document so far: what the error handler prints with the
# error (the target, the migrations applied before a failure).
_DOCUMENT = "schemactl.document"


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Return an option callback that keeps a given value on the root context:
    the error handler and the progress display read it there, wherever the
    option was given (before or after the command name; a command's own comes
    after the group's and wins)."""

    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.find_root().meta[key] = value

    return callback


def format_option(function: F, *, with_env: bool) -> F:
    """Add --format, accepted before and after the command name."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS, case_sensitive=False),
        expose_value=False,
        callback=_remember(_FORMAT),  # Choice gives the canonical, lower case
        envvar="SCHEMACTL_FORMAT" if with_env else None,
        help="Output: text, json (one document on stdout, also on failure) or "
        "github (text, and annotations for GitHub Actions) [env: "
        "SCHEMACTL_FORMAT; default: text].",
    )(function)


def _json_alias(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().meta[_FORMAT] = "json"


def json_flag(function: F) -> F:
    """Add --json: the same as --format json (kept for status, verify, config)."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_json_alias,
        help="Print one JSON document (the same as --format json).",
    )(function)


_QUIET = "schemactl.quiet"
_HEARTBEAT = "schemactl.heartbeat"


def progress_options(function: F, *, with_env: bool) -> F:
    """Add --quiet and --heartbeat, accepted before and after the command name."""
    function = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        default=None,
        expose_value=False,
        callback=_remember(_QUIET),
        help="Print only the result and problems: no target line, no progress, "
        "no line per file.",
    )(function)
    return click.option(
        "--heartbeat",
        type=SECONDS,
        expose_value=False,
        callback=_remember(_HEARTBEAT),
        envvar="SCHEMACTL_HEARTBEAT" if with_env else None,
        help="Piped output: say a statement is still running every SECONDS, 0: "
        f"never [env: SCHEMACTL_HEARTBEAT; default: {DEFAULT_HEARTBEAT:g}].",
    )(function)


def output_format(ctx: click.Context) -> str:
    """Return the format asked for (text unless --format or an env var said)."""
    return str(ctx.find_root().meta.get(_FORMAT, "text"))


def begin_document(ctx: click.Context, command: str, **keys: Any) -> dict[str, Any]:
    """Start the command's document; the error handler completes it on failure."""
    doc: dict[str, Any] = {"command": command, **keys}
    ctx.find_root().meta[_DOCUMENT] = doc
    return doc


def print_document(ctx: click.Context, exit_code: int = 0, **keys: Any) -> None:
    """Print the command's document with keys added (json format only)."""
    doc = {**ctx.find_root().meta.get(_DOCUMENT, {}), **keys}
    command = doc.pop("command", ctx.info_name)
    click.echo(machine.dumps(machine.document(command, exit_code, **doc)))


class RecordingProgress(MigrateProgress):
    """Shows progress, and records in the command's document what happened: the
    target, and each migration applied or reverted (kept when a later one fails).
    """

    def __init__(
        self,
        out: Output,
        err: Output,
        doc: dict[str, Any],
        *,
        quiet: bool,
        heartbeat: float,
    ) -> None:
        super().__init__(out, err, quiet=quiet, heartbeat=heartbeat)
        self._doc = doc

    def target_chosen(self, target: str, table: str) -> None:
        self._doc.update(target=target, table=table)
        super().target_chosen(target, table)

    def plan_ready(self, current_version: int | None, planned: int) -> None:
        # The version before the run, in the document on success and failure
        # alike (a fleet run's table shows "before -> after" from it).
        self._doc["previous_version"] = current_version
        super().plan_ready(current_version, planned)

    def migration_applied(self, migration: MigrationFile, execution_ms: int) -> None:
        applied = self._doc.setdefault("applied", [])
        applied.append(machine.migration_json(migration, execution_ms=execution_ms))
        super().migration_applied(migration, execution_ms)

    def migration_reverted(self, step: RollbackStep, execution_ms: int) -> None:
        reverted = self._doc.setdefault("rolled_back", [])
        reverted.append(
            machine.migration_json(
                step.migration,
                down_file=str(step.down_path),
                execution_ms=execution_ms,
            )
        )
        super().migration_reverted(step, execution_ms)


def _progress(
    ctx: click.Context, doc: dict[str, Any]
) -> tuple[Output, RecordingProgress]:
    """Return where the command's lines go, and its progress observer: with
    --format json every line goes to stderr, stdout holds the document only."""
    err = stderr()
    out = err if output_format(ctx) == "json" else stdout()
    meta = ctx.find_root().meta
    progress = RecordingProgress(
        out,
        err,
        doc,
        quiet=bool(meta.get(_QUIET, False)),
        heartbeat=float(meta.get(_HEARTBEAT, DEFAULT_HEARTBEAT)),
    )
    return out, progress


def print_annotations(lines: list[str]) -> None:
    """Print GitHub Actions workflow commands (stdout, where the runner reads)."""
    for line in lines:
        click.echo(line)


def traceback_option(function: F) -> F:
    """Add --traceback, accepted before and after the command name."""
    return click.option(
        "--traceback",
        is_flag=True,
        expose_value=False,
        callback=_remember(_TRACEBACK),
        help="Show a traceback on errors (debugging); the exit code stays the same.",
    )(function)


def lock_timeout_option(function: F) -> F:
    """Add --lock-timeout to a command that takes the migration lock."""
    return click.option(
        "--lock-timeout",
        type=SECONDS,
        default=DEFAULT_LOCK_TIMEOUT,
        envvar="SCHEMACTL_LOCK_TIMEOUT",
        show_default=True,
        help="Seconds to wait for another schemactl run's migration lock (an "
        "advisory lock), 0: try once [env: SCHEMACTL_LOCK_TIMEOUT].",
    )(function)


def pooler_option(function: F) -> F:
    """Add --pooler to a command that takes the migration lock."""
    return click.option(
        "--pooler",
        type=click.Choice(POOLER_CHOICES),
        default=DEFAULT_POOLER,
        envvar="SCHEMACTL_POOLER",
        show_default=True,
        help="auto: refuse to change a database reached through a connection "
        "pooler; session: every pooler in front of it uses session pooling "
        "(pool_mode = session) [env: SCHEMACTL_POOLER].",
    )(function)


def table_lock_timeout_option(function: F) -> F:
    """Add --table-lock-timeout: how long one statement waits for a table lock."""
    return click.option(
        "--table-lock-timeout",
        type=SECONDS,
        default=DEFAULT_TABLE_LOCK_TIMEOUT,
        envvar="SCHEMACTL_TABLE_LOCK_TIMEOUT",
        show_default=True,
        help="Seconds a statement waits for a lock on a table (PostgreSQL's "
        "lock_timeout), 0: no limit [env: SCHEMACTL_TABLE_LOCK_TIMEOUT].",
    )(function)


def statement_options(function: F) -> F:
    """Add the options that bound and retry each statement of a file."""
    options = [
        table_lock_timeout_option,
        click.option(
            "--table-lock-retries",
            type=click.IntRange(min=0, max=MAX_RETRIES),
            default=DEFAULT_TABLE_LOCK_RETRIES,
            envvar="SCHEMACTL_TABLE_LOCK_RETRIES",
            show_default=True,
            help="After a table lock timeout, roll the file back and run it again "
            "this many times [env: SCHEMACTL_TABLE_LOCK_RETRIES].",
        ),
        click.option(
            "--table-lock-backoff",
            type=SECONDS,
            default=DEFAULT_TABLE_LOCK_BACKOFF,
            envvar="SCHEMACTL_TABLE_LOCK_BACKOFF",
            show_default=True,
            help="Seconds before the first retry; doubled for each next one, at "
            "most 30 [env: SCHEMACTL_TABLE_LOCK_BACKOFF].",
        ),
        click.option(
            "--statement-timeout",
            type=SECONDS,
            envvar="SCHEMACTL_STATEMENT_TIMEOUT",
            help="Seconds any one statement may run, 0: no limit [env: "
            "SCHEMACTL_STATEMENT_TIMEOUT; default: the server's setting].",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


FLEET_OPTIONS = ("targets", "group", "targets_query", "jobs", "fail_fast")


def fleet_options(function: F) -> F:
    """Add the options that run a command over many databases."""
    options = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="URL|SERVICE",
            help="Run on this database; repeat for more. A URL or conninfo "
            "string, or a libpq service name.",
        ),
        click.option(
            "--group",
            metavar="NAME",
            help="Run on every database of the configuration file's [groups.NAME].",
        ),
        click.option(
            "--targets-query",
            metavar="SQL",
            help="Run on every database this query lists (run read-only on the "
            "-d database; first column: a database name on that server, or a "
            "connection string).",
        ),
        click.option(
            "--jobs",
            type=click.IntRange(min=1, max=MAX_JOBS),
            metavar="N",
            help="With many targets: how many run at once [env: SCHEMACTL_JOBS; "
            "default: the group's jobs, else 1].",
        ),
        click.option(
            "--fail-fast",
            is_flag=True,
            help="With many targets: start no further one after a target fails.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


# Settings field -> its default, for every option a file may also set.
DEFAULTS: dict[str, Any] = {
    "database_url": None,
    "directory": DEFAULT_DIR,
    "table": DEFAULT_TABLE,
    "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
    "lock_timeout": DEFAULT_LOCK_TIMEOUT,
    "table_lock_timeout": DEFAULT_TABLE_LOCK_TIMEOUT,
    "table_lock_retries": DEFAULT_TABLE_LOCK_RETRIES,
    "table_lock_backoff": DEFAULT_TABLE_LOCK_BACKOFF,
    "statement_timeout": None,
    "pooler": DEFAULT_POOLER,
}
_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def build_settings(
    ctx: click.Context, *, needs_database: bool = True, **local: Any
) -> Settings:
    """Resolve the settings of a command (see resolve_settings)."""
    return resolve_settings(ctx, needs_database=needs_database, **local)[0]


def resolve_settings(
    ctx: click.Context, *, needs_database: bool = True, **local: Any
) -> tuple[Settings, dict[str, str], FileSettings | None]:
    """Resolve every setting: option > environment variable > configuration
    file > default. Return the settings, where each came from, and the file.

    The shared options are read from the command, then from the group (which
    carries their environment variables). The file's database is read only when
    it is the one used; a command that needs none (new, sql, config) gets None
    and the reason, rather than an error, when it cannot be read.
    """
    given = _given_options(ctx, local)
    environment, env_origin = given.get("environment", (None, ""))
    config_path = given.get("config_path", (None, ""))[0]
    file = _config_file(config_path, environment, env_origin)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, default in DEFAULTS.items():
        if name in given:
            values[name], origins[name] = given[name]
        elif file is not None and name in file.values:
            values[name], origins[name] = file.values[name], file.origins[name]
        else:
            values[name], origins[name] = default, "default"
    if "database_url" not in given and file is not None and file.database:
        origins["database_url"] = file.origins["database_url"]
        try:
            values["database_url"] = file.database.url(os.environ)
        except UsageError:
            if needs_database:
                raise
            origins["database_url"] += " (not set)"
    elif (
        environment is not None
        and file is not None
        and file.database
        and origins["database_url"].startswith("env ")
    ):
        _warn_overridden(environment, origins["database_url"])
    url = values["database_url"]
    secrets = known_secrets(url)
    # Kept for _fail's --traceback: sys.argv is not always the arguments (an
    # embedding caller, CliRunner), so it alone may not name the URL.
    ctx.find_root().meta[_SECRETS] = secrets
    settings = Settings(
        directory=values["directory"],
        table=parse_table_name(values["table"]),
        database_url=url,
        connect_timeout=values["connect_timeout"],
        lock_timeout=values["lock_timeout"],
        table_lock_timeout=values["table_lock_timeout"],
        table_lock_retries=values["table_lock_retries"],
        table_lock_backoff=values["table_lock_backoff"],
        statement_timeout=values["statement_timeout"],
        pooler=values["pooler"],
        secrets=secrets,
    )
    return settings, origins, file


def _given_options(
    ctx: click.Context, local: dict[str, Any]
) -> dict[str, tuple[Any, str]]:
    """Return the options given on the command line or by an environment
    variable, each with where it came from; the command's before the group's."""
    given: dict[str, tuple[Any, str]] = {}
    root = ctx.find_root()
    for context, params in ((root, root.params), (ctx, local)):
        for name, value in params.items():
            source = context.get_parameter_source(name)
            if value is not None and source in _GIVEN:
                given[name] = (value, _describe_source(context, name, source))
    return given


def _describe_source(
    ctx: click.Context, name: str, source: ParameterSource | None
) -> str:
    option = next(p for p in ctx.command.params if p.name == name)
    if source is ParameterSource.ENVIRONMENT:
        return f"env {option.envvar}"
    return f"option {option.opts[-1]}"


def _config_file(
    path: Path | None, environment: str | None, env_origin: str
) -> FileSettings | None:
    """Load the configuration file: the one named, or the one found upwards."""
    found = path if path is not None else _find_from_working_directory()
    if found is None:
        if environment is not None:
            named = env_origin.removeprefix("option ").removeprefix("env ")
            raise UsageError(
                f"{named} {environment}: no configuration file found "
                "(schemactl.toml, or [tool.schemactl] in pyproject.toml, from the "
                "working directory upwards)"
            )
        return None
    return load_config_file(found, environment)


def _find_from_working_directory() -> Path | None:
    try:
        here = Path.cwd()
    except OSError:  # the working directory was removed: no file applies
        return None
    return find_config_file(here)


def _warn_overridden(environment: str, origin: str) -> None:
    # The documented order, but a stale DATABASE_URL in a shell silently
    # beating `--env local` is how production gets migrated by mistake.
    click.echo(
        f"warning: the database of environment {environment!r} is overridden by "
        f"{origin.removeprefix('env ')} (unset it, or pass -d)",
        err=True,
    )


# --- many targets --------------------------------------------------------------

# Environment variables a child run must not inherit: the parent passes what
# they resolved to instead (the target's URL, every setting, JSON output).
_PARENT_ONLY_ENV = (
    "DATABASE_URL",
    "SCHEMACTL_ENV",
    "SCHEMACTL_CONFIG",
    "SCHEMACTL_FORMAT",
    "SCHEMACTL_JOBS",
)


def take_fleet_options(
    ctx: click.Context, local: dict[str, Any]
) -> dict[str, Any] | None:
    """Remove the fleet options from a command's options; return them when
    they name targets (the command then runs over many databases), else None.

    Raises:
        UsageError: for an empty --target, --group or --targets-query (an unset
            shell variable must not turn a fleet run into a run on -d), and for
            --jobs or --fail-fast without targets.
    """
    fleet = {name: local.pop(name) for name in FLEET_OPTIONS}
    for name in ("group", "targets_query"):
        if fleet[name] is not None and not fleet[name].strip():
            raise UsageError(f"--{name.replace('_', '-')} is empty")
    if any(not target.strip() for target in fleet["targets"]):
        raise UsageError("--target is empty")
    if fleet["targets"] or fleet["group"] is not None or fleet["targets_query"]:
        return fleet
    for name in ("jobs", "fail_fast"):
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            option = name.replace("_", "-")
            raise UsageError(
                f"--{option} needs targets: --target, --group or --targets-query"
            )
    return None


def run_fleet_command(
    ctx: click.Context,
    command: str,
    arguments: list[str],
    fleet: dict[str, Any],
    local: dict[str, Any],
) -> None:
    """Run `command` with `arguments` on every target, print one table (or one
    JSON document) and exit with the worst target's exit code."""
    begin_document(
        ctx,
        command,
        jobs=None,
        fail_fast=fleet["fail_fast"],
        cancelled=False,
        counts={},
        targets=[],
    )
    sources = [fleet["targets"], fleet["group"], fleet["targets_query"]]
    if sum(1 for source in sources if source) > 1:
        raise UsageError("use one of --target, --group and --targets-query")
    settings, _, file = resolve_settings(
        ctx, needs_database=fleet["targets_query"] is not None, **local
    )
    group = None
    if fleet["group"] is not None:
        if file is None:
            raise UsageError(
                f"--group {fleet['group']}: no configuration file found "
                "(schemactl.toml, or [tool.schemactl] in pyproject.toml)"
            )
        group = file.group(fleet["group"])
        if group.query is not None:  # the file's database is needed after all
            settings = build_settings(ctx, **local)
    # A problem every target would report (no directory, two files of one
    # version) is reported once, before anything starts.
    with held():
        from schemactl.core.discovery import discover_migrations
    discover_migrations(settings.directory)
    targets = _fleet_targets(fleet, group, settings)
    group_jobs = group.jobs if group is not None else None
    jobs = fleet["jobs"] or _jobs_from_environment() or group_jobs or 1
    with held():  # imported when run: see module docstring
        from schemactl import fleet as fleet_runner

    meta = ctx.find_root().meta
    # While targets run, run_fleet passes a signal on to them; once they have
    # all ended, one is kept, not raised: the report is written whole, with
    # the run's exit code (not "cancelled: nothing was changed").
    with kept():
        result = fleet_runner.run_fleet(
            command,
            arguments,
            targets,
            environ=_child_environ(settings, file),
            jobs=jobs,
            fail_fast=fleet["fail_fast"],
            observer=FleetProgress(stderr(), quiet=bool(meta.get(_QUIET, False))),
        )
        if output_format(ctx) == "json":
            print_document(ctx, result.exit_code, **machine.fleet_json(result))
        else:
            render_fleet(result, stdout())
    ctx.exit(result.exit_code)


def _jobs_from_environment() -> int | None:
    """Return SCHEMACTL_JOBS, read only by a fleet run (a bad value must not
    break a single-database command).

    Raises:
        UsageError: when it is not a whole number from 1 to MAX_JOBS.
    """
    value = os.environ.get("SCHEMACTL_JOBS", "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_JOBS:
        raise UsageError(
            f"SCHEMACTL_JOBS={value!r}: expected a whole number from 1 to {MAX_JOBS}"
        )
    return int(value)


def _fleet_targets(
    fleet: dict[str, Any], group: TargetGroup | None, settings: Settings
) -> list[Target]:
    """Return the targets, each database once, in the order listed.

    Raises:
        UsageError: for a connection string libpq cannot read.
    """
    with held():
        from schemactl.core.fleet import named_target
        from schemactl.db.admin import list_targets, unique_targets  # psycopg

    query = fleet["targets_query"] or (group.query if group is not None else None)
    if query is not None:
        return unique_targets(list_targets(settings, query))
    names = fleet["targets"] or (group.targets if group is not None else ())
    return unique_targets([named_target(name) for name in names])


def _child_environ(settings: Settings, file: FileSettings | None) -> dict[str, str]:
    """Return the environment of each target's run: this one's, with every
    setting as resolved here (so a child reads no option differently)."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in _PARENT_ONLY_ENV
    }
    environ.update(
        SCHEMACTL_DIR=str(settings.directory.resolve()),
        SCHEMACTL_TABLE=str(settings.table),
        SCHEMACTL_CONNECT_TIMEOUT=repr(settings.connect_timeout),
        SCHEMACTL_LOCK_TIMEOUT=repr(settings.lock_timeout),
        SCHEMACTL_TABLE_LOCK_TIMEOUT=repr(settings.table_lock_timeout),
        SCHEMACTL_TABLE_LOCK_RETRIES=str(settings.table_lock_retries),
        SCHEMACTL_TABLE_LOCK_BACKOFF=repr(settings.table_lock_backoff),
        SCHEMACTL_POOLER=settings.pooler,
    )
    if settings.statement_timeout is not None:
        environ["SCHEMACTL_STATEMENT_TIMEOUT"] = repr(settings.statement_timeout)
    if file is not None:
        # The file found here, not one a child might find elsewhere.
        environ["SCHEMACTL_CONFIG"] = str(file.path.resolve())
    return environ


class SchemactlGroup(click.Group):
    """Renders a SchemactlError and exits with its code: the CLI's one catch.

    click's own usage errors echo what was typed ("No such command
    'postgresql://u:pw@h/db'"): their message is redacted before click shows it.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        arguments = list(args)  # click consumes args while it parses
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:
            raise _usage_failure(exc, arguments, None) from None
        except Interrupted as signal:  # before click turns it into "Aborted!"
            _cancelled_while_parsing(signal, arguments)
        ctx.meta[_ARGUMENTS] = arguments
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            raise _usage_failure(exc, ctx.meta.get(_ARGUMENTS, []), ctx) from None
        except SchemactlError as error:
            self._fail(ctx, error, error.exit_code)
        except Interrupted as signal:  # before click turns it into "Aborted!"
            cancelled = Cancelled.nothing_changed(signal)
            self._fail(ctx, cancelled, cancelled.exit_code)

    @staticmethod
    def _fail(ctx: click.Context, error: SchemactlError, exit_code: int) -> None:
        if ctx.meta.get(_TRACEBACK):
            # Asked for, redacted, and never a different exit code.
            import traceback  # only --traceback pays for importing it

            secrets = (*ctx.meta.get(_SECRETS, ()), *_process_secrets())
            sys.stderr.write(redact(traceback.format_exc(), secrets))
        render_error(error, stderr())
        fmt = output_format(ctx)
        if fmt == "json":
            doc = dict(ctx.meta.get(_DOCUMENT, {}))
            if "cancelled" in doc:  # a fleet run's, stopped before its targets ran
                doc["cancelled"] = isinstance(error, Cancelled)
            command = doc.pop("command", ctx.invoked_subcommand or "schemactl")
            failed = machine.document(
                command, exit_code, **doc, error=machine.error_json(error)
            )
            click.echo(machine.dumps(failed))
        elif fmt == "github":
            print_annotations(machine.error_annotations(error))
        ctx.exit(exit_code)


@click.group(
    cls=SchemactlGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@shared_options(with_env=True)
@click.version_option(__version__, prog_name="schemactl")
def cli(**_: Any) -> None:
    """Apply numbered plain-SQL migrations to PostgreSQL.

    \b
    Exit codes: 0 success; 1 a migration failed or drift was found;
    2 usage error or invalid migrations directory; 3 the database could not
    be used (cannot connect, connection lost, read-only, a transaction
    pooler, a lock wait ran out); 130/143 cancelled by SIGINT/SIGTERM.
    """


@cli.command()
@shared_options(with_env=False)
@lock_timeout_option
@pooler_option
@statement_options
@click.option("--to", "target", type=int, metavar="V", help="Apply up to version V.")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be applied; change nothing."
)
@click.option(
    "--allow-out-of-order",
    is_flag=True,
    help="Apply pending versions lower than the highest applied one.",
)
@fleet_options
@click.pass_context
def migrate(
    ctx: click.Context,
    /,
    target: int | None,
    dry_run: bool,
    allow_out_of_order: bool,
    **local: Any,
) -> None:
    """Apply pending migrations in order, each in its own transaction.

    \b
    Examples:
      schemactl migrate
      schemactl migrate --to 3 --dry-run
      schemactl -d postgresql://app@db/app migrate --lock-timeout 120
      schemactl migrate --group tenants --jobs 8
    """
    fleet = take_fleet_options(ctx, local)
    if fleet is not None:
        arguments = _flag("--dry-run", dry_run)
        arguments += _flag("--allow-out-of-order", allow_out_of_order)
        arguments += [] if target is None else ["--to", str(target)]
        run_fleet_command(ctx, "migrate", arguments, fleet, local)
    with held():  # imported when run: see module docstring
        from schemactl import runner

    doc = begin_document(ctx, "migrate", target=None, table=None, applied=[])
    settings = build_settings(ctx, **local)
    out, progress = _progress(ctx, doc)
    try:
        result = runner.migrate(
            settings,
            target=target,
            dry_run=dry_run,
            allow_out_of_order=allow_out_of_order,
            observer=progress,
        )
    finally:
        # The work is done (or has failed and says so): a signal now is kept,
        # or the report would end in "cancelled: nothing was changed".
        with kept():
            progress.shutdown()
    with kept():
        if output_format(ctx) == "json":
            print_document(
                ctx,
                dry_run=result.dry_run,
                planned=[machine.migration_json(m) for m in result.planned],
                current_version=result.current_version,
            )
        else:
            render_migrate(result, out)


@cli.command()
@shared_options(with_env=False)
@table_lock_timeout_option
@json_flag
@click.option(
    "--exit-code",
    "with_exit_code",
    is_flag=True,
    help="Exit 1 on drift, 4 when migrations are pending (no drift), else 0.",
)
@fleet_options
@click.pass_context
def status(ctx: click.Context, /, with_exit_code: bool, **local: Any) -> None:
    """Show every version with its state and when it was applied.

    \b
    Examples:
      schemactl status
      schemactl status --json | jq '.migrations[] | select(.state != "applied")'
      schemactl status --exit-code || echo "pending or drift"
      schemactl status --target service=shard1 --target service=shard2
    """
    fleet = take_fleet_options(ctx, local)
    if fleet is not None:
        arguments = _flag("--exit-code", with_exit_code)
        run_fleet_command(ctx, "status", arguments, fleet, local)
    with held():  # imported when run: see module docstring
        from schemactl import reports

    begin_document(ctx, "status")
    report = reports.status(build_settings(ctx, **local))
    exit_code = report.exit_code if with_exit_code else EXIT_OK
    fmt = output_format(ctx)
    if fmt == "json":
        print_document(
            ctx,
            exit_code,
            table=report.table,
            current_version=report.current_version,
            migrations=[machine.entry_json(e) for e in report.entries],
        )
    else:
        render_status(report, stdout())
    if fmt == "github":
        print_annotations(machine.drift_annotations(report.drift, "warning"))
    ctx.exit(exit_code)


@cli.command("log")
@shared_options(with_env=False)
@table_lock_timeout_option
@json_flag
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    metavar="N",
    help="Only the newest N rows.",
)
@click.option("--all", "everything", is_flag=True, help="Every row (no --limit).")
@click.pass_context
def log_command(
    ctx: click.Context, /, limit: int, everything: bool, **local: Any
) -> None:
    """Show the audit log: every apply, rollback, repair and baseline, who ran
    it (login role, application, address) and when, oldest first.

    \b
    Examples:
      schemactl log --limit 20
      schemactl log --json | jq '.rows[] | select(.action == "rollback")'
    """
    with held():  # imported when run: see module docstring
        from schemactl import reports

    begin_document(ctx, "log")
    if everything and ctx.get_parameter_source("limit") is ParameterSource.COMMANDLINE:
        raise UsageError("use --limit or --all, not both")
    report = reports.log(
        build_settings(ctx, **local), limit=None if everything else limit
    )
    if output_format(ctx) == "json":
        print_document(
            ctx,
            table=report.table,
            log_table=report.log_table,
            exists=report.exists,
            rows=[machine.log_row_json(row) for row in report.rows],
        )
    else:
        render_log(report, stdout())


@cli.command()
@shared_options(with_env=False)
@table_lock_timeout_option
@click.option("--strict", is_flag=True, help="Fail on pending migrations too.")
@click.option(
    "--allow-out-of-order",
    is_flag=True,
    help="Do not count pending versions below the highest applied one as drift.",
)
@json_flag
@fleet_options
@click.pass_context
def verify(
    ctx: click.Context,
    /,
    strict: bool,
    allow_out_of_order: bool,
    **local: Any,
) -> None:
    """Check for drift without changing anything (for CI).

    Exits 1 when an applied file was edited or is missing, a row is marked failed,
    or a pending version is lower than the highest applied one; with --strict,
    also when migrations are pending.

    \b
    Examples:
      schemactl verify
      schemactl verify --strict --json
      schemactl verify --targets-query "SELECT datname FROM pg_database
        WHERE datname LIKE 'tenant%'"
    """
    fleet = take_fleet_options(ctx, local)
    if fleet is not None:
        arguments = _flag("--strict", strict)
        arguments += _flag("--allow-out-of-order", allow_out_of_order)
        run_fleet_command(ctx, "verify", arguments, fleet, local)
    with held():  # imported when run: see module docstring
        from schemactl import reports

    begin_document(ctx, "verify")
    report = reports.verify(
        build_settings(ctx, **local),
        strict=strict,
        allow_out_of_order=allow_out_of_order,
    )
    fmt = output_format(ctx)
    if fmt == "json":
        print_document(
            ctx,
            report.exit_code,
            table=report.table,
            current_version=report.current_version,
            strict=report.strict,
            drift=[machine.entry_json(e) for e in report.drift],
            pending=[machine.entry_json(e) for e in report.pending],
        )
    else:
        render_verify(report, stdout())
    if fmt == "github":
        pending_level = "error" if strict else "warning"
        print_annotations(
            machine.drift_annotations(report.drift, "error")
            + machine.pending_annotations(report.pending, pending_level)
        )
    ctx.exit(report.exit_code)


@cli.command()
@shared_options(with_env=False)
@lock_timeout_option
@pooler_option
@statement_options
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help="Revert the newest N migrations [default: 1].",
)
@click.option(
    "--to", "target", type=int, metavar="V", help="Revert every version above V."
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would be reverted; change nothing."
)
@click.option(
    "--yes",
    is_flag=True,
    help="Do not ask before reverting more than one migration on a terminal.",
)
@click.pass_context
def rollback(
    ctx: click.Context,
    /,
    steps: int | None,
    target: int | None,
    dry_run: bool,
    yes: bool,
    **local: Any,
) -> None:
    """Revert applied migrations with their down files, newest first.

    Each down file and the removal of its history row commit together. Refuses,
    naming the file, when a down file is missing; nothing runs then.

    \b
    Examples:
      schemactl rollback               # the newest migration
      schemactl rollback --steps 3
      schemactl rollback --to 1        # everything above version 1
      schemactl rollback --to 1 --dry-run

    On a terminal, reverting more than one migration asks first (--yes does
    not); the question comes before the migration lock is taken.
    """
    if steps is not None and target is not None:
        raise UsageError("use --steps or --to, not both")
    with held():  # imported when run: see module docstring
        from schemactl import runner

    doc = begin_document(ctx, "rollback", target=None, table=None, rolled_back=[])
    settings = build_settings(ctx, **local)
    out, progress = _progress(ctx, doc)

    def confirm(plan: list[RollbackStep]) -> bool:
        doc["planned"] = [machine.migration_json(step.migration) for step in plan]
        if yes or len(plan) < 2 or not sys.stdin.isatty():
            return True
        for step in plan:
            stderr().line(f"  revert {step.migration.label} with {step.down_path.name}")
        return _ask(f"roll back these {len(plan)} migrations?")

    try:
        result = runner.rollback(
            settings,
            steps=steps,
            target=target,
            dry_run=dry_run,
            confirm=confirm,
            observer=progress,
        )
    finally:
        with kept():
            progress.shutdown()
    with kept():
        if output_format(ctx) == "json":
            planned = [machine.migration_json(s.migration) for s in result.planned]
            print_document(ctx, dry_run=result.dry_run, planned=planned)
        else:
            render_rollback(result, out)


@cli.command()
@shared_options(with_env=False)
@lock_timeout_option
@pooler_option
@table_lock_timeout_option
@click.option(
    "--version",
    "version",
    type=int,
    required=True,
    metavar="V",
    help="Record every file up to V as applied.",
)
@click.pass_context
def baseline(ctx: click.Context, /, version: int, **local: Any) -> None:
    """Record files up to a version as applied without running them.

    For a database built another way (e.g. with psql -f). Refuses when the
    history is not empty.

    \b
    Example:
      schemactl baseline --version 2
    """
    with held():  # imported when run: see module docstring
        from schemactl import runner

    doc = begin_document(ctx, "baseline")
    settings = build_settings(ctx, **local)
    out, progress = _progress(ctx, doc)
    recorded = runner.baseline(settings, version=version, observer=progress)
    with kept():
        if output_format(ctx) == "json":
            print_document(ctx, recorded=[machine.migration_json(m) for m in recorded])
        else:
            render_baseline(recorded, out)


@cli.command()
@shared_options(with_env=False)
@lock_timeout_option
@pooler_option
@table_lock_timeout_option
@click.option(
    "--yes", is_flag=True, help="Apply without asking (needed off a terminal)."
)
@click.pass_context
def repair(ctx: click.Context, /, yes: bool, **local: Any) -> None:
    """Realign stored checksums with the files and delete failed rows.

    Shows exactly what it will change first, then asks; --yes skips the question
    and is required when stdin is not a terminal.

    \b
    Example:
      schemactl repair --yes
    """
    doc = begin_document(ctx, "repair")
    settings = build_settings(ctx, **local)
    out, progress = _progress(ctx, doc)

    def confirm(plan: RepairPlan) -> bool:
        doc["plan"] = machine.repair_plan_json(plan)
        render_repair_plan(plan, out)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("repair changes the history: pass --yes to confirm")
        return _ask("apply these changes?")

    with held():  # imported when run: see module docstring
        from schemactl import runner

    result = runner.repair(settings, confirm=confirm, observer=progress)
    with kept():
        if output_format(ctx) == "json":
            print_document(
                ctx, plan=machine.repair_plan_json(result.plan), repaired=result.applied
            )
        else:
            render_repair(result, out)


@cli.command()
@shared_options(with_env=False)
@click.argument("name")
@click.option(
    "--down", "with_down", is_flag=True, help="Also create the .down.sql file."
)
@click.option(
    "--timestamp",
    is_flag=True,
    help="Version the file by the UTC time (YYYYMMDDHHMMSS), as is done anyway "
    "once the newest file is versioned so: two branches never collide.",
)
@click.pass_context
def new(
    ctx: click.Context, /, name: str, with_down: bool, timestamp: bool, **local: Any
) -> None:
    """Create the next migration file. No database needed.

    The version is the highest one plus 1, zero-padded like the existing files
    (at least 3 digits); characters outside [A-Za-z0-9_] in NAME become _.

    \b
    Examples:
      schemactl new add_users            # sql/003_add_users.sql
      schemactl new "add index" --down   # and sql/004_add_index.down.sql
      schemactl new add_users --timestamp  # sql/20261205141500_add_users.sql
    """
    begin_document(ctx, "new")
    settings = build_settings(ctx, needs_database=False, **local)
    out = stdout()
    with held():  # imported when run: see module docstring
        from schemactl import offline

    created = offline.new_migration(
        settings.directory, name, with_down=with_down, timestamp=timestamp
    )
    if output_format(ctx) == "json":
        print_document(ctx, created=[str(path) for path in created])
        return
    for path in created:
        out.line(f"created {path}")


@cli.command("sql")
@shared_options(with_env=False)
@click.option("--to", "target", type=int, metavar="V", help="Stop after version V.")
@click.pass_context
def sql_command(ctx: click.Context, /, target: int | None, **local: Any) -> None:
    """Print a psql script that does what migrate would (the psql -f fallback).

    The script creates the history table if needed and applies each migration
    not yet in it, with its history row, guarded so a second run applies
    nothing. No database needed to generate it.

    \b
    Example:
      schemactl sql > migrate.sql
      psql -v ON_ERROR_STOP=1 -f migrate.sql "$DATABASE_URL"
    """
    with held():  # imported when run: see module docstring
        from schemactl import offline

    begin_document(ctx, "sql")
    settings = build_settings(ctx, needs_database=False, **local)
    chunks = offline.sql_script(settings, target=target)
    if output_format(ctx) == "json":
        print_document(ctx, script="".join(chunks))
        return
    for chunk in chunks:
        click.echo(chunk, nl=False)


@cli.command("config")
@shared_options(with_env=False)
@lock_timeout_option
@pooler_option
@statement_options
@json_flag
@click.pass_context
def config_command(ctx: click.Context, /, **local: Any) -> None:
    """Show the settings a command would use here, and where each came from.

    Option > environment variable > configuration file > default. The password
    is masked. No database needed.

    \b
    Examples:
      schemactl config
      schemactl config --env staging --json
    """
    begin_document(ctx, "config")
    settings, origins, file = resolve_settings(ctx, needs_database=False, **local)
    if output_format(ctx) == "json":
        print_document(ctx, **config_payload(settings, origins, file))
    else:
        render_config(settings, origins, file, stdout())


@cli.command("lint")
@shared_options(with_env=False)
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--squawk",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Use squawk's rules (pip install squawk-cli): when installed, always, "
    "or never.",
)
@click.pass_context
def lint_command(
    ctx: click.Context, /, paths: tuple[Path, ...], squawk: str, **local: Any
) -> None:
    """Check migration files without a database: what migrate would refuse, and
    statements that lock a table with data for long. Exit 1 on any finding.

    Lints PATHS, or every file in the migrations directory. For a pre-commit
    hook, see the README.

    \b
    Examples:
      schemactl lint
      schemactl lint --format github sql/005_add_index.sql
    """
    with held():  # imported when run: see module docstring
        from schemactl import lint

    begin_document(ctx, "lint")
    settings = build_settings(ctx, needs_database=False, **local)
    report = lint.lint(settings.directory, paths, squawk=squawk)
    exit_code = EXIT_FAILED if report.findings else EXIT_OK
    fmt = output_format(ctx)
    if fmt == "json":
        print_document(
            ctx,
            exit_code,
            files=report.files,
            squawk=report.squawk,
            findings=[machine.finding_json(f) for f in report.findings],
        )
    else:
        render_lint(report, stdout())
    if fmt == "github":
        print_annotations([machine.finding_annotation(f) for f in report.findings])
    ctx.exit(exit_code)


@cli.command("wait")
@shared_options(with_env=False)
@click.option(
    "--timeout",
    type=SECONDS,
    default=60,
    show_default=True,
    help="Seconds to wait before giving up (exit 3).",
)
@click.pass_context
def wait_command(ctx: click.Context, /, timeout: float, **local: Any) -> None:
    """Wait until the server accepts connections (for containers starting
    side by side). Whether the database exists does not matter (as pg_isready).

    \b
    Example:
      schemactl wait --timeout 30 && schemactl create-db && schemactl migrate
    """
    with held():  # imported when run: see module docstring
        from schemactl import server

    begin_document(ctx, "wait")
    settings = build_settings(ctx, **local)

    def waiting(target: str) -> None:
        stderr().line(f"waiting for {target} to accept connections")

    waited = server.wait(settings, timeout, waiting)
    if output_format(ctx) == "json":
        print_document(ctx, target=server.target(settings), waited_seconds=waited)
    else:
        stdout().line(f"ready after {waited:.1f} s")


@cli.command("create-db")
@shared_options(with_env=False)
@click.pass_context
def create_db_command(ctx: click.Context, /, **local: Any) -> None:
    """Create the target database if it does not exist (for local and CI
    databases). Connects to the server's `postgres` database to do it.

    \b
    Example:
      schemactl -d postgresql://app@localhost/app_test create-db
    """
    with held():  # imported when run: see module docstring
        from schemactl import server

    begin_document(ctx, "create-db")
    change = server.create_db(build_settings(ctx, **local))
    if output_format(ctx) == "json":
        print_document(ctx, database=change.name, created=change.changed)
    elif change.changed:
        stdout().line(f"created database {change.name}")
    else:
        stdout().line(f"database {change.name} already exists")


@cli.command("drop-db")
@shared_options(with_env=False)
@click.option("--yes", is_flag=True, help="Do not ask (required off a terminal).")
@click.pass_context
def drop_db_command(ctx: click.Context, /, yes: bool, **local: Any) -> None:
    """Drop the target database, with all its data. Asks first; --yes is
    required when stdin is not a terminal. Refuses while anyone is connected to
    it, and never drops postgres, template0 or template1.

    \b
    Example:
      schemactl -d postgresql://app@localhost/app_test drop-db --yes
    """
    with held():  # imported when run: see module docstring
        from schemactl import server

    begin_document(ctx, "drop-db")
    settings = build_settings(ctx, **local)

    def confirm(name: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("drop-db deletes a database: pass --yes to confirm")
        return _ask(
            f"drop database {name} of {server.target(settings)}, with all its data?"
        )

    change = server.drop_db(settings, confirm)
    if output_format(ctx) == "json":
        print_document(ctx, database=change.name, dropped=change.changed)
    elif change.changed:
        stdout().line(f"dropped database {change.name}")
    elif yes or not sys.stdin.isatty():
        stdout().line(f"database {change.name} does not exist")
    else:
        stdout().line("nothing was dropped")


def _flag(name: str, given: bool) -> list[str]:
    return [name] if given else []


def _ask(question: str) -> bool:
    """Ask on the terminal (stderr: stdout may be a JSON document)."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort as abort:
        # click turns Ctrl-C (and SIGTERM, see interrupts.py) into Abort,
        # keeping the signal only as the exception's context.
        if isinstance(abort.__context__, Interrupted):
            raise abort.__context__ from None
        raise


def _usage_failure(
    exc: click.ClickException, arguments: list[str], ctx: click.Context | None
) -> click.ClickException:
    """Return click's error, redacted; under --format json, first print it as a
    document (click prints the usage text on stderr and exits 2 after).

    The command line did not parse, so the format is read from it as written.
    """
    redacted = _redacted(exc)
    error = UsageError(redacted.format_message())
    error.exit_code = redacted.exit_code
    command = ctx.invoked_subcommand if ctx is not None else None
    document = machine.failure_document(
        arguments, os.environ, command or _command_named(arguments), error
    )
    if document is not None:
        click.echo(document)
    return redacted


def _cancelled_while_parsing(signal: Interrupted, arguments: list[str]) -> NoReturn:
    """Report a signal that landed while click parsed the command line (no
    command has run) and exit with its code; a document under --format json."""
    error = Cancelled.nothing_changed(signal)
    render_error(error, stderr())
    document = machine.failure_document(
        arguments, os.environ, _command_named(arguments), error
    )
    if document is not None:
        click.echo(document)
    sys.exit(error.exit_code)


def _command_named(arguments: list[str]) -> str:
    names = [a for a in arguments if a in cli.commands]
    return names[0] if names else "schemactl"


def _redacted(exc: click.ClickException) -> click.ClickException:
    message = redact(exc.format_message(), _process_secrets())
    if isinstance(exc, click.UsageError):
        return click.UsageError(message, exc.ctx)  # keeps the usage lines
    return click.ClickException(message)  # the others all exit 1


def _process_secrets() -> tuple[str, ...]:
    """Every password the process could know: URLs on the command line, in
    DATABASE_URL, and PGPASSWORD."""
    return known_secrets(os.environ.get("DATABASE_URL"), *sys.argv)


def main() -> None:
    """Run the CLI with SIGINT/SIGTERM as a clean cancel; an unexpected error
    prints a traceback with secrets removed."""
    try:
        with signals_cancel():
            cli.main(prog_name="schemactl")
    except Exception:  # the last net: redact secrets before anything is shown
        import traceback  # only a crash pays for importing it

        sys.stderr.write(redact(traceback.format_exc(), _process_secrets()))
        sys.exit(1)
