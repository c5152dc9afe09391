"""The core stays pure: it never imports the database, the CLI or rendering."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "schemactl"
FORBIDDEN_IN_CORE = (
    "psycopg",
    "click",
    "rich",
    "schemactl.db",
    "schemactl.cli",
    "schemactl.runner",
    "schemactl.reports",
    "schemactl.render",
)
FORBIDDEN_OUTSIDE_RENDER_AND_CLI = ("rich", "click")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def offending(path: Path, forbidden: tuple[str, ...]) -> set[str]:
    return {
        name
        for name in imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    }


@pytest.mark.parametrize(
    "path", sorted((SRC / "core").glob("*.py")), ids=lambda p: p.name
)
def test_core_is_pure(path):
    assert offending(path, FORBIDDEN_IN_CORE) == set()


OUTSIDE_RENDER_AND_CLI = sorted(
    p for p in SRC.rglob("*.py") if p.name not in ("cli.py", "render.py")
)


@pytest.mark.parametrize("path", OUTSIDE_RENDER_AND_CLI, ids=lambda p: p.name)
def test_only_cli_and_render_touch_the_terminal(path):
    assert offending(path, FORBIDDEN_OUTSIDE_RENDER_AND_CLI) == set()


def test_offline_commands_never_reach_the_database_layer():
    forbidden = ("psycopg", "schemactl.db", "schemactl.runner", "schemactl.reports")
    assert offending(SRC / "offline.py", forbidden) == set()


def test_db_and_the_agent_store_are_the_only_psycopg_users():
    # db/ owns every SQL string of the runner's own tables; the agent store
    # (an optional extra) owns those of the agent tables it writes.
    users = {
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if offending(p, ("psycopg",))
    }
    assert users == {
        "db/admin.py",
        "db/connection.py",
        "db/history.py",
        "db/lock.py",
        "db/session.py",
        "db/target.py",
        "agent_store/definitions.py",
        "agent_store/liveness.py",
        "agent_store/recording.py",
        "agent_store/rows.py",
        "agent_store/session.py",
        "agent_store/store.py",
    }


AGENT_STORE = SRC / "agent_store"
OUTSIDE_THE_AGENT_STORE = sorted(
    p for p in SRC.rglob("*.py") if AGENT_STORE not in p.parents
)


@pytest.mark.parametrize("path", OUTSIDE_THE_AGENT_STORE, ids=lambda p: p.name)
def test_the_runner_never_imports_the_agent_store_or_the_sdk(path):
    # The CLI starts without the `agents` extra installed, and as fast.
    forbidden = ("schemactl.agent_store", "agents", "psycopg_pool")
    assert offending(path, forbidden) == set()


def test_the_agent_store_never_imports_the_runner():
    forbidden = (
        "schemactl.cli",
        "schemactl.runner",
        "schemactl.db",
        "schemactl.core",
        "click",
        "rich",
    )
    for path in AGENT_STORE.glob("*.py"):
        assert offending(path, forbidden) == set(), path


def test_read_only_use_cases_never_load_the_migration_machinery():
    # status and verify start faster without the session, the lock and the
    # splitter (see reports.py).
    forbidden = (
        "schemactl.runner",
        "schemactl.db.session",
        "schemactl.db.lock",
        "schemactl.core.splitting",
        "schemactl.core.validation",
    )
    assert offending(SRC / "reports.py", forbidden) == set()
