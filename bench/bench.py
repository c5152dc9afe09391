"""Benchmark schemactl against its floors and its peers (dbmate, yoyo).

Usage: python bench/bench.py SERVER_URL [--rounds N] [--no-peers] [--seed-mb N]

schemactl is measured as users install it: a regular (not editable) `pip install`
of this checkout into its own virtual environment (build/bench-venv), where pip
byte-compiles every module; the benchmark checks that each module has its
bytecode before it starts. Two floors: `psql` doing the same work (migrations),
and a Python process of that environment that imports psycopg, connects and runs
`select 1`, which no Python client can avoid (short commands).

Builds every workload deterministically in a temporary directory, runs the tools
interleaved for several rounds (a fresh database for every timed migrate), checks
that each run produced the expected result before counting it, and prints min and
median wall time with the ratio of medians to the floor, the median CPU time
(user + system) of each tool's process, and schemactl's peak RSS.
This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the peers (dbmate, yoyo) and psycopg for set-up
BENCH_VENV = ROOT / "build" / "bench-venv"  # schemactl as users install it
SCHEMACTL = str(BENCH_VENV / "bin" / "schemactl")
BENCH_PYTHON = str(BENCH_VENV / "bin" / "python")
SCHEMA_FILE = ROOT / "sql" / "001_initial_schema.sql"
MANY = 1_000
BIG_HISTORY = 10_000
MANY_FILES = 10_000  # one migrate of this many files: time and peak memory
WIDE_TABLES = 25
SEED_ROUNDS = 2  # the seed-data file takes half a minute a run
DB_PREFIX = f"schemactl_bench_{os.getpid()}_"  # two runs on one server


@dataclass
class Server:
    """The PostgreSQL server the benchmark runs against."""

    params: dict[str, str]

    def url(self, dbname: str) -> str:
        return make_conninfo("", **{**self.params, "dbname": dbname})

    def uri(self, dbname: str, scheme: str = "postgres") -> str:
        host = self.params.get("host", "127.0.0.1")
        port = self.params.get("port", "5432")
        user = self.params.get("user", "postgres")
        password = self.params.get("password")
        auth = f"{user}:{password}" if password else user
        return f"{scheme}://{auth}@{host}:{port}/{dbname}"

    def recreate(self, dbname: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            name = sql.Identifier(dbname)
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))

    def drop_all_of_this_run(self) -> None:
        """Drop every database this run made (also after a crash part-way)."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                (DB_PREFIX,),
            ).fetchall()
        for (name,) in rows:
            self.drop(name)

    def drop(self, dbname: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname)
                )
            )

    def scalar(self, dbname: str, query: str) -> object:
        with psycopg.connect(self.url(dbname)) as conn:
            row = conn.execute(query).fetchone()
            return row[0] if row else None


@dataclass
class Command:
    """One tool on one workload: how to prepare, run and check it."""

    tool: str
    argv: Callable[[str], list[str]]
    check: Callable[[str], bool]
    fresh_db: bool = True
    seed: Callable[[str], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds
    failures: int = 0
    max_rss_kib: int = 0


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, int, float]:
    """Run a command with stdout and stderr discarded; return seconds, rc, RSS
    KiB and CPU seconds (user + system)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, os.waitstatus_to_exitcode(status), usage.ru_maxrss, cpu


def write_many(directory: Path, count: int, statement: Callable[[int], str]) -> None:
    """Write `count` one-statement migrations in three layouts (plain, dbmate)."""
    for layout in ("plain", "dbmate"):
        (directory / layout).mkdir(parents=True)
    width = len(str(count))
    with (directory / "all.sql").open("w") as concatenated:
        for i in range(1, count + 1):
            name = f"{i:0{width}d}_m{i:0{width}d}.sql"
            text = statement(i)
            (directory / "plain" / name).write_text(text + "\n")
            (directory / "dbmate" / name).write_text(
                f"-- migrate:up\n{text}\n\n-- migrate:down\n"
            )
            concatenated.write(text + "\n")


def wide_schema_text(tables: int = WIDE_TABLES) -> str:
    """A schema file of `tables` tables with 80 indexes and a trigger on each
    table (W1, the second file): what a real first migration looks like."""
    parts = [
        "CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    NEW.updated_at := now();\n    RETURN NEW;\nEND;\n$$;\n"
    ]
    indexes = 0
    for t in range(1, tables + 1):
        parent = f"w{t - 1:02d}" if t > 1 else None
        reference = (
            f"\n    parent_id bigint REFERENCES {parent} (id)," if parent else ""
        )
        parts.append(
            f"CREATE TABLE w{t:02d} (\n"
            "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            f"{reference}\n"
            "    code text NOT NULL,\n"
            "    label text,\n"
            "    amount numeric(12, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),\n"
            "    tags text[] NOT NULL DEFAULT '{}',\n"
            "    body jsonb,\n"
            "    created_at timestamptz NOT NULL DEFAULT now(),\n"
            "    updated_at timestamptz NOT NULL DEFAULT now()\n"
            ");\n"
            f"COMMENT ON TABLE w{t:02d} IS 'wide table {t}: it''s generated';\n"
            f"CREATE TRIGGER w{t:02d}_touch BEFORE UPDATE ON w{t:02d}\n"
            "    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();\n"
        )
        columns = ["code", "created_at", "label", "(lower(label))", "amount"]
        for column in columns[: 4 if t % 5 else 3]:
            if indexes == 80:
                break
            indexes += 1
            parts.append(f"CREATE INDEX w{t:02d}_i{indexes} ON w{t:02d} ({column});\n")
    assert indexes == 80, indexes
    return "\n".join(parts)


def write_text_workload(directory: Path, file_name: str, text: str) -> None:
    """One migration file in both layouts, and the same text for psql."""
    for layout in ("plain", "dbmate"):
        (directory / layout).mkdir(parents=True)
    (directory / "plain" / file_name).write_text(text)
    (directory / "dbmate" / file_name).write_text(
        f"-- migrate:up\n{text}\n-- migrate:down\n"
    )
    (directory / "all.sql").write_text(text)


def write_seed(directory: Path, megabytes: int) -> int:
    """Write one seed-data migration of INSERTs of about `megabytes` MB; return
    the number of rows."""
    (directory / "plain").mkdir(parents=True)
    rows = 0
    size = 0
    with (directory / "all.sql").open("w") as out:
        out.write("CREATE TABLE seed (id int, label text, price numeric);\n")
        while size < megabytes * 1_000_000:
            line = (
                f"INSERT INTO seed VALUES ({rows}, 'item {rows}: it''s -- not a "
                f"comment; really', {rows * 1.5});\n"
            )
            out.write(line)
            size += len(line)
            rows += 1
    shutil.copy(directory / "all.sql", directory / "plain" / "001_seed.sql")
    return rows


def psql_argv(server: Server, dbname: str, *args: str) -> list[str]:
    psql = shutil.which("psql") or "psql"
    return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url(dbname), *args]


def tables_like(server: Server, pattern: str, expected: int) -> Callable[[str], bool]:
    query = (
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
        f"AND tablename LIKE '{pattern}'"
    )
    return lambda db: server.scalar(db, query) == expected


def tables_present(server: Server, text: str) -> Callable[[str], bool]:
    """Check that every table a schema file creates exists."""
    names = re.findall(r"^CREATE TABLE (\w+)", text, flags=re.M)
    listed = ", ".join(f"'{n}'" for n in names)
    query = (
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
        f"AND tablename IN ({listed})"
    )
    return lambda db: server.scalar(db, query) == len(names)


def history_rows(server: Server, expected: int) -> Callable[[str], bool]:
    query = "SELECT count(*) FROM schema_migrations WHERE success"
    return lambda db: server.scalar(db, query) == expected


def seed_rows_present(server: Server, rows: int) -> Callable[[str], bool]:
    return lambda db: server.scalar(db, "SELECT count(*) FROM seed") == rows


def migrate_commands(
    server: Server, work: Path, check: Callable[[str], bool]
) -> list[Command]:
    """The floor and every tool applying the files under `work` to an empty database."""
    schemactl = SCHEMACTL
    return [
        Command("psql -1 -f (floor)", lambda db: psql_argv(server, db, "-1", "-f", str(work / "all.sql")), check),
        Command("schemactl", lambda db: [schemactl, "migrate", "-d", server.url(db), "--dir", str(work / "plain")], check),
        Command(
            "dbmate",
            lambda db: [str(BIN / "dbmate"), "--url", server.uri(db) + "?sslmode=disable",
                        "--migrations-dir", str(work / "dbmate"), "--no-dump-schema", "up"],
            check,
        ),
        Command(
            "yoyo",
            lambda db: [str(BIN / "yoyo"), "apply", "--batch", "--no-config-file",
                        "--database", server.uri(db, "postgresql+psycopg"), str(work / "plain")],
            check,
        ),
    ]  # fmt: skip


def many_files_commands(server: Server, work: Path) -> list[Command]:
    """psql and schemactl on MANY_FILES `SELECT n;` files: the runner's cost per
    file, with its peak memory. psql's check is its exit code."""
    floor, schemactl = migrate_commands(server, work, lambda db: True)[:2]
    schemactl.check = history_rows(server, MANY_FILES)
    return [floor, schemactl]


def seeded(server: Server, work: Path, tool: str) -> Callable[[str], None]:
    """Prepare a database whose history already holds every file of `work`."""
    schemactl = SCHEMACTL

    def seed(db: str) -> None:
        server.recreate(db)
        argv = {
            "schemactl": [schemactl, "migrate", "-d", server.url(db), "--dir", str(work / "plain")],
            "dbmate": [str(BIN / "dbmate"), "--url", server.uri(db) + "?sslmode=disable",
                       "--migrations-dir", str(work / "dbmate"), "--no-dump-schema", "up"],
            "yoyo": [str(BIN / "yoyo"), "apply", "--batch", "--no-config-file",
                     "--database", server.uri(db, "postgresql+psycopg"), str(work / "plain")],
        }[tool]  # fmt: skip
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    return seed


def python_floor_argv(server: Server, dbname: str) -> list[str]:
    """What no Python client avoids: start, import psycopg, connect, select 1."""
    code = (
        "import sys, psycopg\n"
        "with psycopg.connect(sys.argv[1]) as conn:\n"
        "    conn.execute('select 1').fetchall()\n"
    )
    return [BENCH_PYTHON, "-c", code, server.url(dbname)]


def history_commands(
    server: Server, work: Path, command: str, *, peers: bool
) -> list[Command]:
    """status, verify or a no-op migrate on a database whose history holds every
    file."""
    noop = command == "migrate"
    schemactl = SCHEMACTL
    always = lambda db: True  # noqa: E731 - the exit code is the check here
    commands = [
        Command("python: import psycopg, select 1 (floor)", lambda db: python_floor_argv(server, db), always, fresh_db=False),
        Command(
            "schemactl",
            lambda db: [schemactl, command, "-d", server.url(db), "--dir", str(work / "plain")],
            always, fresh_db=False, seed=seeded(server, work, "schemactl"),
        ),
        Command("psql -c 'select 1'", lambda db: psql_argv(server, db, "-c", "select 1"), always, fresh_db=False),
    ]  # fmt: skip
    if peers and command != "verify":  # neither peer has a verify
        commands += [
            Command(
                "dbmate",
                lambda db: [str(BIN / "dbmate"), "--url", server.uri(db) + "?sslmode=disable",
                            "--migrations-dir", str(work / "dbmate"), "--no-dump-schema",
                            "up" if noop else "status"],
                always, fresh_db=False, seed=seeded(server, work, "dbmate"),
            ),
            Command(
                "yoyo",
                lambda db: [str(BIN / "yoyo"), "apply" if noop else "list", "--batch", "--no-config-file",
                            "--database", server.uri(db, "postgresql+psycopg"), str(work / "plain")],
                always, fresh_db=False, seed=seeded(server, work, "yoyo"),
            ),
        ]  # fmt: skip
    return commands


def run_workload(
    server: Server, name: str, commands: list[Command], rounds: int
) -> dict[str, Result]:
    results = {c.tool: Result() for c in commands}
    databases = {c.tool: f"{DB_PREFIX}{i}" for i, c in enumerate(commands)}
    for command in commands:
        if command.seed is not None:
            command.seed(databases[command.tool])
        elif not command.fresh_db:
            server.recreate(databases[command.tool])
    for round_number in range(rounds):
        # Rotate the order each round so no tool always runs first or last.
        shift = round_number % len(commands)
        for command in commands[shift:] + commands[:shift]:
            db = databases[command.tool]
            if command.fresh_db:
                server.recreate(db)
            elapsed, code, rss, cpu = run_timed(command.argv(db), command.env)
            result = results[command.tool]
            if code == 0 and command.check(db):
                result.times.append(elapsed)
                result.cpu.append(cpu)
                result.max_rss_kib = max(result.max_rss_kib, rss)
            else:
                result.failures += 1
        print(f"  {name}: round {round_number + 1}/{rounds} done", file=sys.stderr)
    for db in databases.values():
        server.drop(db)
    return results


def report(name: str, results: dict[str, Result]) -> list[str]:
    floor_tool = next(iter(results))
    floor = results[floor_tool]
    floor_median = statistics.median(floor.times) if floor.times else None
    lines = [f"| {name} | tool | min (s) | median (s) | x floor | CPU (s) | peak RSS |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for tool, result in results.items():
        if not result.times:
            lines.append(
                f"| | {tool} | failed | failed ({result.failures} runs) | | | |"
            )
            continue
        median = statistics.median(result.times)
        ratio = f"{median / floor_median:.2f}x" if floor_median else ""
        failed = f" ({result.failures} failed)" if result.failures else ""
        rss = f"{result.max_rss_kib // 1024} MiB" if tool == "schemactl" else ""
        cpu = statistics.median(result.cpu)
        lines.append(
            f"| | {tool} | {min(result.times):.3f} | {median:.3f}{failed} | {ratio} | {cpu:.3f} | {rss} |"
        )
    return lines


def bookkeeping_floor(server: Server, statement: str, blocks: int = 12) -> list[str]:
    """Time, per migration, what each piece of a file's bookkeeping adds to the
    server's work, from one client with no start-up cost (the floor under W2).

    Each variant runs `statement` then its pieces, with the production SQL:
    psql's floor (one transaction, one message per statement); then each
    migration in its own transaction with COMMIT in a second message; then
    the history row; the session reset; the migration lock guard; the audit
    log row (all of them: what schemactl sends). Variants rotate over blocks of
    50 migrations.
    """
    from schemactl.config import Settings
    from schemactl.core.history import (
        history_insert_sql,
        log_insert_sql,
        log_table_name,
        qualified_name,
    )
    from schemactl.core.model import MigrationFile
    from schemactl.db.connection import connect
    from schemactl.db.history import ensure_audit_log, ensure_history_table
    from schemactl.db.lock import migration_lock
    from schemactl.db.session import _RESET_IDENTITY, _RESET_SESSION, _SERVER_ELAPSED_MS

    dbname = f"{DB_PREFIX}floor"
    server.recreate(dbname)
    settings = Settings(database_url=server.url(dbname))
    commit = "SET LOCAL synchronous_commit TO off;\nCOMMIT"
    counter = iter(range(1, 10**9))
    with connect(settings) as conn, migration_lock(settings, conn) as lock:
        conn.autocommit = True
        ensure_history_table(conn, settings.table)
        assert ensure_audit_log(conn, settings.table).writable
        table = qualified_name(settings.table.schema, settings.table.name)
        log = qualified_name(settings.table.schema, log_table_name(settings.table.name))
        guard = lock.guard_sql()

        def record(*, logged: bool = False) -> str:
            version = next(counter)
            migration = MigrationFile(version, f"m{version}", "", "0" * 64)
            row = history_insert_sql(table, migration, _SERVER_ELAPSED_MS, success=True)
            if not logged:
                return row
            entry = log_insert_sql(
                log,
                table,
                "apply",
                migration,
                after="'x'",
                execution_ms=_SERVER_ELAPSED_MS,
            )
            return f"{row};\n{entry}"

        variants: dict[str, Callable[[], list[str]]] = {
            "psql -1: statement only, one transaction": lambda: [],
            "+ own transaction, COMMIT in a second message": lambda: [commit],
            "+ history row": lambda: [f"{record()};\n{commit}"],
            "+ session reset": lambda: [f"{_RESET_IDENTITY};\n{_RESET_SESSION};\n{record()};\n{commit}"],
            "+ lock guard": lambda: [f"{_RESET_IDENTITY};\n{_RESET_SESSION};\n{guard};\n{record()};\n{commit}"],
            "+ audit log row (schemactl)": lambda: [f"{_RESET_IDENTITY};\n{_RESET_SESSION};\n{guard};\n{record(logged=True)};\n{commit}"],
        }  # fmt: skip
        per_block = 50
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for block in range(blocks):
            for name in names[block % len(names) :] + names[: block % len(names)]:
                text = statement.replace("{n}", "{}")
                started = time.perf_counter()
                if name.startswith("psql"):
                    conn.execute("BEGIN")
                    for _ in range(per_block):
                        conn.execute(text.format(next(counter)))
                    conn.execute("COMMIT")
                else:
                    for _ in range(per_block):
                        conn.execute(f"BEGIN;\n{text.format(next(counter))}")
                        for message in variants[name]():
                            conn.execute(message)
                times[name].append((time.perf_counter() - started) / per_block * 1000)
    server.drop(dbname)
    lines = [
        f"| `{statement.replace('{n}', 'N')}` | ms per migration | added |",
        "| --- | --- | --- |",
    ]
    previous = None
    for name in names:
        median = statistics.median(times[name])
        added = "" if previous is None else f"{median - previous:+.3f}"
        lines.append(f"| {name} | {median:.3f} | {added} |")
        previous = median
    return lines


def median_ratio(
    argv: list[str], floor_argv: list[str], rounds: int
) -> tuple[float, float]:
    """Return the median seconds of argv and its ratio to floor_argv's median,
    the two interleaved."""
    times: dict[str, list[float]] = {"argv": [], "floor": []}
    for _ in range(rounds):
        for key, command in (("floor", floor_argv), ("argv", argv)):
            elapsed, code, _, _ = run_timed(command, {})
            if code != 0:
                raise SystemExit(f"bench: {command[:2]} exited {code}")
            times[key].append(elapsed)
    median = statistics.median(times["argv"])
    return median, median / statistics.median(times["floor"])


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


INSTALL_CHECK = """
import importlib.util, pathlib, sys
import schemactl
package = pathlib.Path(schemactl.__file__).parent
modules = sorted(package.rglob("*.py"))
missing = [str(m) for m in modules
           if not pathlib.Path(importlib.util.cache_from_source(str(m))).exists()]
editable = not str(package).startswith(sys.prefix)
print(len(modules), len(missing), package, editable)
"""


def install_schemactl() -> str:
    """Install this checkout as users do (a regular pip install: pip compiles
    the bytecode) into BENCH_VENV, check it, and say how."""
    pip = [
        BENCH_PYTHON,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    if not Path(BENCH_PYTHON).exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([*pip, str(ROOT)], check=True)
    else:  # dependencies are there: replace schemactl with this checkout
        subprocess.run([*pip, "--force-reinstall", "--no-deps", str(ROOT)], check=True)
    out = subprocess.run(
        [BENCH_PYTHON, "-c", INSTALL_CHECK],
        check=True, capture_output=True, text=True, cwd=BENCH_VENV,
    ).stdout.split()  # fmt: skip
    modules, missing, package, editable = int(out[0]), int(out[1]), out[2], out[3]
    if missing or editable == "True":
        raise SystemExit(f"bench: {package} is not a compiled regular install")
    return (
        f"schemactl: `pip install .` (regular, not editable) into {BENCH_VENV.name}; "
        f"pip byte-compiled it: {modules} of {modules} modules have their .pyc"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("server_url")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    parser.add_argument("--seed-mb", type=int, default=50)
    args = parser.parse_args()
    installed = install_schemactl()
    server = Server(
        {
            k: str(v)
            for k, v in conninfo_to_dict(args.server_url).items()
            if k != "dbname"
        }
    )
    version = server.scalar("postgres", "SHOW server_version")
    out: list[str] = [
        f"Machine: {machine()}; PostgreSQL {version}; {args.rounds} rounds "
        f"({SEED_ROUNDS} for the seed file and the {MANY_FILES:,}-file migrate); "
        f"load average at start {load_average()}.",
        "",
        f"{installed}; PYTHONDONTWRITEBYTECODE="
        f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}.",
        "",
    ]
    try:
        out += run_all(server, args)
    finally:
        server.drop_all_of_this_run()
    print("\n".join(out))


def run_all(server: Server, args: argparse.Namespace) -> list[str]:
    """Run every workload; return the report's lines."""
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="schemactl-bench-") as tmp:
        root = Path(tmp)
        # Every tool runs from here: no configuration file of this checkout
        # (pyproject.toml) is found and parsed by the commands being timed.
        os.chdir(root)
        many = root / "many"
        write_many(
            many,
            MANY,
            lambda i: f"CREATE TABLE t{i:04d} (id bigint PRIMARY KEY, note text);",
        )
        schema = root / "schema"
        schema_text = SCHEMA_FILE.read_text()
        write_text_workload(schema, "001_schema.sql", schema_text)
        wide = root / "wide"
        wide_text = wide_schema_text()
        write_text_workload(wide, "001_wide.sql", wide_text)
        history = root / "history"
        write_many(history, MANY, lambda i: f"CREATE TABLE h{i:04d} (id int);")
        big = root / "big"
        write_many(big, BIG_HISTORY, lambda i: "SELECT 1;")
        files = root / "files"
        write_many(files, MANY_FILES, lambda i: f"SELECT {i};")
        seed = root / "seed"
        seed_rows = write_seed(seed, args.seed_mb)

        def peers_only(commands: list[Command]) -> list[Command]:
            return commands if args.peers else commands[:2]

        workloads = [
            ("W2: 1,000 one-statement migrations", peers_only(migrate_commands(server, many, tables_like(server, "t%", MANY))), args.rounds),
            ("W1: one 23-table schema file (sql/001)", peers_only(migrate_commands(server, schema, tables_present(server, schema_text))), args.rounds),
            (f"W1: one {WIDE_TABLES}-table file, 80 indexes, {WIDE_TABLES} triggers", peers_only(migrate_commands(server, wide, tables_present(server, wide_text))), args.rounds),
            ("status, 1,000-row history", history_commands(server, history, "status", peers=args.peers), args.rounds),
            ("verify, 1,000-row history", history_commands(server, history, "verify", peers=args.peers), args.rounds),
            ("no-op migrate, 1,000-row history", history_commands(server, history, "migrate", peers=args.peers), args.rounds),
            ("status, 10,000-row history", history_commands(server, big, "status", peers=False), args.rounds),
            (f"{MANY_FILES:,} one-statement migrations", many_files_commands(server, files), SEED_ROUNDS),
            (f"one {args.seed_mb} MB seed-data file ({seed_rows:,} INSERTs)", migrate_commands(server, seed, seed_rows_present(server, seed_rows))[:2], SEED_ROUNDS),
        ]  # fmt: skip
        for name, commands, rounds in workloads:
            print(f"running: {name}", file=sys.stderr)
            out += report(name, run_workload(server, name, commands, rounds))
            out.append("")
        print("running: bookkeeping floor", file=sys.stderr)
        for statement in (
            "CREATE TABLE f{n} (id bigint PRIMARY KEY, note text)",
            "SELECT {n}",
        ):
            out += bookkeeping_floor(server, statement)
            out.append("")
        floor_db = f"{DB_PREFIX}floor"
        server.recreate(floor_db)
        floor = python_floor_argv(server, floor_db)
        help_s, help_ratio = median_ratio([SCHEMACTL, "--help"], floor, args.rounds * 2)
        server.drop(floor_db)
        out.append(
            f"`schemactl --help`: median {help_s:.3f} s, {help_ratio:.2f}x the "
            f"Python floor (interleaved, {args.rounds * 2} runs each)."
        )
        out.append(f"Load average at the end: {load_average()}.")
        os.chdir(ROOT)
    return out


if __name__ == "__main__":
    main()
