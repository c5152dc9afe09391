"""Benchmark schemactl against the psql floor and its peers (dbmate, yoyo).

Usage: python bench/bench.py SERVER_URL [--rounds N] [--peers/--no-peers]

Builds every workload deterministically in a temporary directory, runs the tools
interleaved for several rounds (a fresh database for every timed migrate), checks
that each run produced the expected schema before counting it, and prints min and
median wall time with the ratio of medians to the floor, plus schemactl's peak RSS.
This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import compileall
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
BIN = Path(sys.executable).parent
SCHEMA_FILE = ROOT / "sql" / "001_initial_schema.sql"
MANY = 1_000
BIG_HISTORY = 10_000
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
    failures: int = 0
    max_rss_kib: int = 0


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """Run a command with stdout and stderr discarded; return seconds, rc, RSS KiB."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    return elapsed, os.waitstatus_to_exitcode(status), usage.ru_maxrss


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


def write_schema(directory: Path) -> None:
    text = SCHEMA_FILE.read_text()
    for layout in ("plain", "dbmate"):
        (directory / layout).mkdir(parents=True)
    (directory / "plain" / "001_schema.sql").write_text(text)
    (directory / "dbmate" / "001_schema.sql").write_text(
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


def schema_tables_present(server: Server) -> Callable[[str], bool]:
    """Check that every table the schema file creates exists."""
    names = re.findall(r"^CREATE TABLE (\w+)", SCHEMA_FILE.read_text(), flags=re.M)
    listed = ", ".join(f"'{n}'" for n in names)
    query = (
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
        f"AND tablename IN ({listed})"
    )
    return lambda db: server.scalar(db, query) == len(names)


def seed_rows_present(server: Server, rows: int) -> Callable[[str], bool]:
    return lambda db: server.scalar(db, "SELECT count(*) FROM seed") == rows


def migrate_commands(
    server: Server, work: Path, check: Callable[[str], bool]
) -> list[Command]:
    """The floor and every tool applying the files under `work` to an empty database."""
    schemactl = str(BIN / "schemactl")
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


def seeded(server: Server, work: Path, tool: str) -> Callable[[str], None]:
    """Prepare a database whose history already holds every file of `work`."""
    schemactl = str(BIN / "schemactl")

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


def history_commands(
    server: Server, work: Path, *, noop: bool, peers: bool
) -> list[Command]:
    """status (or a no-op migrate) on a database whose history holds every file."""
    schemactl = str(BIN / "schemactl")
    always = lambda db: True  # noqa: E731 - the exit code is the check here
    commands = [
        Command("psql -c 'select 1' (floor)", lambda db: psql_argv(server, db, "-c", "select 1"), always, fresh_db=False),
        Command(
            "schemactl",
            lambda db: [schemactl, "migrate" if noop else "status", "-d", server.url(db), "--dir", str(work / "plain")],
            always, fresh_db=False, seed=seeded(server, work, "schemactl"),
        ),
    ]  # fmt: skip
    if peers:
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
            elapsed, code, rss = run_timed(command.argv(db), command.env)
            result = results[command.tool]
            if code == 0 and command.check(db):
                result.times.append(elapsed)
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
    lines = [f"| {name} | tool | min (s) | median (s) | x floor | peak RSS |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for tool, result in results.items():
        if not result.times:
            lines.append(f"| | {tool} | failed | failed ({result.failures} runs) | | |")
            continue
        median = statistics.median(result.times)
        ratio = f"{median / floor_median:.2f}x" if floor_median else ""
        failed = f" ({result.failures} failed)" if result.failures else ""
        rss = f"{result.max_rss_kib // 1024} MiB" if tool == "schemactl" else ""
        lines.append(
            f"| | {tool} | {min(result.times):.3f} | {median:.3f}{failed} | {ratio} | {rss} |"
        )
    return lines


def time_once(argv: list[str], repeat: int = 5) -> float:
    return min(run_timed(argv, {})[0] for _ in range(repeat))


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("server_url")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    parser.add_argument("--seed-mb", type=int, default=50)
    args = parser.parse_args()
    # What users install is byte-compiled (pip compiles on install); an
    # editable install in an environment with PYTHONDONTWRITEBYTECODE=1 would
    # compile schemactl's modules on every run instead.
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
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
        f"({SEED_ROUNDS} for the seed file); schemactl runs from compiled bytecode "
        "(compileall of src/ first, as pip does on install).",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="schemactl-bench-") as tmp:
        root = Path(tmp)
        many = root / "many"
        write_many(
            many,
            MANY,
            lambda i: f"CREATE TABLE t{i:04d} (id bigint PRIMARY KEY, note text);",
        )
        schema = root / "schema"
        write_schema(schema)
        history = root / "history"
        write_many(history, MANY, lambda i: f"CREATE TABLE h{i:04d} (id int);")
        big = root / "big"
        write_many(big, BIG_HISTORY, lambda i: "SELECT 1;")
        seed = root / "seed"
        seed_rows = write_seed(seed, args.seed_mb)

        def peers_only(commands: list[Command]) -> list[Command]:
            return commands if args.peers else commands[:2]

        workloads = [
            ("1,000 one-statement migrations", peers_only(migrate_commands(server, many, tables_like(server, "t%", MANY)))),
            ("one 23-table schema file (sql/001)", peers_only(migrate_commands(server, schema, schema_tables_present(server)))),
            ("status, 1,000-row history", history_commands(server, history, noop=False, peers=args.peers)),
            ("no-op migrate, 1,000-row history", history_commands(server, history, noop=True, peers=args.peers)),
            ("status, 10,000-row history", history_commands(server, big, noop=False, peers=False)),
        ]  # fmt: skip
        for name, commands in workloads:
            print(f"running: {name}", file=sys.stderr)
            out += report(name, run_workload(server, name, commands, args.rounds))
            out.append("")
        name = f"one {args.seed_mb} MB seed-data file ({seed_rows:,} INSERTs)"
        commands = migrate_commands(server, seed, seed_rows_present(server, seed_rows))
        print(f"running: {name}", file=sys.stderr)
        out += report(name, run_workload(server, name, commands[:2], SEED_ROUNDS))
        out.append("")
        help_s = time_once([str(BIN / "schemactl"), "--help"])
        new_dir = root / "new"
        new_s = time_once([str(BIN / "schemactl"), "new", "x", "--dir", str(new_dir)])
        out.append(
            f"`schemactl --help`: {help_s:.3f} s; `schemactl new`: {new_s:.3f} s (best of 5)."
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
