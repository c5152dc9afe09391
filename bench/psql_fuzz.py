"""Long differential campaign: generated migration files, real psql vs schemactl.

Usage: python bench/psql_fuzz.py SERVER_URL [--examples N] [--minutes M] [--seed S]
                                 [--families a,b,...] [--no-corpus] [--max-minimise K]

Uses the oracle and the generator of tests/cli/test_psql_differential.py (a proxy
between psql and the server records what psql sends; see that module). Runs the
hand-written corpus (tests/unit/psql_corpus.py) first, then up to --examples
generated files (or until --minutes is up). Every disagreement is grouped by its
kind (and, for refusals, schemactl's message), the shortest file of each group is
minimised (whole lines, then tokens, then characters, keeping the same kind of
disagreement), and each distinct minimal file is printed with what psql sent and
what schemactl made of it. One throwaway database `schemactl_psqldiff_*`, dropped
at the end. Exits 1 when any disagreement was found, 0 otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cli.test_psql_differential import (  # noqa: E402
    ALL_FAMILIES,
    HEADER,
    Disagreement,
    OracleError,
    PsqlDiffer,
    Server,
    compare,
    explain,
    file_bytes,
    read_like_psql,
    sql_files,
    throwaway_database,
)
from tests.unit.psql_corpus import CASES  # noqa: E402

_TOKEN_RE = re.compile(r"\s+|\w+|.", re.DOTALL)


@dataclass
class Found:
    """The shortest file seen for one group of disagreements."""

    data: bytes
    disagreement: Disagreement
    count: int = 1


class Campaign:
    def __init__(self, differ: PsqlDiffer, *, deadline: float) -> None:
        self.differ = differ
        self.deadline = deadline
        self.groups: dict[str, Found] = {}
        self.runs = 0
        self.oracle_errors = 0

    def check(self, data: bytes) -> Disagreement | None:
        try:
            run = self.differ.run_psql(data)
        except OracleError:
            self.oracle_errors += 1
            return None
        self.runs += 1
        return compare(data, run)

    def record(self, data: bytes) -> None:
        disagreement = self.check(data)
        if disagreement is None:
            return
        key = disagreement.group
        found = self.groups.get(key)
        if found is None:
            self.groups[key] = Found(data, disagreement)
            print(f"  new: {key}", flush=True)
        else:
            found.count += 1
            if len(data) < len(found.data):
                found.data, found.disagreement = data, disagreement

    def minimise(self, found: Found, key: str, budget: int) -> bytes:
        header = HEADER.encode()
        start = found.data
        prefix = b""
        if start.startswith(b"\xef\xbb\xbf"):
            prefix, start = start[:3], start[3:]
        if not start.startswith(header):
            return found.data
        body = start[len(header) :].decode("utf-8")
        tries = 0

        def still(candidate: str) -> bool:
            nonlocal tries
            tries += 1
            data = prefix + header + candidate.encode("utf-8")
            disagreement = self.check(data)
            return disagreement is not None and disagreement.group == key

        for split in (
            lambda text: text.splitlines(keepends=True),
            _TOKEN_RE.findall,
            list,
        ):
            body = _reduce(split(body), still, lambda: tries < budget)
        return prefix + header + body.encode("utf-8")


def _reduce(
    units: list[str], still: Callable[[str], bool], budget_left: Callable[[], bool]
) -> str:
    """Greedy delta debugging: drop chunks of units while the predicate holds."""
    chunk = max(1, len(units) // 2)
    while chunk >= 1 and budget_left():
        index = 0
        changed = False
        while index < len(units) and budget_left():
            candidate = units[:index] + units[index + chunk :]
            if candidate and still("".join(candidate)):
                units = candidate
                changed = True
            else:
                index += chunk
        if not changed:
            chunk //= 2
    return "".join(units)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server_url")
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--families",
        default=",".join(sorted(ALL_FAMILIES)),
        help=f"fragment families (default: all of {','.join(sorted(ALL_FAMILIES))})",
    )
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument(
        "--max-minimise", type=int, default=60, help="groups to minimise"
    )
    parser.add_argument(
        "--budget", type=int, default=400, help="psql runs per minimisation"
    )
    args = parser.parse_args(argv)
    families = frozenset(f for f in args.families.split(",") if f)
    unknown = families - ALL_FAMILIES
    if unknown:
        parser.error(f"unknown families: {', '.join(sorted(unknown))}")
    psql = shutil.which("psql")
    if psql is None:
        parser.error("psql is not on PATH")
    server = Server.from_conninfo(conninfo_to_dict(args.server_url))
    chosen_seed = args.seed if args.seed is not None else int(time.time())
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes else float("inf")
    with (
        throwaway_database(server) as dbname,
        tempfile.TemporaryDirectory(prefix="psqldiff-") as workdir,
    ):
        differ = PsqlDiffer(psql, server, dbname, Path(workdir))
        campaign = Campaign(differ, deadline=deadline)
        if not args.no_corpus:
            print(f"hand-written corpus: {len(CASES)} files", flush=True)
            for case in CASES:
                campaign.record(file_bytes(case.text))
        print(
            f"generated: up to {args.examples} files, seed {chosen_seed}, "
            f"families {','.join(sorted(families))}",
            flush=True,
        )

        @seed(chosen_seed)
        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=sql_files(families))
        def explore(data: bytes) -> None:
            if time.monotonic() < deadline:
                campaign.record(data)

        explore()
        explored = time.monotonic() - started
        print(
            f"\n{campaign.runs} psql runs in {explored:.0f} s "
            f"({campaign.oracle_errors} files not run), "
            f"{len(campaign.groups)} groups of disagreements\n",
            flush=True,
        )
        minimal: dict[bytes, tuple[str, Found]] = {}
        ordered = sorted(campaign.groups.items(), key=lambda item: item[0])
        for number, (key, found) in enumerate(ordered):
            if number < args.max_minimise:
                data = campaign.minimise(found, key, args.budget)
            else:
                data = found.data
            minimal.setdefault(data, (key, found))
        for data, (key, found) in sorted(minimal.items(), key=lambda item: item[1][0]):
            run = differ.run_psql(data)
            disagreement = compare(data, run)
            reading = read_like_psql(data.decode("utf-8", "replace"), run)
            print("=" * 78)
            print(f"[{key}] seen {found.count} times")
            if (
                disagreement is None
            ):  # should not happen: minimised files still disagree
                print(f"(no longer reproduces) original: {found.data!r}")
                continue
            print(explain(data, run, disagreement))
            if reading.reasons:
                print(f"psql: {'; '.join(reading.reasons)}")
        print("=" * 78)
        print(
            f"{len(minimal)} distinct minimal files, {time.monotonic() - started:.0f} s"
        )
    return 1 if campaign.groups else 0


if __name__ == "__main__":
    sys.exit(main())
