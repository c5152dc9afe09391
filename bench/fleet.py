"""Benchmark a fleet run: the shipped schema (sql/) migrated into many local
databases with `--jobs 1, 4, 16`, then a run that finds every one up to date.

Usage: python bench/fleet.py SERVER_URL [--databases N] [--jobs 1 4 16]

schemactl is measured as users install it (see bench.py: a regular, byte-
compiled `pip install .` into build/bench-venv). For each run it reports the wall
time, the time per database, the peak number of schemactl connections on the
server (sampled every 10 ms from pg_stat_activity), and memory: the peak of the
summed RSS of the fleet process and its children, and of the largest single
process (both sampled from /proc every 10 ms). Every database is
created anew before each migrate run and checked afterwards (the run's JSON
document must report every target ok and at the last version).
This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from bench import (  # bench/bench.py: this directory is on sys.path
    SCHEMACTL,
    install_schemactl,
    load_average,
    machine,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sql"
PREFIX = f"schemactl_fleet_bench_{os.getpid()}_"
SAMPLE_SECONDS = 0.01


@dataclass
class Sample:
    """What one fleet run cost."""

    seconds: float
    peak_connections: int
    peak_tree_rss_mib: float
    max_process_rss_mib: float
    exit_code: int
    counts: dict[str, int]


class Peaks:
    """Samples schemactl's connections and the process tree's memory while a
    fleet run goes on, in a thread."""

    def __init__(self, server_url: str, root_pid: int) -> None:
        self._server_url = server_url
        self._root_pid = root_pid
        self._stop = threading.Event()
        self.connections = 0
        self.tree_rss_kib = 0
        self.process_rss_kib = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            while not self._stop.wait(SAMPLE_SECONDS):
                # Only this benchmark's databases: other schemactl runs may
                # share the server.
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                    "= 'schemactl' AND (starts_with(datname, %s) OR datname = "
                    "'postgres' AND query LIKE %s)",
                    (PREFIX, f"%{PREFIX}%"),
                ).fetchone()
                self.connections = max(self.connections, row[0] if row else 0)
                total, largest = tree_rss_kib(self._root_pid)
                self.tree_rss_kib = max(self.tree_rss_kib, total)
                self.process_rss_kib = max(self.process_rss_kib, largest)


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """Return the summed RSS of a process and its descendants, and the largest
    single one (0 if gone)."""
    total = largest = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                total += rss
                largest = max(largest, rss)
        pending += [int(child) for child in children.split()]
    return total, largest


def recreate_all(server_url: str, count: int) -> float:
    """Drop and create the fleet's databases; return the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(server_url, autocommit=True) as conn:
        for number in range(count):
            name = sql.Identifier(f"{PREFIX}{number:03d}")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    return time.monotonic() - started


def drop_all(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (PREFIX,)
        ).fetchall()
        for (name,) in rows:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


def fleet_run(server_url: str, command: str, jobs: int, expected: int) -> Sample:
    """Run one fleet command over every database of this benchmark."""
    query = f"SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%' ORDER BY 1"
    argv = [SCHEMACTL, command, "--targets-query", query, "--jobs", str(jobs)]
    argv += ["--format", "json", "--quiet", "--dir", str(SHIPPED)]
    env = {**os.environ, "DATABASE_URL": server_url}
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    with Peaks(server_url, process.pid) as peaks:
        stdout, _ = process.communicate()
    seconds = time.monotonic() - started
    doc = json.loads(stdout)
    if doc["counts"] != {"ok": expected}:
        raise SystemExit(
            f"bench: {command} --jobs {jobs} did not end well: {doc['counts']}"
        )
    versions = {entry["version_after"] for entry in doc["targets"]}
    if len(versions) != 1 or None in versions:
        raise SystemExit(f"bench: targets ended at different versions: {versions}")
    return Sample(
        seconds,
        peaks.connections,
        peaks.tree_rss_kib / 1024,
        peaks.process_rss_kib / 1024,
        process.returncode,
        doc["counts"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("server_url")
    parser.add_argument("--databases", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    installed = install_schemactl()
    params = {
        k: v for k, v in conninfo_to_dict(args.server_url).items() if k != "dbname"
    }
    server_url = make_conninfo("", **params, dbname="postgres")
    with psycopg.connect(server_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        limit = conn.execute("SHOW max_connections").fetchone()
    files = len(list(SHIPPED.glob("[0-9]*[0-9]_*.sql"))) - len(
        list(SHIPPED.glob("*.down.sql"))
    )
    out = [
        f"Machine: {machine()}; PostgreSQL {row[0] if row else '?'} "
        f"(max_connections {limit[0] if limit else '?'}); load average at start "
        f"{load_average()}.",
        f"{installed}.",
        f"Workload: the shipped schema (sql/, {files} files) into {args.databases} "
        "new local databases, listed by --targets-query.",
        "",
        "| run | wall | per database | peak connections | peak memory, all processes | largest process |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    try:
        for jobs in args.jobs:
            created = recreate_all(server_url, args.databases)
            print(
                f"running: migrate --jobs {jobs} (created in {created:.1f} s)",
                file=sys.stderr,
            )
            sample = fleet_run(server_url, "migrate", jobs, args.databases)
            out.append(row_of(f"migrate --jobs {jobs}", sample, args.databases))
        for jobs in (max(args.jobs),):
            print(f"running: no-op migrate --jobs {jobs}", file=sys.stderr)
            sample = fleet_run(server_url, "migrate", jobs, args.databases)
            out.append(row_of(f"no-op migrate --jobs {jobs}", sample, args.databases))
            sample = fleet_run(server_url, "status", jobs, args.databases)
            out.append(row_of(f"status --jobs {jobs}", sample, args.databases))
    finally:
        drop_all(server_url)
    out += ["", f"Load average at the end: {load_average()}."]
    print("\n".join(out))


def row_of(name: str, sample: Sample, databases: int) -> str:
    return (
        f"| {name} | {sample.seconds:.1f} s | {sample.seconds / databases * 1000:.0f} ms "
        f"| {sample.peak_connections} | {sample.peak_tree_rss_mib:.0f} MiB "
        f"| {sample.max_process_rss_mib:.0f} MiB |"
    )


if __name__ == "__main__":
    main()
